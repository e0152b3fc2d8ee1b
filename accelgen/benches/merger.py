"""``make bench`` sections of the merger: input entries per cycle and per second on long
random streams and real partial products, and its ECP5 area and clock."""
from __future__ import annotations

import numpy as np

from accelgen import registry
from accelgen.workloads import matrices
from accelgen.golden.spgemm import partial_streams
from accelgen.params import MergerConfig
from accelgen.run import run_block
from accelgen.sim.merger import random_streams
from accelgen.table import markdown

from . import SYNTH_HEADER, per_second, synth, synth_row

CONFIGS = [(16, 4), (64, 16)]
#: the tree whose clock gives entries per second: 16+16-bit records, the size the open
#: merge trees were measured at
TIMED = MergerConfig(ways=16, lanes=4, key_width=16, value_width=16)
#: the synthesized trees, both placed and routed
SYNTH_CONFIGS = [TIMED, MergerConfig(ways=16, lanes=4)]
#: nextpnr's router for the merger: router1 routed no FLiMS build of the 16+16-bit tree
#: here (seed 1: 790 wires still overused after 84,000 iterations and 21 minutes of
#: routing on one, 2,866 after 73,000 when stopped on a later one); router2 routes it in
#: about a minute
ROUTER = "router2"


def workloads(cfg: MergerConfig) -> dict[str, dict]:
    """Long random streams (W of 4096 entries), and the real partial-product streams
    of A . A (condensed columns) for the pyamg bar matrix, W at most, keys (row, col)."""
    bar = matrices.load("bar")
    parts = partial_streams(bar, bar)[:cfg.ways]
    return {
        "random": random_streams(cfg, cfg.ways, 4096, seed=1),
        "bar A.A partials": {"keys": np.concatenate([k for k, _ in parts]),
                             "values": np.concatenate([v for _, v in parts]),
                             "lengths": np.array([len(k) for k, _ in parts])},
    }


def cycles(sim: str) -> str:
    """Entries per cycle per lane; entries per second at the median Fmax of the 16-way,
    4-lane tree with 16-bit keys and values (its cycles do not depend on the widths)."""
    block = registry.get("merger")
    rows = []
    for ways, lanes in CONFIGS:
        cfg = MergerConfig(ways=ways, lanes=lanes)
        timed = (ways, lanes) == (TIMED.ways, TIMED.lanes)
        fmax = synth("merger", TIMED, router=ROUTER)["fmax_mhz"]["median"] if timed else None
        for name, inputs in workloads(cfg).items():
            _, rep = run_block(block, cfg, inputs, sim)
            entries = int(np.sum(inputs["lengths"]))
            error = (rep["model_cycles"] - rep["cycles"]) / rep["cycles"]
            rows.append([ways, lanes, name, entries, rep["match"], rep["cycles"],
                         rep["model_cycles"], rep["bound_cycles"],
                         rep["elements_per_cycle_per_lane"], f"{100 * error:+.1f}%",
                         per_second(entries, rep["cycles"], fmax) if fmax else "-",
                         int(rep["sim_cycles_per_s"])])
    return markdown(["ways", "P", "streams", "entries", "match", "cycles", "model", "bound",
                     "entries/cycle/P", "model error", "10^6 entries/s at median Fmax (16+16-bit)",
                     "sim cycles/s"], rows)


def area(sim: str) -> str:
    """The 16-way, 4-lane tree at two record widths, placed and routed with
    :data:`ROUTER`. The 64-way, 16-lane tree: `accelgen synth merger --set ways=64 --set
    lanes=16`."""
    rows = []
    for cfg in SYNTH_CONFIGS:
        rows.append([cfg.ways, cfg.lanes, f"{cfg.key_width}+{cfg.value_width}", ROUTER,
                     *synth_row(synth("merger", cfg, router=ROUTER))])
    return markdown(["ways", "P", "key+value bits", "nextpnr router", *SYNTH_HEADER], rows)


SECTIONS = [
    ("merger: input entries per cycle per lane ({sim})", cycles),
    ("merger: ECP5-85k out of context (yosys + nextpnr, harness subtracted, 3 seeds)", area),
]
