"""``make bench``: measured cycles on real layer shapes and ECP5 synthesis, as Markdown.

Every number printed here is measured by this run (RTL simulation on Verilator,
yosys + nextpnr for resources and Fmax); the analytic model and the physical bound
sit beside the measurement. The report is also written to out/bench.md.
"""
from __future__ import annotations

import os
import platform
import sys
from datetime import date
from pathlib import Path

from accelgen import registry
from accelgen.cli import load_config, pick_sim
from accelgen.run import run_block
from accelgen.table import markdown
from accelgen.workloads import mac as mac_workload

OUT = Path("out")
MAC_LAYERS = [("q", 0), ("attn_out", 0), ("ffn1", 0), ("ffn2", 0)]


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    return f"{date.today()}, {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def mac_cycles(sim: str, tokens: int = 16) -> str:
    block = registry.get("mac")
    cfg = load_config(block, None, [])
    rows = []
    for linear, layer in MAC_LAYERS:
        inputs = mac_workload(tokens, layer, linear)
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
    from synth import synthesize

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


def main() -> int:
    sim = pick_sim("verilator")
    parts = [f"# accelgen bench\n\nMachine: {machine()}.\n",
             f"## mac: cycles on real layers ({sim})\n", mac_cycles(sim),
             "\n## mac: ECP5-85k out of context (yosys + nextpnr, harness subtracted)\n",
             mac_synth()]
    text = "\n".join(parts) + "\n"
    OUT.mkdir(exist_ok=True)
    (OUT / "bench.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
