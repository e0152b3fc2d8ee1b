"""``make bench`` sections of the softmax unit: cycles, error against float64 softmax and
scores per second on real MiniLM attention rows, and its ECP5 area and clock."""
from __future__ import annotations

import numpy as np

from accelgen import registry
from accelgen.golden import softmax as golden
from accelgen.run import run_block
from accelgen.sim.softmax import real_workload
from accelgen.table import markdown

from . import SYNTH_HEADER, per_second, synth, synth_row

#: row lengths, and the rows of each run (enough that the pipeline's fill, one row's
#: latency, is small beside them)
LENGTHS = (128, 256, 512, 1024)
ROWS = 128
#: the scores' fractional bits: MiniLM's logits span about +-40, so 16-bit scores keep
#: 8 fractional bits
FRAC = 8
#: nextpnr's router for the preset
ROUTER = "router1"


def _error(scores: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """|p - softmax| against float64 softmax of the same fixed-point scores."""
    x = scores / 2.0 ** FRAC
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return np.abs(fixed / 2.0 ** golden.PROB_FRAC - e / e.sum(axis=1, keepdims=True))


def cycles(sim: str) -> str:
    """The preset (P = 16, capacity 1024) on real logit rows, rows back to back with the
    output always ready; scores per second at the preset's median Fmax."""
    block = registry.get("softmax")
    cfg = block.config()
    fmax = synth("softmax", cfg, router=ROUTER)["fmax_mhz"]
    median = fmax["median"] if fmax else None
    rows = []
    for n in LENGTHS:
        work = real_workload(rows=ROWS, n=n, frac=FRAC)
        out, rep = run_block(block, cfg, work, sim)
        error = _error(work["scores"], out["probs_fixed"])
        r = work["scores"].shape[0]
        rows.append([n, r, rep["match"], rep["cycles"], rep["model_cycles"],
                     rep["bound_cycles"], rep["scores_per_cycle"],
                     round(rep["scores_per_cycle"] / cfg.lanes, 4),
                     f"{error.max():.3g} ({error.max() * 4096:.3f} x 2^-12)",
                     f"{error.mean():.3g}",
                     per_second(r * n, rep["cycles"], median) if median else "-",
                     golden.cycles(1, n, cfg.lanes)["latency"]])
    return markdown(["n", "rows", "match", "cycles", "model", "bound", "scores/cycle",
                     "of P", "max abs error vs float64", "mean abs error",
                     "10^6 scores/s at median Fmax", "one row's latency, cycles (model)"], rows)


def area(sim: str) -> str:
    """The preset placed and routed with :data:`ROUTER`."""
    cfg = registry.get("softmax").config()
    return markdown(["P", "width", "capacity", "nextpnr router", *SYNTH_HEADER],
                    [[cfg.lanes, cfg.width, cfg.capacity, ROUTER,
                      *synth_row(synth("softmax", cfg, router=ROUTER))]])


SECTIONS = [
    ("softmax: real MiniLM attention rows ({sim})", cycles),
    ("softmax: ECP5-85k out of context (yosys + nextpnr, harness subtracted, 3 seeds)", area),
]
