"""``make bench``: measured cycles on real layer shapes and ECP5 synthesis, as Markdown.

Every number printed here is measured by this run (RTL simulation on Verilator,
yosys + nextpnr for resources and Fmax); the analytic model and the physical bound
sit beside the measurement. The report is written to docs/results/bench.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from accelgen import bench_mapping, bench_sparse, registry, results
from accelgen.bench_mac import mac_modes_cycles, mac_modes_synth
from accelgen.bench_quant import quant_error_table
from accelgen.configure import load_config
from accelgen.run import pick_sim, run_block
from accelgen.table import markdown
from accelgen.sim.mac import real_workload as mac_workload
from accelgen.sim.topk import real_rows as topk_rows

OUT = Path("out")
MAC_LAYERS = [("q", 0), ("attn_out", 0), ("ffn1", 0), ("ffn2", 0)]


def mac_cycles(sim: str, tokens: int = 16) -> str:
    block = registry.get("mac")
    cfg = load_config(block, None, [])
    rows = []
    for linear, layer in MAC_LAYERS:
        inputs = mac_workload(tokens=tokens, layer=layer, linear=linear)
        _, rep = run_block(block, cfg, inputs, sim)
        (m, k), n = inputs["a"].shape, inputs["w"].shape[1]
        rows.append([f"MiniLM L{layer} {linear}", f"{m}x{k}x{n}", rep["match"], rep["cycles"],
                     rep["model_cycles"], rep["bound_cycles"], rep["utilization"],
                     int(rep["sim_cycles_per_s"])])
    return markdown(["layer (real weights, real text)", "M x K x N", "match", "cycles",
                     "model", "bound", "utilization", "sim cycles/s"], rows)


SEEDS = (1, 2, 3)


def mac_synth() -> str:
    """ECP5 out of context at the preset size, one DSP per PE, placed and routed with
    each of SEEDS (Fmax moves with placement; resources come from yosys and do not).
    The LUT-only build of an 8 x 8 array takes nextpnr over half an hour here:
    `accelgen synth mac --nodsp`."""
    from accelgen.synth import synthesize

    block = registry.get("mac")
    cfg = load_config(block, None, [])
    pes = cfg.rows * cfg.cols
    rows = []
    for seed in SEEDS:
        rep = synthesize(lambda: block.component(cfg), name="mac", target="ecp5",
                         out_dir=OUT / "synth" / f"mac-seed{seed}", seed=seed)
        res = rep["resources"]
        lut, ff, dsp = res["lut"]["dut"], res["ff"]["dut"], res["dsp"]["dut"]
        rows.append([f"{cfg.rows}x{cfg.cols}", lut, ff, dsp, round(lut / pes, 1),
                     round(ff / pes, 1), round(rep["fmax_mhz"]["achieved"], 1), seed])
    return markdown(["array", "LUT", "FF", "DSP", "LUT/PE", "FF/PE", "Fmax MHz", "seed"], rows)


TOPK_POINTS = [(256, 32), (1024, 128), (4096, 32)]
TOPK_ROWS = 32
TOPK_KINDS = ("random", "probs", "importance", "ascending")


def topk_scores(kind: str, n: int):
    """TOPK_ROWS rows of n uint16 scores: uniform random, real attention probabilities,
    real cumulative token importance, or ascending (the filter's adversary)."""
    import numpy as np

    rng = np.random.default_rng(n)
    if kind == "random":
        return rng.integers(0, 1 << 16, (TOPK_ROWS, n))
    if kind == "ascending":
        return np.sort(rng.integers(0, 1 << 16, (TOPK_ROWS, n)), axis=1)
    return topk_rows(kind, TOPK_ROWS, n)


def topk_cycles(sim: str) -> str:
    """Both engines, P = 16, rows back to back with the output always ready."""
    import numpy as np

    from accelgen.golden.topk import quickselect_rounds_mean, spatten_model_mean

    block = registry.get("topk")
    rows = []
    for engine in ("quickselect", "fast"):
        for n, k in TOPK_POINTS:
            cfg = load_config(block, None, [f"engine={engine}", f"capacity={max(1024, n)}"])
            for kind in TOPK_KINDS:
                inputs = {"scores": topk_scores(kind, n), "k": np.array(k)}
                _, rep = run_block(block, cfg, inputs, sim)
                error = (rep["model_cycles"] - rep["cycles"]) / rep["cycles"]
                rows.append([engine, n, k, kind, rep["match"], rep["cycles"], rep["model_cycles"],
                             rep["bound_cycles"], rep["throughput_ratio"], rep["mean_latency"],
                             f"{100 * error:+.1f}%"])
    table = markdown(["engine", "n", "k", "data", "match", "cycles", "model", "bound",
                      "throughput ratio", "mean latency", "model error"], rows)
    paper = markdown(["n", "k", "SpAtten's model: mean cycles, no replay",
                      "our quickselect, same accounting", "SpAtten's ratio to n/P"],
                     [[n, k, round(m := spatten_model_mean(n, k), 1),
                       round(quickselect_rounds_mean(n, k), 1), round(m / (n / 16), 2)]
                      for n, k in TOPK_POINTS])
    return table + "\n\n" + paper


def topk_synth() -> str:
    """Both engines at the preset (P = 16, 16-bit scores, capacity 1024), ECP5 seed 1."""
    from accelgen.synth import synthesize

    block = registry.get("topk")
    rows = []
    for engine in ("quickselect", "fast"):
        cfg = load_config(block, None, [f"engine={engine}"])
        rep = synthesize(lambda: block.component(cfg), name="topk", target="ecp5",
                         out_dir=OUT / "synth" / f"topk-{engine}", seed=1)
        res = rep["resources"]
        rows.append([engine, res["lut"]["dut"], res["ff"]["dut"], res["bram"]["dut"],
                     round(rep["fmax_mhz"]["achieved"], 1), rep["fmax_mhz"]["constraint"]])
    return markdown(["engine", "LUT", "FF", "DP16KD", "Fmax MHz", "constraint MHz"], rows)


SECTIONS = {
    "mac": [("mac: cycles on real layers ({sim})", mac_cycles),
            ("mac: ECP5-85k out of context (yosys + nextpnr, harness subtracted)",
             lambda sim: mac_synth()),
            ("mac modes: cycles on real operands ({sim})", mac_modes_cycles),
            ("mac modes: ECP5-85k area per mode, a PE alone and the 8 x 8 array",
             lambda sim: mac_modes_synth()),
            ("mac modes: quantization error on real MiniLM layers (float64 reference)",
             lambda sim: quant_error_table())],
    "topk": [(f"topk: throughput on {TOPK_ROWS} rows back to back, P = 16 ({{sim}})",
              topk_cycles),
             ("topk: ECP5-85k out of context (yosys + nextpnr, harness subtracted)",
              lambda sim: topk_synth())],
    **bench_sparse.SECTIONS,
    **bench_mapping.SECTIONS,
}


def main(argv=None) -> int:
    """``accelgen bench [BLOCK ...]``: every block's sections, or the named ones;
    written to docs/results/bench.md (bench-BLOCK.md for a selection)."""
    p = argparse.ArgumentParser(prog="accelgen bench", description=main.__doc__.splitlines()[0])
    p.add_argument("blocks", nargs="*", metavar="BLOCK", help=f"one of {', '.join(SECTIONS)}")
    names = p.parse_args(argv).blocks or list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        print(f"bench: {unknown[0]!r} is unknown; allowed: {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    sim = pick_sim("verilator")
    parts = []
    for name in names:
        for title, section in SECTIONS[name]:
            parts += [f"## {title.format(sim=sim)}\n", section(sim), ""]
    target = "bench" if names == list(SECTIONS) else f"bench-{'-'.join(names)}"
    path = results.write(target, "accelgen bench", "\n".join(parts))
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
