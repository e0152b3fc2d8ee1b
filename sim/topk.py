"""Testbench adapter of the ``topk`` block: npz score rows → score beats → selected pairs.

Each row of n scores becomes ceil(n/P) beats (``count`` = P, the last one n mod P when
n is not a multiple of P), with the row's k on every beat and ``last`` on the final
one; it comes back as ceil(k_eff/P) beats of (index, value) pairs, k_eff = min(k, n).
"""
from __future__ import annotations

import math

import numpy as np
from amaranth import Module, Mux, Signal
from amaranth.hdl import Assert, Assume

from accelgen.params.topk import TopkConfig
from accelgen.golden import topk as golden
from accelgen.workloads.minilm import attention_score_rows
from accelgen.hdl.topk import TopK, input_layout, output_layout

from .inputs import InputError, int_array
from .adapter import misplaced_lasts, row_beat_fields
from .invariants import constant, sorted_beats, transfer
from .job import Job, Sink, Source, cycle_limit
from .streams import pack, unpack

INPUTS = "scores: int [R,n] (width bits; signed if configured), k: int, scalar or [R], 1..capacity"
OUTPUTS = ("indices: int32 [R,K] ascending, K = max over rows of min(k, n) (shorter rows "
           "padded with index -1, value 0); values: int64 [R,K]; latency: int64 [R] (cycles "
           "from the row's first input beat to its last output beat)")


def score_range(cfg: TopkConfig) -> tuple[int, int]:
    return (-(1 << (cfg.width - 1)), (1 << (cfg.width - 1)) - 1) if cfg.signed \
        else (0, (1 << cfg.width) - 1)


def check_inputs(cfg: TopkConfig, arrays) -> dict[str, np.ndarray]:
    """Validate the npz arrays of ``accelgen run topk``."""
    lo, hi = score_range(cfg)
    kind = f"{'signed' if cfg.signed else 'unsigned'} {cfg.width}-bit"
    scores = int_array(arrays, "scores", 2, lo, hi, f"{kind} integers [R, n]")
    if scores.shape[1] < 1 or scores.shape[1] > cfg.capacity:
        raise InputError(f"input scores: row length n = {scores.shape[1]} is out of range; "
                         f"allowed: 1..capacity = {cfg.capacity}")
    if "k" not in arrays:
        raise InputError(f"input k: missing; expected an integer or [R] integers in "
                         f"1..{cfg.capacity}")
    k = np.asarray(arrays["k"])
    if k.ndim == 0:
        k = k.reshape(1)
        scalar = True
    else:
        scalar = False
    k = int_array({"k": k}, "k", 1, 1, cfg.capacity, f"an integer or [R] integers in 1..{cfg.capacity}")
    if not scalar and k.shape[0] != scores.shape[0]:
        raise InputError(f"input k: shape {list(k.shape)} does not match scores "
                         f"{list(scores.shape)}; expected a scalar or [R] = [{scores.shape[0]}]")
    return {"scores": scores, "k": np.broadcast_to(k, (scores.shape[0],)).copy()}


def _row_beats(cfg: TopkConfig, n: int) -> int:
    return math.ceil(n / cfg.lanes)


def _ks(inputs) -> np.ndarray:
    """k per row (a scalar k applies to every row)."""
    return np.broadcast_to(np.asarray(inputs["k"], np.int64), (inputs["scores"].shape[0],))


def _k_eff(inputs) -> np.ndarray:
    return np.minimum(_ks(inputs), inputs["scores"].shape[1])


def job(cfg: TopkConfig, inputs, valid, ready, max_cycles: int | None = None) -> Job:
    scores, ks = inputs["scores"], _ks(inputs)
    n = scores.shape[1]
    beats = _row_beats(cfg, n)
    framed = row_beat_fields(scores, cfg.lanes)
    fields = {"scores": framed["items"], "count": framed["count"],
              "k": np.repeat(ks, beats), "last": framed["last"]}
    out_beats = int(sum(math.ceil(k / cfg.lanes) for k in _k_eff(inputs)))
    # the cycle model covers 1 <= k <= n; a row with k = 0 (refused by the CLI, defined
    # for the bare Verilog) takes fewer cycles than with k = 1
    bounded = {**inputs, "k": np.clip(ks, 1, max(1, n))}
    limit = max_cycles or cycle_limit(model(cfg, bounded)["model_cycles"])
    return Job(sources={"i": Source(pack(input_layout(cfg), fields), valid)},
               sinks={"o": Sink(out_beats, ready)}, max_cycles=limit)


def _row_spans(cfg: TopkConfig, inputs) -> list[tuple[int, int]]:
    """Per row: (first, end) of its output beats."""
    spans, at = [], 0
    for k in _k_eff(inputs):
        spans.append((at, at + math.ceil(k / cfg.lanes)))
        at = spans[-1][1]
    return spans


def decode(cfg: TopkConfig, inputs, beats: list[int]) -> dict[str, np.ndarray]:
    """Gather each row's pairs (the first ``count`` lanes of its beats)."""
    r = inputs["scores"].shape[0]
    k_eff = _k_eff(inputs)
    width = int(k_eff.max()) if r else 0
    indices = np.full((r, width), -1, np.int64)
    values = np.zeros((r, width), np.int64)
    if beats:
        out = unpack(output_layout(cfg), beats)
        idx, val, cnt = out["pairs"]["index"], out["pairs"]["value"], out["count"]
    for row, (a, b) in enumerate(_row_spans(cfg, inputs)):
        got_i = np.concatenate([idx[j, :cnt[j]] for j in range(a, b)]) if b > a else []
        got_v = np.concatenate([val[j, :cnt[j]] for j in range(a, b)]) if b > a else []
        if len(got_i) != k_eff[row]:  # wrong counts: mark the row wrong
            got_i, got_v = np.full(k_eff[row], -2), np.full(k_eff[row], -1)
        indices[row, :k_eff[row]] = got_i
        values[row, :k_eff[row]] = got_v
    return {"indices": indices.astype(np.int32), "values": values}


def flagged(cfg: TopkConfig, inputs, beats: list[int]) -> int:
    """Output beats whose ``last`` flag is not where the row ends."""
    if not beats:
        return 0
    return misplaced_lasts(unpack(output_layout(cfg), beats)["last"],
                           [b - a for a, b in _row_spans(cfg, inputs)])


def expected(cfg: TopkConfig, inputs) -> dict[str, np.ndarray]:
    scores, ks = inputs["scores"], _ks(inputs)
    r = scores.shape[0]
    width = int(_k_eff(inputs).max()) if r else 0
    indices = np.full((r, width), -1, np.int64)
    values = np.zeros((r, width), np.int64)
    sel, vals = golden.select_rows(scores, ks, cfg.smallest)
    for row, (i, v) in enumerate(zip(sel, vals)):
        indices[row, :len(i)], values[row, :len(v)] = i, v
    return {"indices": indices.astype(np.int32), "values": values}


def timing(cfg: TopkConfig, inputs, job_, result) -> tuple[dict, dict]:
    """Per-row latency (first input beat to last output beat, inclusive) and the
    throughput ratio."""
    r, n = inputs["scores"].shape
    beats = _row_beats(cfg, n)
    cin, cout = result.cycles.get("i", []), result.cycles.get("o", [])
    latency = np.zeros(r, np.int64)
    for row, (_, b) in enumerate(_row_spans(cfg, inputs)):
        if row * beats < len(cin) and 0 < b <= len(cout):
            latency[row] = cout[b - 1] - cin[row * beats] + 1
    bound = golden.bound_cycles(n, cfg.lanes) * r
    return ({"latency": latency},
            {"throughput_ratio": round(result.span / bound, 4) if bound else 0.0,
             "mean_latency": round(float(latency.mean()), 2) if r else 0.0})


def model(cfg: TopkConfig, inputs) -> dict[str, float]:
    r, n = inputs["scores"].shape
    cycles = golden.engine_cycles(cfg.engine, inputs["scores"], _ks(inputs), cfg.lanes,
                                  cfg.width, cfg.signed, cfg.smallest, cfg.regions)
    return {"model_cycles": cycles["total"], "model_latency": cycles["latency"],
            "bound_cycles": golden.bound_cycles(n, cfg.lanes) * r}


def default_workload(cfg: TopkConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """16 random rows of min(256, capacity) scores, k = n/8 (at least 1)."""
    rng = np.random.default_rng(seed)
    n = min(256, cfg.capacity)
    lo, hi = score_range(cfg)
    return {"scores": rng.integers(lo, hi + 1, (16, n)), "k": np.array(max(1, n // 8))}


def soak_workload(cfg: TopkConfig, items: int, seed: int = 0) -> dict[str, np.ndarray]:
    """At least ``items`` input beats of random rows with random k."""
    rng = np.random.default_rng(seed)
    n = min(256, cfg.capacity)
    rows = math.ceil(items / _row_beats(cfg, n))
    lo, hi = score_range(cfg)
    return {"scores": rng.integers(lo, hi + 1, (rows, n)),
            "k": rng.integers(1, n + 1, rows)}


component = TopK


# ---------------------------------------------------------------- real workload

#: the real score rows :func:`real_rows` makes
ROW_KINDS = ("probs", "importance")
#: ``accelgen workloads topk`` options (argparse keyword arguments of :func:`real_workload`)
WORKLOAD_OPTIONS = {"kind": dict(default="probs", choices=ROW_KINDS),
                    "rows": dict(type=int, default=32), "n": dict(type=int, default=256),
                    "k": dict(type=int, default=32)}


def real_rows(kind: str, rows: int, n: int) -> np.ndarray:
    """``rows`` real attention score rows of length ``n`` (3 <= n), uint16, each scaled
    to its own maximum; deterministic. ``probs``: softmax probability rows (one query of
    one head: SpAtten's local V pruning); ``importance``: SpAtten's cumulative token
    importance (summed over heads and queries, accumulated over layers; token pruning).
    Rows longer than 512 tokens (the model's context) join 256-token rows."""
    if kind not in ROW_KINDS:
        raise ValueError(f"kind: {kind!r} is unknown; allowed: {' | '.join(ROW_KINDS)}")
    if n < 3 or rows < 1:
        raise ValueError("need n >= 3 and rows >= 1")
    seg = n if n <= 512 else 256
    parts = -(-n // seg)
    pool = attention_score_rows(rows=rows * parts, tokens=seg, chunks=8)[kind]
    picked = pool[np.arange(rows * parts) % len(pool)]
    return picked.reshape(rows, parts * seg)[:, :n]


def real_workload(kind: str = "probs", rows: int = 32, n: int = 256,
                  k: int = 32) -> dict[str, np.ndarray]:
    """:func:`real_rows` with one ``k`` for every row."""
    return {"scores": real_rows(kind, rows, n), "k": np.array(k)}


# ---------------------------------------------------------------- formal

def invariants(m: Module, dut) -> None:
    """A row never yields more than its k pairs, and their indices rise strictly (k any
    constant, 0 and beyond capacity included)."""
    cfg, i, o = dut.cfg, dut.i, dut.o
    k = constant(m, i.payload.k, "any_k")
    m.d.comb += Assume(~i.valid | ((i.payload.k == k) & (i.payload.count <= cfg.lanes)))
    pairs = o.payload.pairs
    sent = Signal(cfg.index_width + 2, name="row_sent")
    with m.If(transfer(o)):
        m.d.sync += sent.eq(Mux(o.payload.last, 0, sent + o.payload.count))
    m.d.comb += [
        Assert(~o.valid | ((o.payload.count <= cfg.lanes) & (sent + o.payload.count <= k))),
        Assert(sorted_beats(m, o, [p.index for p in pairs], o.payload.count,
                             o.payload.last, strict=True, name="o")),
    ]
