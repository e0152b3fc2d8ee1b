"""``make bench`` sections of the top-k engines: cycles and scores per second on real
attention rows, and their ECP5 area and clock."""
from __future__ import annotations

import numpy as np

from accelgen import registry
from accelgen.configure import load_config
from accelgen.golden.topk import quickselect_rounds_mean, spatten_model_mean
from accelgen.run import run_block
from accelgen.sim.topk import real_rows
from accelgen.table import markdown

from . import SYNTH_HEADER, per_second, synth, synth_row

ENGINES = ("quickselect", "fast")
POINTS = [(256, 32), (1024, 128), (4096, 32)]
ROWS = 32
KINDS = ("random", "probs", "importance", "ascending")


def scores(kind: str, n: int) -> np.ndarray:
    """ROWS rows of n uint16 scores: uniform random, real attention probabilities, real
    cumulative token importance, or ascending (the filter's adversary)."""
    rng = np.random.default_rng(n)
    if kind == "random":
        return rng.integers(0, 1 << 16, (ROWS, n))
    if kind == "ascending":
        return np.sort(rng.integers(0, 1 << 16, (ROWS, n)), axis=1)
    return real_rows(kind, ROWS, n)


def _config(engine: str, n: int):
    return load_config(registry.get("topk"), None, [f"engine={engine}",
                                                     f"capacity={max(1024, n)}"])


#: the engines placed and routed at the preset, with nextpnr's router for each. The
#: quick-select (its stores in block RAM) routes with router2 on every seed, about 15
#: minutes each here. No seed of the fast engine tried since commit 8cf788e has routed
#: (router2's overused wires stop falling in the thousands; router1 had 6,631 and 10,094
#: arcs left after 12 minutes), and a run ends only at the flow's one-hour limit, failing
#: the bench: it is counted by yosys only (docs/blocks/topk.md has its attempts)
PLACED: dict[str, str] = {"quickselect": "router2"}


def _synth_preset(engine: str, cfg) -> dict:
    """The report of an engine at the preset: placed with its :data:`PLACED` router."""
    return synth("topk", cfg, place=engine in PLACED, router=PLACED.get(engine, "router1"))


def cycles(sim: str) -> str:
    """Both engines, P = 16, rows back to back with the output always ready; scores per
    second at the median Fmax where the configuration is the placed preset."""
    block, preset = registry.get("topk"), registry.get("topk").config()
    rows = []
    for engine in ENGINES:
        for n, k in POINTS:
            cfg = _config(engine, n)
            fmax = _synth_preset(engine, cfg)["fmax_mhz"]["median"] \
                if cfg.capacity == preset.capacity and engine in PLACED else None
            for kind in KINDS:
                inputs = {"scores": scores(kind, n), "k": np.array(k)}
                _, rep = run_block(block, cfg, inputs, sim)
                error = (rep["model_cycles"] - rep["cycles"]) / rep["cycles"]
                rows.append([engine, n, k, kind, rep["match"], rep["cycles"], rep["model_cycles"],
                             rep["bound_cycles"], rep["throughput_ratio"], rep["mean_latency"],
                             f"{100 * error:+.1f}%",
                             per_second(ROWS * n, rep["cycles"], fmax) if fmax else "-"])
    table = markdown(["engine", "n", "k", "data", "match", "cycles", "model", "bound",
                      "throughput ratio", "mean latency", "model error",
                      "10^6 scores/s at median Fmax"], rows)
    paper = markdown(["n", "k", "SpAtten's model: mean cycles, no replay",
                      "our quickselect, same accounting", "SpAtten's ratio to n/P"],
                     [[n, k, round(m := spatten_model_mean(n, k), 1),
                       round(quickselect_rounds_mean(n, k), 1), round(m / (n / 16), 2)]
                      for n, k in POINTS])
    return table + "\n\n" + paper


def area(sim: str) -> str:
    """Both engines at the preset (P = 16, 16-bit scores, capacity 1024); the ones not in
    :data:`PLACED` through yosys only."""
    rows = [[engine, PLACED.get(engine, "not placed"),
             *synth_row(_synth_preset(engine, _config(engine, 1024)))] for engine in ENGINES]
    return markdown(["engine", "nextpnr router", *SYNTH_HEADER], rows) + (
        "\n\nAnchors measured on the same flow (16 keys of 16 bits, fully pipelined): an "
        "even-odd merge sorting network 3,278 LUT at 208 MHz, a bitonic one 4,162 LUT at "
        "185 MHz.")


#: the small engine an iCE40 UP5K board is asked to hold: P = 4, 8-bit scores, 256
SMALL = ["lanes=4", "width=8", "capacity=256"]


def ice40(sim: str) -> str:
    """Both engines at P = 4, 8-bit scores, capacity 256 on the iCE40 UP5K, placed and
    routed (3 seeds); yosys's counts where nextpnr finds the design too big."""
    from accelgen.synth import SynthError

    rows = []
    for engine in ENGINES:
        cfg = load_config(registry.get("topk"), None, [f"engine={engine}", *SMALL])
        try:
            rows.append([engine, *synth_row(synth("topk", cfg, target="ice40")), "placed"])
        except SynthError as exc:
            if "no BELs remaining" not in str(exc):
                raise
            counts = synth("topk", cfg, place=False, target="ice40")
            rows.append([engine, *synth_row(counts), "does not fit the device"])
    header = ["LUT", "FF", "SB_RAM40_4K", "SB_MAC16", *SYNTH_HEADER[4:]]
    return markdown(["engine", *header, "place and route"], rows)


SECTIONS = [
    (f"topk: throughput on {ROWS} rows back to back, P = 16 ({{sim}})", cycles),
    ("topk: ECP5-85k out of context at the preset (yosys; nextpnr with 3 seeds for the "
     "placed engines; harness subtracted)", area),
    ("topk: a small engine on the iCE40 UP5K (yosys + nextpnr, harness subtracted)", ice40),
]
