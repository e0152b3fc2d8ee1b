"""Testbench adapter of the ``spgemm`` block: CSR matrices → partial-matrix work streams
→ merge rounds on the RTL → C in CSR.

The memory side (SpArch's A fetcher and B-row prefetcher; its DRAM traffic is modelled
in golden/spgemm.py) is played by this adapter: partial matrix c is condensed column c
of A (the c-th nonzero of every row) against the matching rows of B, streamed to one
way as work beats. More partials than ways are merged in rounds (golden.merger.schedule:
fewest entries first); a round's result re-enters the same RTL in ``merged`` mode.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from amaranth import Cat, Module
import scipy.sparse as sp

from accelgen.params.spgemm import SpgemmConfig
from accelgen.golden import merger as golden_merger
from accelgen.golden.spgemm import condensed_columns, partial_counts
from accelgen.workloads import matrices
from accelgen.hdl.spgemm import SpGemm, work_layout

from .inputs import InputError
from . import merger as merger_bench
from .adapter import run_rounds
from .invariants import merge_contract
from .job import Job, Result, Sink, Source, cycle_limit
from .streams import pack

INPUTS = ("a_data, a_indices, a_indptr, a_shape: A in CSR (int values, a_width bits "
          "signed); b_data, b_indices, b_indptr, b_shape: B in CSR (b_width bits)")
OUTPUTS = ("c_data: int64, c_indices: int32 (sorted within each row), c_indptr: int64, "
           "c_shape: [2]: C = A.B in CSR, structural zeros kept")


def _csr(cfg: SpgemmConfig, arrays, side: str, width: int, dim_bits: tuple[int, int]):
    """One operand as a canonical scipy CSR matrix, every array checked."""
    names = [f"{side}_{k}" for k in ("data", "indices", "indptr", "shape")]
    for name in names:
        if name not in arrays:
            raise InputError(f"input {name}: missing; expected the CSR arrays {', '.join(names)}")
    data, indices, indptr, shape = (np.asarray(arrays[n]) for n in names)
    if shape.shape != (2,) or shape.dtype.kind not in "iu" or min(shape) < 1:
        raise InputError(f"input {side}_shape: {shape.tolist()} is not allowed; expected two "
                         f"integers >= 1")
    for bits, dim, what in zip(dim_bits, shape, ("rows", "columns")):
        if dim > 1 << bits:
            raise InputError(f"input {side}_shape: {dim} {what} exceed the configured "
                             f"{1 << bits}; allowed: raise row_width / col_width")
    for name, arr in zip(names[:3], (data, indices, indptr)):
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            raise InputError(f"input {name}: shape {list(arr.shape)} dtype {arr.dtype} is not "
                             f"allowed; expected a 1-D integer array")
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    if data.size and (data.min() < lo or data.max() > hi):
        raise InputError(f"input {side}_data: values {data.min()}..{data.max()} outside "
                         f"{lo}..{hi}; expected {width}-bit signed integers")
    rows, cols = int(shape[0]), int(shape[1])
    if indptr.size != rows + 1 or indptr[0] != 0 or np.any(np.diff(indptr) < 0) \
            or indptr[-1] != data.size or indices.size != data.size:
        raise InputError(f"input {side}_indptr: not a CSR row pointer for {rows} rows and "
                         f"{data.size} entries")
    if indices.size and (indices.min() < 0 or indices.max() >= cols):
        raise InputError(f"input {side}_indices: values outside 0..{cols - 1}")
    mat = sp.csr_matrix((data.astype(np.int64), indices, indptr), shape=(rows, cols))
    mat.sum_duplicates()
    return mat


def check_inputs(cfg: SpgemmConfig, arrays) -> dict:
    """Validate the npz arrays of ``accelgen run spgemm``."""
    a = _csr(cfg, arrays, "a", cfg.a_width, (cfg.row_width, 62))
    b = _csr(cfg, arrays, "b", cfg.b_width, (62, cfg.col_width))
    if a.shape[1] != b.shape[0]:
        raise InputError(f"input b_shape: {list(b.shape)} does not match a_shape "
                         f"{list(a.shape)}; expected B with {a.shape[1]} rows")
    magnitude = abs(a).astype(np.float64) @ abs(b).astype(np.float64)
    bound = magnitude.max() if magnitude.nnz else 0.0
    if bound >= 2.0 ** (cfg.value_width - 1):
        raise InputError(f"input a_data: sums of |A||B| reach {bound:.3g}, beyond "
                         f"value_width = {cfg.value_width} bits; allowed: raise value_width")
    return {"a": a, "b": b}


def product_beats(cfg: SpgemmConfig, b: sp.csr_matrix, rows, ks, avals) -> dict:
    """Work-beat fields of one partial matrix: each nonzero (r, k, a) sends B's row k
    in chunks of ``in_lanes``."""
    lanes = cfg.in_lanes
    lens = np.diff(b.indptr)[ks]
    nbeats = -(-lens // lanes)
    owner = np.repeat(np.arange(len(ks)), nbeats)  # element of each beat
    first = np.cumsum(nbeats) - nbeats
    chunk = np.arange(owner.size) - first[owner]
    start = b.indptr[ks][owner] + chunk * lanes
    count = np.minimum(lanes, lens[owner] - chunk * lanes)
    at = start[:, None] + np.arange(lanes)[None, :]
    live = np.arange(lanes)[None, :] < count[:, None]
    at = np.where(live, at, 0)
    return {"row": np.broadcast_to(rows[owner][:, None], at.shape),
            "col": np.where(live, b.indices[at] if b.nnz else 0, 0),
            "b": np.where(live, b.data[at] if b.nnz else 0, 0),
            "a": avals[owner], "count": count, "merged": 0}


def merged_beats(cfg: SpgemmConfig, keys, values) -> dict:
    """Work-beat fields of an earlier round's result (passes the multipliers as is)."""
    lanes, n = cfg.in_lanes, len(keys)
    nbeats = -(-n // lanes)
    pad = np.zeros(nbeats * lanes, np.int64)
    k, v = pad.copy(), pad.copy()
    k[:n], v[:n] = np.asarray(keys, np.int64), values
    k, v = k.reshape(nbeats, lanes), v.reshape(nbeats, lanes)
    return {"row": k >> cfg.col_width, "col": k & ((1 << cfg.col_width) - 1), "b": v,
            "a": np.zeros(nbeats, np.int64),
            "count": np.minimum(lanes, n - lanes * np.arange(nbeats)), "merged": 1}


def _pack(cfg: SpgemmConfig, f: dict) -> list[int]:
    """Work beats (an empty stream: one beat with count 0 and ``last``)."""
    beats = len(f["count"])
    if beats == 0:
        lanes = cfg.in_lanes
        f = {"row": np.zeros((1, lanes), np.int64), "col": np.zeros((1, lanes), np.int64),
             "b": np.zeros((1, lanes), np.int64), "a": np.zeros(1, np.int64),
             "count": np.zeros(1, np.int64), "merged": f["merged"]}
        beats = 1
    return pack(work_layout(cfg), {
        "entries": {"row": f["row"], "col": f["col"], "b": f["b"]}, "a": f["a"],
        "count": f["count"], "last": (np.arange(beats) == beats - 1).astype(np.int64),
        "merged": np.full(beats, f["merged"])})


def _keys(cfg: SpgemmConfig, f: dict) -> np.ndarray:
    live = np.arange(cfg.in_lanes)[None, :] < np.asarray(f["count"])[:, None]
    return ((np.asarray(f["row"]) << cfg.col_width) | f["col"])[live]


def simulate(cfg: SpgemmConfig, inputs, sim: str, valid, ready, workdir: Path,
             waves: Path | None) -> tuple[Job, Result]:
    """Every merge round on the RTL (as sim/merger.py does for the merger). A partial
    matrix's beats are built when its round runs and dropped after it, so memory holds
    one round's streams (and the results waiting for a later round)."""
    a, b = inputs["a"], inputs["b"]
    pool: list = condensed_columns(a)  # a condensed column, or a round's beat fields
    sizes = partial_counts(a, b).tolist()

    def round_job(ids):
        parts = [pool[i] if isinstance(pool[i], dict) else product_beats(cfg, b, *pool[i])
                 for i in ids]
        for i in ids:
            pool[i] = None
        keys = [_keys(cfg, f) for f in parts]
        unique = len(np.unique(np.concatenate(keys))) if parts else 0
        sources = {f"i{w}": Source(_pack(cfg, parts[w] if w < len(parts) else
                                         {"count": [], "merged": 0}), valid)
                   for w in range(cfg.ways)}
        return Job(sources=sources,
                   sinks={"o": Sink(merger_bench.out_beats(cfg.merger, unique), ready)},
                   max_cycles=cycle_limit(golden_merger.tree_cycles(keys, cfg.merger)))

    def merged(beats):
        out = merger_bench.decode(cfg.merger, None, beats)
        pool.append(merged_beats(cfg, out["keys"], out["values"]))
        sizes.append(len(out["keys"]))
    rounds = golden_merger.schedule(sizes, cfg.ways) if pool else [[]]
    return run_rounds(sim, SpGemm(cfg), "spgemm", rounds, round_job, merged, workdir, waves)


def decode(cfg: SpgemmConfig, inputs, beats: list[int]) -> dict[str, np.ndarray]:
    """C in CSR from the final round's entries (row-major keys)."""
    out = merger_bench.decode(cfg.merger, None, beats)
    keys = out["keys"].astype(np.int64)
    rows, cols = keys >> cfg.col_width, keys & ((1 << cfg.col_width) - 1)
    n = inputs["a"].shape[0]
    rows = np.clip(rows, 0, n - 1)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n)[:n])])
    return {"c_data": out["values"], "c_indices": cols.astype(np.int32),
            "c_indptr": indptr.astype(np.int64),
            "c_shape": np.array([n, inputs["b"].shape[1]], np.int64)}


def expected(cfg: SpgemmConfig, inputs) -> dict[str, np.ndarray]:
    """SciPy: the structural product's pattern (stored entries of A and B, zeros
    included, as ones), A @ B's values there (0 where entries cancel)."""
    a, b = inputs["a"], inputs["b"]
    pattern = (_ones(a) @ _ones(b)).tocsr()
    pattern.sort_indices()
    values = _at(sp.csr_matrix(a @ b), pattern)
    return {"c_data": values, "c_indices": pattern.indices.astype(np.int32),
            "c_indptr": pattern.indptr.astype(np.int64),
            "c_shape": np.array(pattern.shape, np.int64)}


def _row_major(m: sp.csr_matrix) -> np.ndarray:
    """Row-major positions (row * columns + col) of the stored entries."""
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    return rows * m.shape[1] + m.indices


def _at(values: sp.csr_matrix, pattern: sp.csr_matrix) -> np.ndarray:
    """``values`` at every stored position of ``pattern`` (0 where it stores nothing)."""
    values.sort_indices()
    have, want = _row_major(values), _row_major(pattern)
    at = np.minimum(np.searchsorted(have, want), max(have.size - 1, 0))
    found = have[at] == want if have.size else np.zeros(want.size, bool)
    return np.where(found, values.data[at] if have.size else 0, 0).astype(np.int64)


def _ones(m: sp.csr_matrix) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(m.nnz, np.int64), m.indices, m.indptr), shape=m.shape)


def flagged(cfg: SpgemmConfig, inputs, beats: list[int]) -> int:
    return merger_bench.flagged(cfg.merger, inputs, beats)


def timing(cfg: SpgemmConfig, inputs, job_, result) -> tuple[dict, dict]:
    sizes = partial_counts(inputs["a"], inputs["b"]).tolist()
    return {}, {"partial_products": sum(sizes), "partial_matrices": len(sizes),
                "rounds": len(golden_merger.schedule(sizes, cfg.ways)) if sizes else 1}


def model(cfg: SpgemmConfig, inputs) -> dict[str, float]:
    """The merger's model over the same rounds, on the partial matrices' keys, plus the
    multiplier's cycle a round."""
    keys = [_keys(cfg, product_beats(cfg, inputs["b"], *col))
            for col in condensed_columns(inputs["a"])]
    got = merger_bench.round_model(cfg.merger, keys or [np.zeros(0, np.uint64)])
    return {"model_cycles": got["model_cycles"] + got["rounds"],
            "bound_cycles": math.ceil(sum(len(k) for k in keys) / cfg.lanes)}


def default_workload(cfg: SpgemmConfig, seed: int = 0) -> dict:
    """A 48 x 40 by 40 x 36 random product with about 15% nonzeros."""
    rng = np.random.default_rng(seed)
    a = sp.random(48, 40, density=0.15, random_state=rng, format="csr",
                  data_rvs=lambda n: rng.integers(-8, 9, n))
    b = sp.random(40, 36, density=0.15, random_state=rng, format="csr",
                  data_rvs=lambda n: rng.integers(-8, 9, n))
    return {"a": a.astype(np.int64), "b": b.astype(np.int64)}


def soak_workload(cfg: SpgemmConfig, items: int, seed: int = 0) -> dict:
    """Random 512 x 512 matrices (values -8..8) whose product has about ``items``
    partial products."""
    rng = np.random.default_rng(seed)
    density = min(1.0, (items / 512) ** 0.5 / 512)
    a, b = (sp.random(512, 512, density=density, random_state=rng, format="csr",
                      data_rvs=lambda n: rng.integers(-8, 9, n)).astype(np.int64)
            for _ in range(2))
    return {"a": a, "b": b}


component = SpGemm


# ---------------------------------------------------------------- real workload

#: ``accelgen workloads spgemm`` options (argparse keyword arguments of :func:`real_workload`)
WORKLOAD_OPTIONS = {"matrix": dict(default="bar", choices=[*matrices.NAMES, "scale"]),
                    "n": dict(type=int, default=256)}


def real_workload(matrix: str = "bar", n: int = 256) -> dict[str, np.ndarray]:
    """CSR arrays of A = B = the first ``n`` rows and columns of a real matrix shipped by
    pyamg/pygsp (workloads/matrices.py, deterministic integer values in -8..8); ``scale``
    is the scale case (the distance-3 graph of pyamg's helmholtz_2D mesh, a 1024-node
    BFS subgraph: 136,496 nonzeros, 19.2 million partial products for A . A)."""
    if matrix == "scale":
        a = matrices.scale_case()
    else:
        a = matrices.slice_cols(matrices.slice_rows(matrices.load(matrix), n), n)
    out = {}
    for side in ("a", "b"):
        out.update({f"{side}_data": a.data, f"{side}_indices": a.indices,
                    f"{side}_indptr": a.indptr, f"{side}_shape": np.array(a.shape)})
    return out


# ---------------------------------------------------------------- formal

def invariants(m: Module, dut) -> None:
    """Every output beat but the last is full, and the (row, column) keys rise strictly
    when every partial matrix's stream is sorted."""
    cfg = dut.cfg
    merge_contract(m, {f"i{w}": (getattr(dut, f"i{w}"), cfg.in_lanes)
                        for w in range(cfg.ways)}, dut.o, cfg.lanes,
                    lambda e: Cat(e.col, e.row))
