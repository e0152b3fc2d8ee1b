"""Testbench adapter of the ``mac`` block: npz operands → operand beats → C.

The sequencer walks output tiles (M in steps of R, then N in steps of C); each tile is
K beats of (A column, W row) with ``last`` on the K-th, zero-padded at the matrix
edges, and comes back as R result beats whose padding rows and columns are dropped.
"""
from __future__ import annotations

import math

import numpy as np

from accelgen.inputs import InputError, int_array
from accelgen.params.mac import MacConfig
from golden import mac as golden
from hdl.mac import MacArray, operand_layout, result_layout

from .job import Job, Sink, Source
from .streams import pack, unpack

INPUTS = "a: int8 [M,K]; w: int8 [K,N]"
OUTPUTS = "c: int32 [M,N]"


def check_inputs(cfg: MacConfig, arrays) -> dict[str, np.ndarray]:
    """Validate the npz arrays of ``accelgen run mac``."""
    a = int_array(arrays, "a", 2, -128, 127, "int8 [M,K]")
    w = int_array(arrays, "w", 2, -128, 127, "int8 [K,N] with K = a.shape[1]")
    if a.shape[1] != w.shape[0]:
        raise InputError(f"input w: shape {list(w.shape)} does not match a {list(a.shape)}; "
                         "expected w.shape[0] == a.shape[1]")
    if a.shape[1] > cfg.k_max:
        raise InputError(f"input a: K = {a.shape[1]} exceeds k_max = {cfg.k_max}; "
                         "allowed: K <= k_max (raise k_max)")
    return {"a": a, "w": w}


def _tile_origins(cfg: MacConfig, m: int, n: int) -> list[tuple[int, int]]:
    return [(m0, n0) for m0 in range(0, m, cfg.rows) for n0 in range(0, n, cfg.cols)]


def job(cfg: MacConfig, inputs, valid, ready, max_cycles: int | None = None) -> Job:
    """The operand beats for every tile, and the R result beats expected per tile."""
    a, w = inputs["a"], inputs["w"]
    (m, k), n = a.shape, w.shape[1]
    a_pad = np.zeros((math.ceil(m / cfg.rows) * cfg.rows, k), np.int64)
    w_pad = np.zeros((k, math.ceil(n / cfg.cols) * cfg.cols), np.int64)
    a_pad[:m], w_pad[:, :n] = a, w
    origins = _tile_origins(cfg, m, n)
    fields = {
        "a": np.concatenate([a_pad[m0:m0 + cfg.rows].T for m0, _ in origins]),
        "w": np.concatenate([w_pad[:, n0:n0 + cfg.cols] for _, n0 in origins]),
        "last": np.tile(np.arange(k) == k - 1, len(origins)).astype(np.int64),
    }
    beats = pack(operand_layout(cfg), fields)
    limit = max_cycles or 20 * golden.cycles(cfg, m, k, n) + 1000
    return Job(sources={"i": Source(beats, valid)},
               sinks={"o": Sink(len(origins) * cfg.rows, ready)}, max_cycles=limit)


def decode(cfg: MacConfig, inputs, beats: list[int]) -> dict[str, np.ndarray]:
    """Reassemble C from the result beats (R rows per tile, in tile order)."""
    (m, _), n = inputs["a"].shape, inputs["w"].shape[1]
    rows = unpack(result_layout(cfg), beats)["c"]
    c = np.zeros((math.ceil(m / cfg.rows) * cfg.rows, math.ceil(n / cfg.cols) * cfg.cols),
                 np.int64)
    for t, (m0, n0) in enumerate(_tile_origins(cfg, m, n)):
        c[m0:m0 + cfg.rows, n0:n0 + cfg.cols] = rows[t * cfg.rows:(t + 1) * cfg.rows]
    return {"c": c[:m, :n].astype(np.int32)}


def flagged(cfg: MacConfig, inputs, beats: list[int]) -> int:
    """Result rows the hardware marked ``overflow`` (a tile longer than k_max); for
    inputs that passed ``check_inputs`` every such row is a hardware error."""
    return int(unpack(result_layout(cfg), beats)["overflow"].sum()) if beats else 0


def expected(cfg: MacConfig, inputs) -> dict[str, np.ndarray]:
    return {"c": golden.matmul(inputs["a"], inputs["w"])}


def model(cfg: MacConfig, inputs) -> dict[str, float]:
    """Analytic cycles and the physical bound."""
    (m, k), n = inputs["a"].shape, inputs["w"].shape[1]
    return {"model_cycles": golden.cycles(cfg, m, k, n),
            "bound_cycles": golden.bound_cycles(cfg, m, k, n)}


def timing(cfg: MacConfig, inputs, job_, result) -> tuple[dict, dict]:
    """Utilization: useful MACs over the array's peak during the measured cycles."""
    (m, k), n = inputs["a"].shape, inputs["w"].shape[1]
    cycles = result.span
    return {}, {"utilization": m * n * k / (cfg.rows * cfg.cols * cycles) if cycles else 0.0}


def default_workload(cfg: MacConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """A random 24 x 384 x 40 product (non-multiples of the array, K of a real layer)."""
    rng = np.random.default_rng(seed)
    return {"a": rng.integers(-128, 128, (24, 384)), "w": rng.integers(-128, 128, (384, 40))}



def soak_workload(cfg: MacConfig, items: int, seed: int = 0) -> dict[str, np.ndarray]:
    """At least ``items`` operand beats: square tiles of K = 256 (or k_max if smaller)."""
    k = min(256, cfg.k_max)
    tiles = math.ceil(items / k)
    side = math.ceil(math.sqrt(tiles))
    rng = np.random.default_rng(seed)
    return {"a": rng.integers(-128, 128, (side * cfg.rows, k)),
            "w": rng.integers(-128, 128, (k, side * cfg.cols))}


component = MacArray
