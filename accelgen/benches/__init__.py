"""``make bench`` sections, one module per block (``accelgen.benches.<block>``, found by
the block's name like its testbench adapter): each defines ``SECTIONS``, a list of
(title, function of the simulator name -> Markdown).

Shared here: ECP5 synthesis with three nextpnr seeds (each configuration synthesized
once per bench run, whichever section asks first), the table row of a synthesis
report, and throughput per second: the median Fmax times the work done per cycle.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from accelgen import registry
from accelgen.params.base import as_dict

OUT = Path("out") / "synth"
SEEDS = (1, 2, 3)
SYNTH_HEADER = ["LUT", "FF", "DP16KD", "DSP", "Fmax MHz (median)", "Fmax per seed",
                "critical path: logic levels, ns logic + routing"]


@cache
def _synth(name: str, params: str, nodsp: bool, place: bool, target: str,
           router: str) -> dict:
    from accelgen.synth import synthesize

    block = registry.get(name)
    cfg = block.config(**json.loads(params))
    folder = "-".join(f"{k}{v}" for k, v in json.loads(params).items()) or "preset"
    folder += ("-nodsp" if nodsp else "") + ("" if target == "ecp5" else f"-{target}")
    folder += "" if router == "router1" else f"-{router}"
    return synthesize(lambda: block.component(cfg), name=name, target=target, nodsp=nodsp,
                      out_dir=OUT / name / folder, seeds=SEEDS if place else (), place=place,
                      router=router)


def synth(name: str, cfg, nodsp: bool = False, place: bool = True,
          target: str = "ecp5", router: str = "router1") -> dict:
    """The report of block ``name`` at ``cfg`` on ``target`` (the ECP5-85k by default;
    seeds :data:`SEEDS`; nextpnr's ``router``), made once per bench run (and reused
    while its inputs are the same: :func:`accelgen.synth.synthesize`)."""
    preset = as_dict(registry.get(name).config())
    changed = {k: v for k, v in as_dict(cfg).items() if preset[k] != v}
    return _synth(name, json.dumps(changed, sort_keys=True), nodsp, place, target, router)



def synth_row(report: dict) -> list:
    """The :data:`SYNTH_HEADER` cells of a report (harness subtracted)."""
    res, fmax, path = report["resources"], report["fmax_mhz"], report["critical_path"]
    counts = [res[key]["dut"] for key in ("lut", "ff", "bram", "dsp")]
    if not fmax:
        return counts + ["not placed", "-", "-"]
    return counts + [fmax["median"], " / ".join(str(v) for v in fmax["seeds"].values()),
                     f"{path['logic_levels']}, {path['logic_ns']} + {path['routing_ns']}"]


def per_second(work: float, cycles: int, fmax_mhz: float) -> str:
    """``work`` done in ``cycles`` at ``fmax_mhz``, in 10^6 per second."""
    return f"{work / cycles * fmax_mhz:.1f}" if cycles else "-"
