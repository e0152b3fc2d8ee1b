"""Testbench adapter of the ``softmax`` block: npz score rows -> score beats ->
probability beats.

Each row of n scores becomes ceil(n/P) beats (``count`` = P, the last one n - (beats -
1) P), with ``frac`` on every beat and ``last`` on the final one; it comes back as the
same number of beats of probabilities (16 fractional bits).
"""
from __future__ import annotations

import math

import numpy as np
from amaranth import Module, Signal
from amaranth.hdl import Assert, Assume

from accelgen.golden import softmax as golden
from accelgen.hdl.softmax import Softmax, input_layout, output_layout
from accelgen.params.softmax import MAX_FRAC, SoftmaxConfig
from accelgen.workloads.minilm import attention_logit_rows

from .adapter import misplaced_lasts, row_beat_fields
from .inputs import InputError, int_array, scalar
from .invariants import transfer
from .job import Job, Sink, Source, cycle_limit
from .streams import pack, unpack

INPUTS = ("scores: int [R,n] (width-bit two's complement, 1 <= n <= capacity); frac: int "
          f"scalar 0..{MAX_FRAC} (the scores' fractional bits)")
OUTPUTS = (f"probs: float32 [R,n] (probs_fixed / 2^{golden.PROB_FRAC}); probs_fixed: "
           f"uint32 [R,n] (0..2^{golden.PROB_FRAC}); latency: int64 [R] (cycles from the "
           "row's first input beat to its last output beat)")


def check_inputs(cfg: SoftmaxConfig, arrays) -> dict[str, np.ndarray]:
    """Validate the npz arrays of ``accelgen run softmax``."""
    lo, hi = cfg.score_range
    scores = int_array(arrays, "scores", 2, lo, hi,
                       f"signed {cfg.width}-bit integers [R, n]")
    if scores.shape[1] > cfg.capacity:
        raise InputError(f"input scores: row length n = {scores.shape[1]} is out of range; "
                         f"allowed: 1..capacity = {cfg.capacity}")
    frac = scalar(arrays, "frac", 0, MAX_FRAC, f"an integer 0..{MAX_FRAC}")
    return {"scores": scores, "frac": np.array(frac)}


def _beats(cfg: SoftmaxConfig, n: int) -> int:
    return math.ceil(n / cfg.lanes)


def job(cfg: SoftmaxConfig, inputs, valid, ready, max_cycles: int | None = None) -> Job:
    framed = row_beat_fields(inputs["scores"], cfg.lanes)
    beats = len(framed["count"])
    fields = {"scores": framed["items"], "count": framed["count"],
              "frac": np.full(beats, int(inputs["frac"])), "last": framed["last"]}
    limit = max_cycles or cycle_limit(model(cfg, inputs)["model_cycles"])
    return Job(sources={"i": Source(pack(input_layout(cfg), fields), valid)},
               sinks={"o": Sink(beats, ready)}, max_cycles=limit)


def decode(cfg: SoftmaxConfig, inputs, beats: list[int]) -> dict[str, np.ndarray]:
    """Each row's probabilities: the first n lanes of its beats."""
    r, n = inputs["scores"].shape
    fixed = np.zeros((r, n), np.int64)
    if beats:
        probs = unpack(output_layout(cfg), beats)["probs"]
        fixed = probs.reshape(r, -1)[:, :n]
    return {"probs": (fixed / (1 << golden.PROB_FRAC)).astype(np.float32),
            "probs_fixed": fixed.astype(np.uint32)}


def flagged(cfg: SoftmaxConfig, inputs, beats: list[int]) -> int:
    """Output beats whose ``last`` flag or ``count`` is not where and what the row
    makes it."""
    if not beats:
        return 0
    r, n = inputs["scores"].shape
    per_row = _beats(cfg, n)
    out = unpack(output_layout(cfg), beats)
    want = np.tile(np.where(np.arange(per_row) == per_row - 1,
                            n - (per_row - 1) * cfg.lanes, cfg.lanes), r)[:len(beats)]
    return misplaced_lasts(out["last"], [per_row] * r) + \
        int(np.count_nonzero(out["count"] != want))


def expected(cfg: SoftmaxConfig, inputs) -> dict[str, np.ndarray]:
    fixed = golden.softmax_rows(inputs["scores"], int(inputs["frac"]))
    return {"probs": (fixed / (1 << golden.PROB_FRAC)).astype(np.float32),
            "probs_fixed": fixed.astype(np.uint32)}


def timing(cfg: SoftmaxConfig, inputs, job_, result) -> tuple[dict, dict]:
    """Per-row latency (first input beat to last output beat, inclusive) and the rate in
    scores per cycle."""
    r, n = inputs["scores"].shape
    beats = _beats(cfg, n)
    cin, cout = result.cycles.get("i", []), result.cycles.get("o", [])
    latency = np.zeros(r, np.int64)
    for row in range(r):
        end = (row + 1) * beats
        if row * beats < len(cin) and end <= len(cout):
            latency[row] = cout[end - 1] - cin[row * beats] + 1
    return ({"latency": latency},
            {"scores_per_cycle": round(r * n / result.span, 3) if result.span else 0.0,
             "mean_latency": round(float(latency.mean()), 2) if r else 0.0})


def model(cfg: SoftmaxConfig, inputs) -> dict[str, float]:
    r, n = inputs["scores"].shape
    cycles = golden.cycles(r, n, cfg.lanes)
    return {"model_cycles": cycles["total"], "model_latency": cycles["latency"],
            "bound_cycles": golden.bound_cycles(r, n, cfg.lanes)}


def default_workload(cfg: SoftmaxConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """16 random rows of min(256, capacity) scores with 8 fractional bits (frac as far
    as the width allows), spread like attention logits."""
    rng = np.random.default_rng(seed)
    return _random_rows(cfg, rng, 16, min(256, cfg.capacity))


def _random_rows(cfg: SoftmaxConfig, rng, rows: int, n: int) -> dict[str, np.ndarray]:
    frac = min(8, MAX_FRAC, cfg.width - 2)
    lo, hi = cfg.score_range
    logits = rng.normal(0, 3, (rows, n)) * (1 << frac)
    return {"scores": np.clip(np.round(logits), lo, hi).astype(np.int64),
            "frac": np.array(frac)}


def soak_workload(cfg: SoftmaxConfig, items: int, seed: int = 0) -> dict[str, np.ndarray]:
    """At least ``items`` input beats of random rows."""
    rng = np.random.default_rng(seed)
    n = min(256, cfg.capacity)
    return _random_rows(cfg, rng, math.ceil(items / _beats(cfg, n)), n)


component = Softmax


# ---------------------------------------------------------------- real workload

#: ``accelgen workloads softmax`` options (argparse keyword arguments of
#: :func:`real_workload`)
WORKLOAD_OPTIONS = {"rows": dict(type=int, default=32), "n": dict(type=int, default=256),
                    "frac": dict(type=int, default=8)}


def real_logits(rows: int, n: int) -> np.ndarray:
    """``rows`` real MiniLM attention-logit rows (q k^T / sqrt(d) of one query of one
    head) of length ``n`` (2 <= n), float64; rows longer than 512 tokens (the model's
    context) join 256-token rows. Deterministic."""
    if n < 2 or rows < 1:
        raise ValueError("need n >= 2 and rows >= 1")
    seg = n if n <= 512 else 256
    parts = -(-n // seg)
    pool = attention_logit_rows(rows * parts, seg)
    return pool.reshape(rows, parts * seg)[:, :n]


def real_workload(rows: int = 32, n: int = 256, frac: int = 8,
                  width: int = 16) -> dict[str, np.ndarray]:
    """:func:`real_logits` as ``width``-bit scores with ``frac`` fractional bits
    (rounded, clamped to the range)."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    scores = np.clip(np.rint(real_logits(rows, n) * (1 << frac)), lo, hi).astype(np.int64)
    return {"scores": scores, "frac": np.array(frac)}


# ---------------------------------------------------------------- formal

def invariants(m: Module, dut) -> None:
    """Every output beat has at most P valid lanes, all P but on a row's final beat, and
    no more rows leave than arrived (control only: the proof takes products as free
    values)."""
    cfg, i, o = dut.cfg, dut.i, dut.o
    m.d.comb += Assume(~i.valid | (i.payload.count <= cfg.lanes))
    rows_in, rows_out = Signal(8, name="rows_in"), Signal(8, name="rows_out")
    with m.If(transfer(i) & i.payload.last):
        m.d.sync += rows_in.eq(rows_in + 1)
    with m.If(transfer(o) & o.payload.last):
        m.d.sync += rows_out.eq(rows_out + 1)
    m.d.comb += [
        Assert(~o.valid | (o.payload.count <= cfg.lanes)),
        Assert(~o.valid | o.payload.last | (o.payload.count == cfg.lanes)),
        Assert(rows_out <= rows_in),
    ]
