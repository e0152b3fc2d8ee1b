"""``make bench`` sections of the sparse blocks: the merger's throughput and area, the
SpGEMM's cycles on real matrices, and the memory-side DRAM model's reductions."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from accelgen import registry
from accelgen.params import MergerConfig, SpgemmConfig
from accelgen.run import run_block
from accelgen.table import markdown
from accelgen.golden import matrices
from accelgen.golden.spgemm import partial_streams, reductions

OUT = Path("out")
MERGER_CONFIGS = [(16, 4), (64, 16)]
#: real matrices of the spgemm table (A . A) and their row/column slice
SPGEMM_CASES = [("minnesota", 2642), ("airfoil", 260), ("bar", 600), ("helmholtz_2D", 1024)]
TRAFFIC_CASES = [("minnesota", 4, 64), ("unit_square", 8, 64), ("airfoil", 8, 64),
                 ("helmholtz_2D", 16, 256), ("bar", 64, 128)]


def merger_workloads(cfg: MergerConfig) -> dict[str, dict]:
    """Long random streams (W of 4096 entries), and the real partial-product streams
    of A . A (condensed columns) for the pyamg bar matrix, W at most, keys (row, col)."""
    from accelgen.sim.merger import random_streams

    bar = matrices.load("bar")
    parts = partial_streams(bar, bar)[:cfg.ways]
    return {
        "random": random_streams(cfg, cfg.ways, 4096, seed=1),
        "bar A.A partials": {"keys": np.concatenate([k for k, _ in parts]),
                             "values": np.concatenate([v for _, v in parts]),
                             "lengths": np.array([len(k) for k, _ in parts])},
    }


def merger_cycles(sim: str) -> str:
    block = registry.get("merger")
    rows = []
    for ways, lanes in MERGER_CONFIGS:
        cfg = MergerConfig(ways=ways, lanes=lanes)
        for name, inputs in merger_workloads(cfg).items():
            _, rep = run_block(block, cfg, inputs, sim)
            error = (rep["model_cycles"] - rep["cycles"]) / rep["cycles"]
            rows.append([ways, lanes, name, int(np.sum(inputs["lengths"])), rep["match"],
                         rep["cycles"], rep["model_cycles"], rep["bound_cycles"],
                         rep["elements_per_cycle_per_lane"], f"{100 * error:+.1f}%",
                         int(rep["sim_cycles_per_s"])])
    return markdown(["ways", "P", "streams", "entries", "match", "cycles", "model", "bound",
                     "entries/cycle/P", "model error", "sim cycles/s"], rows)


def merger_synth() -> str:
    """ECP5 out of context, seed 1: the preset tree with 32-bit records (16-bit key +
    16-bit value, the size the open merge trees were measured at) and with 32-bit keys
    and values. The 64-way, 16-lane tree: `accelgen synth merger --set ways=64 --set
    lanes=16` (hours of yosys + nextpnr here)."""
    from accelgen.synth import synthesize

    rows = []
    for ways, lanes, key, value in [(16, 4, 16, 16), (16, 4, 32, 32)]:
        cfg = MergerConfig(ways=ways, lanes=lanes, key_width=key, value_width=value)
        rep = synthesize(lambda: registry.get("merger").component(cfg), name="merger",
                         target="ecp5", seed=1,
                         out_dir=OUT / "synth" / f"merger-{ways}-{lanes}-{key}-{value}")
        res = rep["resources"]
        rows.append([ways, lanes, f"{key}+{value}", res["lut"]["dut"], res["ff"]["dut"],
                     res["bram"]["dut"], round(rep["fmax_mhz"]["achieved"], 1)])
    return markdown(["ways", "P", "key+value bits", "LUT", "FF", "DP16KD", "Fmax MHz"], rows)


def spgemm_cycles(sim: str) -> str:
    """C = A . A on real matrices (the first ``n`` rows and columns), the preset
    16-way, 4-lane unit; every merge round's cycles count."""
    block = registry.get("spgemm")
    cfg = SpgemmConfig()
    rows = []
    for name, n in SPGEMM_CASES:
        a = matrices.slice_cols(matrices.slice_rows(matrices.load(name), n), n)
        _, rep = run_block(block, cfg, {"a": a, "b": a}, sim)
        rows.append([name, f"{a.shape[0]}x{a.shape[1]}", a.nnz, rep["partial_products"],
                     rep["partial_matrices"], rep["rounds"], rep["match"], rep["cycles"],
                     rep["model_cycles"], rep["bound_cycles"], int(rep["sim_cycles_per_s"]),
                     round(rep["wall_s"], 1)])
    return markdown(["matrix", "shape", "nnz", "partial products", "partials", "rounds",
                     "match", "cycles", "model", "bound", "sim cycles/s", "wall s"], rows)


def spgemm_traffic(sim: str) -> str:
    """golden/spgemm.py's DRAM model, each optimisation's reduction over the step
    before (original columns -> condensed -> Huffman order -> Belady row buffer)."""
    rows = []
    for name, ways, buffer_rows in TRAFFIC_CASES:
        a = matrices.load(name)
        red = reductions(a, a, ways=ways, buffer_rows=buffer_rows)
        rows.append([name, ways, buffer_rows] + [round(red[k], 2) for k in
                                                 ("condensed", "huffman", "prefetch", "overall")])
    return markdown(["matrix (A . A)", "ways", "buffer rows", "condensed", "Huffman",
                     "Belady prefetch", "overall"], rows)


SECTIONS = {
    "merger": [("merger: input entries per cycle per lane ({sim})", merger_cycles),
               ("merger: ECP5-85k out of context (yosys + nextpnr, harness subtracted)",
                lambda sim: merger_synth())],
    "spgemm": [("spgemm: C = A . A on real matrices ({sim})", spgemm_cycles),
               ("spgemm: DRAM traffic reductions (golden memory model; paper: 5.4x, 1.8x, "
                "1.5x)", spgemm_traffic)],
}
