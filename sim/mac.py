"""Testbench adapter of the ``mac`` block: npz operands → stream beats → C, per mode.

The sequencer walks output tiles (M in steps of R, then N in steps of C), zero-padded at
the matrix edges. Per tile, by mode:

* w8a8: K beats of (A column, W row), ``last`` on the K-th.
* w4a8: K beats of (A column, q row); one ``s`` beat (s2, stored byte (-z) mod 256) per
  group of ``group`` K rows.
* w4a4: K beats of (A column, W row), ``last`` at every group's end; one ``s`` beat
  (a_scale for the R rows, w_scale for the C columns) per group, ``last`` on the
  final group; rank beats on ``lr`` (U column j, L2 row j, lr_scale), one zero beat
  when there is no low-rank branch.
* msb_lsb: K MSB beats (A column, B_msb row, ``msb``), then, if any of the tile's rows
  asked for it, K LSB beats (A column with the other rows zeroed, B_lsb row). A tile
  may hold any R rows of A: the sequencer puts the rows that ask for the LSB pass
  first, so they share tiles and the pass costs ceil(asking/R) row tiles, not one per
  tile that happens to hold an asking row.

Each tile comes back as R result beats whose padding rows and columns are dropped.
"""
from __future__ import annotations

import math

import numpy as np
from amaranth import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.hdl import Assert, Assume

from accelgen.params.mac import MODES, MacConfig
from accelgen.golden import mac as golden
from accelgen.workloads import mac_cases
from accelgen.workloads.minilm import real_mac_case
from accelgen.hdl.mac import MacArray
from accelgen.hdl.mac_layouts import lowrank_layout, operand_layout, result_layout, scale_layout

from .inputs import InputError, int_array, scalar
from .adapter import misplaced_lasts
from .invariants import transfer
from .job import Job, Sink, Source, cycle_limit
from .streams import pack, unpack

INPUTS = ("w8a8: a int8 [M,K], w int8 [K,N] | w4a8: a int8 [M,K], w_q uint8 [K,N] "
          "(0..15), w_s2 uint8 [G,N] (1..127), w_z int8 [G,N], G = ceil(K/group) | w4a4: "
          "a [M,K] and w [K,N] in -8..7, a_scale uint16 [M,G], w_scale uint16 [G,N], "
          "optional lr_u int16 [M,r], lr_l2 int16 [r,N], lr_scale 1..65535 | msb_lsb: a "
          "int8 [M,K], b [K,N] in -2048..2047 (12-bit), optional lsb_rows bool [M]")
OUTPUTS = "c: int32 [M,N] (w4a4: int64)"


def _groups(cfg: MacConfig, k: int) -> int:
    return math.ceil(k / cfg.group_size)


def _same(key: str, got: tuple, want: tuple, what: str) -> None:
    """Raise unless shape ``got`` starts with ``want``; ``what`` names the expected dims."""
    if tuple(got[:len(want)]) != tuple(want):
        raise InputError(f"input {key}: shape {list(got)} does not match; expected {what} "
                         f"= {list(want)}")


def check_inputs(cfg: MacConfig, arrays) -> dict[str, np.ndarray]:
    """Validate the npz arrays of ``accelgen run mac`` for ``cfg.mode``."""
    if cfg.mode == "w4a4":
        a = int_array(arrays, "a", 2, -8, 7, "int4 [M,K] in -8..7")
    else:
        a = int_array(arrays, "a", 2, -128, 127, "int8 [M,K] in -128..127")
    m, k = a.shape
    if k > cfg.k_max:
        raise InputError(f"input a: K = {k} exceeds k_max = {cfg.k_max}; "
                         "allowed: K <= k_max (raise k_max)")
    if cfg.mode == "w8a8":
        w = int_array(arrays, "w", 2, -128, 127, "int8 [K,N] with K = a.shape[1]")
        _same("w", w.shape, (k,), "[K,N] with K = a.shape[1]")
        return {"a": a, "w": w}
    if cfg.mode == "msb_lsb":
        b = int_array(arrays, "b", 2, -2048, 2047, "12-bit [K,N] in -2048..2047")
        _same("b", b.shape, (k,), "[K,N] with K = a.shape[1]")
        lsb = np.asarray(arrays.get("lsb_rows", np.zeros(m, bool)))
        if lsb.dtype.kind not in "biu" or lsb.shape != (m,) or not np.isin(lsb, (0, 1)).all():
            raise InputError(f"input lsb_rows: {lsb.dtype} {list(lsb.shape)} is not allowed; "
                             f"expected bool [M] = [{m}]")
        return {"a": a, "b": b, "lsb_rows": lsb.astype(bool)}
    g = _groups(cfg, k)
    if cfg.mode == "w4a8":
        q = int_array(arrays, "w_q", 2, 0, 15, "uint4 values [K,N] in 0..15")
        _same("w_q", q.shape, (k,), "[K,N] with K = a.shape[1]")
        s2 = int_array(arrays, "w_s2", 2, 1, 127, "uint8 [G,N] in 1..127")
        _same("w_s2", s2.shape, (g, q.shape[1]), f"[G,N] with G = ceil(K/{cfg.group_size})")
        z = int_array(arrays, "w_z", 2, -128, 127, "int8 [G,N]")
        _same("w_z", z.shape, s2.shape, "[G,N]")
        return {"a": a, "w_q": q, "w_s2": s2, "w_z": z}
    w = int_array(arrays, "w", 2, -8, 7, "int4 [K,N] in -8..7")
    _same("w", w.shape, (k,), "[K,N] with K = a.shape[1]")
    n = w.shape[1]
    sa = int_array(arrays, "a_scale", 2, 0, 65535, "uint16 [M,G]")
    _same("a_scale", sa.shape, (m, g), f"[M,G] with G = ceil(K/{cfg.group_size})")
    sw = int_array(arrays, "w_scale", 2, 0, 65535, "uint16 [G,N]")
    _same("w_scale", sw.shape, (g, n), f"[G,N] with G = ceil(K/{cfg.group_size})")
    out = {"a": a, "w": w, "a_scale": sa, "w_scale": sw}
    if "lr_u" in arrays or "lr_l2" in arrays:
        u = int_array(arrays, "lr_u", 2, -32768, 32767, "int16 [M,r]")
        _same("lr_u", u.shape, (m,), "[M,r] with M = a.shape[0]")
        l2 = int_array(arrays, "lr_l2", 2, -32768, 32767, "int16 [r,N]")
        _same("lr_l2", l2.shape, (u.shape[1], n), "[r,N]")
        if "lr_scale" not in arrays:
            raise InputError("input lr_scale: missing; expected an integer scalar 1..65535")
        out.update(lr_u=u, lr_l2=l2, lr_scale=np.array(scalar(arrays, "lr_scale", 1, 65535, "an integer scalar 1..65535")))
    try:
        expected(cfg, out)
    except OverflowError:
        raise InputError("input a_scale: C overflows int64 with these scales; "
                         "allowed: |C| < 2**63 (lower the scales)") from None
    return out


def _tile_origins(cfg: MacConfig, m: int, n: int) -> list[tuple[int, int]]:
    return [(m0, n0) for m0 in range(0, m, cfg.rows) for n0 in range(0, n, cfg.cols)]


def _pad(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``x`` zero-padded to at least rows x cols, rounded up to the multiples given."""
    out = np.zeros((math.ceil(x.shape[0] / rows) * rows if rows else x.shape[0],
                    math.ceil(x.shape[1] / cols) * cols if cols else x.shape[1]), np.int64)
    out[:x.shape[0], :x.shape[1]] = x
    return out


#: the input holding the right-hand operand [K, N] in each mode
_RIGHT = {"w8a8": "w", "w4a8": "w_q", "w4a4": "w", "msb_lsb": "b"}


def shape(cfg: MacConfig, inputs) -> tuple[int, int, int]:
    """M, K, N of the product."""
    (m, k), right = inputs["a"].shape, inputs[_RIGHT[cfg.mode]]
    return m, k, right.shape[1]


def _rank(inputs) -> int:
    """w4a4: the low-rank branch's rank (0 without one)."""
    return inputs["lr_u"].shape[1] if "lr_u" in inputs else 0


def row_order(cfg: MacConfig, inputs) -> np.ndarray:
    """The rows of A in the order the tiles take them: msb_lsb puts the rows asking for
    the LSB pass first (stable); other modes keep A's order."""
    if cfg.mode != "msb_lsb":
        return np.arange(inputs["a"].shape[0])
    return np.argsort(~inputs["lsb_rows"], kind="stable")


def lsb_tiles(cfg: MacConfig, inputs) -> list[bool]:
    """msb_lsb: per tile, whether any of its rows asked for the LSB pass."""
    m, _, n = shape(cfg, inputs)
    asks = inputs["lsb_rows"][row_order(cfg, inputs)]
    return [bool(asks[m0:m0 + cfg.rows].any()) for m0, _ in _tile_origins(cfg, m, n)]


def _padded(cfg: MacConfig, inputs, order: np.ndarray) -> dict[str, np.ndarray]:
    """The operands and per-group arrays zero-padded to whole tiles, once per job: A
    (rows in ``order``), the right-hand operand, and the mode's scales, LSB requests
    and low-rank factors (a zero rank-1 branch when there is none)."""
    rows, cols = cfg.rows, cfg.cols
    out = {"a": _pad(inputs["a"][order], rows, 0),
           "right": _pad(inputs[_RIGHT[cfg.mode]], 0, cols)}
    if cfg.mode == "msb_lsb":
        out["asks"] = _pad(inputs["lsb_rows"][order, None], rows, 0)[:, 0]
    if cfg.mode == "w4a8":
        out["s2"] = _pad(inputs["w_s2"], 0, cols)
        out["neg_z"] = -_pad(inputs["w_z"], 0, cols) & 0xFF
    if cfg.mode == "w4a4":
        m, _, n = shape(cfg, inputs)
        out["a_scale"] = _pad(inputs["a_scale"], rows, 0)
        out["w_scale"] = _pad(inputs["w_scale"], 0, cols)
        rank = _rank(inputs)
        out["u"] = _pad(inputs["lr_u"], rows, 0) if rank else np.zeros((m + rows, 1), np.int64)
        out["l2"] = _pad(inputs["lr_l2"], 0, cols) if rank else np.zeros((1, n + cols), np.int64)
        out["lr_scale"] = int(inputs.get("lr_scale", 0))
    return out


def stream_fields(cfg: MacConfig, inputs) -> dict[str, dict[str, np.ndarray]]:
    """The field arrays of every stream, all tiles in order."""
    m, k, n = shape(cfg, inputs)
    x = _padded(cfg, inputs, row_order(cfg, inputs))
    parts = {"i": [], "s": [], "lr": []}
    last_beat = (np.arange(k) == k - 1)
    for m0, n0 in _tile_origins(cfg, m, n):
        rows, cols = slice(m0, m0 + cfg.rows), slice(n0, n0 + cfg.cols)
        a_t, w_t = x["a"][rows].T, x["right"][:, cols]
        if cfg.mode == "msb_lsb":
            msb, lsb = golden.msb_lsb_split(w_t)
            asks = x["asks"][rows]
            parts["i"].append({"a": a_t, "w": msb, "msb": np.ones(k, np.int64),
                               "last": last_beat & ~asks.any()})
            if asks.any():
                parts["i"].append({"a": a_t * asks, "w": lsb, "msb": np.zeros(k, np.int64),
                                   "last": last_beat})
            continue
        if cfg.mode == "w4a4":
            ends = (np.arange(k) % cfg.group_size == cfg.group_size - 1) | last_beat
        else:
            ends = last_beat
        parts["i"].append({"a": a_t, "w": w_t, "last": ends})
        if cfg.mode == "w4a8":
            parts["s"].append({"s2": x["s2"][:, cols], "neg_z": x["neg_z"][:, cols]})
        if cfg.mode == "w4a4":
            groups, beats = len(x["w_scale"]), len(x["l2"])
            parts["s"].append({"a_scale": x["a_scale"][rows].T, "w_scale": x["w_scale"][:, cols],
                               "last": np.arange(groups) == groups - 1})
            parts["lr"].append({"u": x["u"][rows].T, "l2": x["l2"][:, cols],
                                "scale": np.full(beats, x["lr_scale"]),
                                "last": np.arange(beats) == beats - 1})
    return {port: {f: np.concatenate([p[f] for p in beats]).astype(np.int64)
                   for f in beats[0]} for port, beats in parts.items() if beats}


LAYOUTS = {"i": operand_layout, "s": scale_layout, "lr": lowrank_layout}


def job(cfg: MacConfig, inputs, valid, ready, max_cycles: int | None = None) -> Job:
    """The beats of every stream for every tile, and the R result beats per tile."""
    m, k, n = shape(cfg, inputs)
    sources = {port: Source(pack(LAYOUTS[port](cfg), fields), valid)
               for port, fields in stream_fields(cfg, inputs).items()}
    limit = max_cycles or cycle_limit(model(cfg, inputs)["model_cycles"])
    tiles = len(_tile_origins(cfg, m, n))
    return Job(sources=sources, sinks={"o": Sink(tiles * cfg.rows, ready)}, max_cycles=limit)


def decode(cfg: MacConfig, inputs, beats: list[int]) -> dict[str, np.ndarray]:
    """Reassemble C from the result beats (R rows per tile, in tile order; the tiles'
    rows are A's rows in :func:`row_order`)."""
    m, _, n = shape(cfg, inputs)
    rows = unpack(result_layout(cfg), beats)["c"]
    c = np.zeros((math.ceil(m / cfg.rows) * cfg.rows, math.ceil(n / cfg.cols) * cfg.cols),
                 np.int64)
    for t, (m0, n0) in enumerate(_tile_origins(cfg, m, n)):
        c[m0:m0 + cfg.rows, n0:n0 + cfg.cols] = rows[t * cfg.rows:(t + 1) * cfg.rows]
    out = np.empty((m, n), np.int64)
    out[row_order(cfg, inputs)] = c[:m, :n]
    return {"c": out.astype(np.int64 if cfg.mode == "w4a4" else np.int32)}


def flagged(cfg: MacConfig, inputs, beats: list[int]) -> int:
    """Result rows the hardware marked ``overflow`` (a tile longer than k_max, a w4a4
    group longer than ``group``), plus rows framed wrongly (``last`` not on exactly
    every R-th row); for inputs that passed ``check_inputs`` every one is a hardware
    error."""
    if not beats:
        return 0
    rows = unpack(result_layout(cfg), beats)
    tiles = -(-len(beats) // cfg.rows)
    return int(rows["overflow"].sum()) + misplaced_lasts(rows["last"], [cfg.rows] * tiles)


def expected(cfg: MacConfig, inputs) -> dict[str, np.ndarray]:
    """The golden C of ``cfg.mode``."""
    x = inputs
    if cfg.mode == "w4a8":
        return {"c": golden.matmul_w4a8(x["a"], x["w_q"], x["w_s2"], x["w_z"], cfg.group_size)}
    if cfg.mode == "w4a4":
        return {"c": golden.matmul_w4a4(x["a"], x["w"], x["a_scale"], x["w_scale"],
                                        cfg.group_size, x.get("lr_u"), x.get("lr_l2"),
                                        int(x.get("lr_scale", 0)))}
    if cfg.mode == "msb_lsb":
        return {"c": golden.matmul_msb_lsb(x["a"], x["b"], x["lsb_rows"])}
    return {"c": golden.matmul(x["a"], x["w"])}


def model(cfg: MacConfig, inputs) -> dict[str, float]:
    """Analytic cycles and the physical bound (every product needs a PE for a cycle)."""
    m, k, n = shape(cfg, inputs)
    if cfg.mode == "msb_lsb":
        lengths = [k * (1 + asks) for asks in lsb_tiles(cfg, inputs)]
        return {"model_cycles": golden.sequence_cycles(cfg, lengths),
                "bound_cycles": golden.bound_cycles(cfg, m, sum(lengths) // len(lengths), n)}
    if cfg.mode == "w4a4":
        return {"model_cycles": golden.w4a4_cycles(cfg, m, k, n, _rank(inputs)),
                "bound_cycles": golden.bound_cycles(cfg, m, k, n)}
    return {"model_cycles": golden.cycles(cfg, m, k, n),
            "bound_cycles": golden.bound_cycles(cfg, m, k, n)}


def timing(cfg: MacConfig, inputs, job_, result) -> tuple[dict, dict]:
    """Utilization: useful MACs over the array's peak during the measured cycles; for
    msb_lsb also the cycles each pass took (first to last beat of each pass's runs)."""
    m, k, n = shape(cfg, inputs)
    cycles = result.span
    macs = m * n * k
    report = {}
    if cfg.mode == "msb_lsb":
        macs += int(inputs["lsb_rows"].sum()) * n * k
        report = _pass_cycles(cfg, inputs, result.cycles["i"])
    report["utilization"] = macs / (cfg.rows * cfg.cols * cycles) if cycles else 0.0
    return {}, report


def _pass_cycles(cfg: MacConfig, inputs, stamps: list[int]) -> dict[str, int]:
    """Cycles spent on MSB and on LSB passes: for each pass, last minus first accepted
    beat plus one (K without stalls)."""
    k = inputs["a"].shape[1]
    spent = {"msb_pass_cycles": 0, "lsb_pass_cycles": 0}
    at = 0
    for asks in lsb_tiles(cfg, inputs):
        for name in ("msb_pass_cycles", "lsb_pass_cycles")[:1 + asks]:
            run = stamps[at:at + k]
            spent[name] += run[-1] - run[0] + 1 if len(run) == k else 0
            at += k
    return spent


def random_inputs(cfg: MacConfig, m: int, k: int, n: int, rng, rank: int = 0
                  ) -> dict[str, np.ndarray]:
    """Random valid operands of ``cfg.mode`` over their full ranges."""
    if cfg.mode == "w4a8":
        g = _groups(cfg, k)
        return {"a": rng.integers(-128, 128, (m, k)), "w_q": rng.integers(0, 16, (k, n)),
                "w_s2": rng.integers(1, 128, (g, n)), "w_z": rng.integers(-128, 128, (g, n))}
    if cfg.mode == "w4a4":
        g = _groups(cfg, k)
        out = {"a": rng.integers(-8, 8, (m, k)), "w": rng.integers(-8, 8, (k, n)),
               "a_scale": rng.integers(0, 1 << 16, (m, g)),
               "w_scale": rng.integers(0, 1 << 16, (g, n))}
        if rank:
            out.update(lr_u=rng.integers(-(1 << 15), 1 << 15, (m, rank)),
                       lr_l2=rng.integers(-(1 << 15), 1 << 15, (rank, n)),
                       lr_scale=np.array(int(rng.integers(1, 1 << 16))))
        return out
    if cfg.mode == "msb_lsb":
        return {"a": rng.integers(-128, 128, (m, k)), "b": rng.integers(-2048, 2048, (k, n)),
                "lsb_rows": rng.random(m) < 0.3}
    return {"a": rng.integers(-128, 128, (m, k)), "w": rng.integers(-128, 128, (k, n))}


def default_workload(cfg: MacConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """A random 24 x 384 x 40 product (non-multiples of the array, K of a real layer)."""
    return random_inputs(cfg, 24, min(384, cfg.k_max), 40, np.random.default_rng(seed),
                         rank=32)


def soak_workload(cfg: MacConfig, items: int, seed: int = 0) -> dict[str, np.ndarray]:
    """At least ``items`` operand beats: square tiles of K = 256 (or k_max if smaller)."""
    k = min(256, cfg.k_max)
    side = math.ceil(math.sqrt(math.ceil(items / k)))
    return random_inputs(cfg, side * cfg.rows, k, side * cfg.cols,
                         np.random.default_rng(seed), rank=8)


component = MacArray


# ---------------------------------------------------------------- real workload

#: ``accelgen workloads mac`` options (argparse keyword arguments of :func:`real_workload`)
WORKLOAD_OPTIONS = {
    "mode": dict(default="w8a8", choices=MODES), "tokens": dict(type=int, default=16),
    "layer": dict(type=int, default=0),
    "linear": dict(default="ffn1", choices=["q", "k", "v", "attn_out", "ffn1", "ffn2"]),
    "rank": dict(type=int, default=32), "head": dict(type=int, default=0)}


def real_workload(mode: str = "w8a8", tokens: int = 16, layer: int = 0, linear: str = "ffn1",
                  rank: int = 32, head: int = 0) -> dict[str, np.ndarray]:
    """A real MiniLM-L6 GEMM in ``mode``: activations of ``tokens`` tokens of real text and
    that layer's weights (workloads/minilm.py, workloads/mac_cases.py; no download,
    deterministic).
    w8a8: per-token int8 activations, per-channel int8 weights; w4a8: QServe's two-level
    uint4 weights (q, s2, z); w4a4: SVDQuant's int4 operands with fixed-point scales and
    a low-rank branch of ``rank``; msb_lsb: one attention ``head``'s Q (int8) times K^T
    (12-bit) with the LSB pass asked for the rows whose MSB-only softmax peaks below 0.1."""
    if mode == "w4a8":
        return mac_cases.w4a8_case(tokens, layer, linear)[0]
    if mode == "w4a4":
        inputs = mac_cases.w4a4_case(tokens, layer, linear, rank)[0]
        return {key: np.asarray(value) for key, value in inputs.items()}
    if mode == "msb_lsb":
        return mac_cases.msb_lsb_case(tokens, layer, head)[0]
    case = real_mac_case(tokens=tokens, layer=layer, linear=linear)
    return {"a": case["a"], "w": case["w"]}


# ---------------------------------------------------------------- formal

def invariants(m: Module, dut) -> None:
    """Each result row equals its tile's sums computed one bit wider than the accumulators
    (so a wrapped accumulator is caught) for tiles of up to ``k_max`` beats (w8a8,
    msb_lsb and w4a8 with its dequantizer), no result is flagged as overflowed, and at
    most one finished tile waits for the output."""
    cfg, i, o = dut.cfg, dut.i, dut.o
    beat = i.payload
    # legal tiles: up to k_max beats (w4a4: groups of up to `group` beats; msb_lsb: up
    # to k_max beats in each pass)
    limit = cfg.group_size if cfg.mode == "w4a4" else cfg.k_max
    kinds = [beat.msb, ~beat.msb] if cfg.mode == "msb_lsb" else [Const(1, 1)]
    for n, kind in enumerate(kinds):
        beats = Signal(range(limit + 1), name=f"tile_beats{n}")
        with m.If(transfer(i)):
            m.d.sync += beats.eq(Mux(beat.last, 0, beats + kind))
        m.d.comb += Assume(~i.valid | ~kind | (beats < limit))
    m.d.comb += Assert(~o.valid | ~o.payload.overflow)
    if cfg.mode != "w4a4":
        _sums_match(m, dut)


def _one_of(x, values) -> Value:
    return Cat(*[x == v for v in values]).any()


def _worst_operands(dut) -> Value:
    """Operands restricted to 0 and the value of largest product magnitude (int8: -128,
    so every product is 0 or 16384; w4a8: W8 = -128 or 0 from q in {0, 1} and s2, -z
    in {0, 128}; an LSB beat of msb_lsb carries a nibble: 0 or 8). The sums reach their
    worst magnitudes, and every multiplier has one live partial product, which keeps
    the solver fast (with any operands it takes minutes per step past depth 8)."""
    cfg, beat = dut.cfg, dut.i.payload
    ok = [_one_of(a, (0, -128)) for a in beat.a]
    if cfg.mode == "w4a8":
        s = dut.s.payload
        ok += [_one_of(q, (0, 1)) for q in beat.w] + [_one_of(v, (0, 128))
                                                       for v in (*s.s2, *s.neg_z)]
    elif cfg.mode == "msb_lsb":
        ok += [Mux(beat.msb, _one_of(w, (0, -128)), _one_of(w, (0, 8))) for w in beat.w]
    else:
        ok += [_one_of(w, (0, -128)) for w in beat.w]
    return Cat(*ok).all()


def _sums_match(m: Module, dut) -> None:
    """Each result row equals its tile's sum of A[r] * W[c], computed here one bit wider
    than the accumulators; at most one finished tile waits for the output."""
    cfg, i, o = dut.cfg, dut.i, dut.o
    beat, width = i.payload, cfg.acc_width + 1
    w = [beat.w[c] for c in range(cfg.cols)]
    if cfg.mode == "w4a8":  # QServe: (q * s2 mod 256 + (-z mod 256)) mod 256 as int8
        s = dut.s.payload
        w = [((w[c] * s.s2[c])[:8] + s.neg_z[c])[:8].as_signed() for c in range(cfg.cols)]
    m.d.comb += Assume(~i.valid | _worst_operands(dut))
    tile = [[Signal(signed(width), name=f"sum_{r}_{c}") for c in range(cfg.cols)]
            for r in range(cfg.rows)]
    done = [[Signal(signed(width), name=f"done_{r}_{c}") for c in range(cfg.cols)]
            for r in range(cfg.rows)]
    waiting, row = Signal(name="tile_waiting"), Signal(range(cfg.rows), name="result_row")
    with m.If(transfer(o)):
        m.d.sync += row.eq(Mux(o.payload.last, 0, row + 1))
        with m.If(o.payload.last):
            m.d.sync += waiting.eq(0)
    with m.If(transfer(i)):
        for r in range(cfg.rows):
            for c in range(cfg.cols):
                product = beat.a[r] * w[c]
                if cfg.mode == "msb_lsb":  # an MSB beat's product counts 16 times
                    product = Mux(beat.msb, product << 4, product)
                total = tile[r][c] + product
                m.d.sync += tile[r][c].eq(Mux(beat.last, 0, total))
                with m.If(beat.last):
                    m.d.sync += done[r][c].eq(total)
        with m.If(beat.last):
            m.d.sync += waiting.eq(1)
    finishing = transfer(o) & o.payload.last
    m.d.comb += Assert(~(transfer(i) & beat.last & waiting & ~finishing))
    for r in range(cfg.rows):
        equal = Cat(*[o.payload.c[c] == done[r][c] for c in range(cfg.cols)]).all()
        m.d.comb += Assert(~o.valid | (row != r) | (
            waiting & equal & (o.payload.last == (r == cfg.rows - 1))))
