"""``accelgen timing``: calibrate the structural timing guard against nextpnr.

For every block's timing-guard configuration (registry ``TimingGuard``): yosys's
deepest path in LUT levels (synth/levels.py) beside nextpnr's median Fmax over three
seeds on the ECP5-85k (speed 6) and the critical path nextpnr reports. A least-squares
line through the LUT-only paths, period = a + b x levels (a: a flip-flop's clock-to-out
and setup), turns levels into MHz; the paths through a multiplier give its worth in
levels. Written to docs/results/timing.md;
docs/timing.md quotes the fit and sets the budget from it.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from accelgen import registry, results
from accelgen.benches import synth
from accelgen.table import markdown


def measure() -> list[dict]:
    """One row per guard configuration: levels, Fmax per seed and median, critical path."""
    rows = []
    for block in registry.BLOCKS.values():
        for guard in block.timing:
            rep = synth(block.name, block.config(**guard.params))
            path = rep["critical_path"]
            rows.append({"block": block.name, "params": guard.params,
                         "levels": rep["logic_levels"]["max"], "budget": guard.budget,
                         "fmax": rep["fmax_mhz"], "path": path,
                         "lut": rep["resources"]["lut"]["dut"],
                         "multiplier": rep["logic_levels"]["multiplier"]})
    return rows


#: ns of a register-to-register path outside its levels: a flip-flop's clock-to-out
#: (0.43-0.53 ns) and setup on speed 6 (prjtrellis-db timing): the fit's fixed intercept,
#: since the guard configurations are all deep (a free intercept comes out negative)
REGISTER_NS = 0.6


def fit(rows: list[dict]) -> tuple[float, float]:
    """(a, b) of period_ns = a + b x levels over the rows without a multiplier, with
    a = REGISTER_NS and b by least squares."""
    pts = [(r["levels"], 1000 / r["fmax"]["median"]) for r in rows if not r["multiplier"]]
    x = np.array([p[0] for p in pts], float)
    y = np.array([p[1] for p in pts], float) - REGISTER_NS
    return REGISTER_NS, float(x @ y / (x @ x))


def levels_for(mhz: float, a: float, b: float) -> int:
    """The most levels the fit says reach ``mhz``."""
    return int((1000 / mhz - a) // b)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="accelgen timing", description=__doc__.splitlines()[0])
    p.parse_args(argv)
    rows = measure()
    a, b = fit(rows)
    table = markdown(
        ["block", "guard configuration", "LUT", "yosys levels", "budget",
         "Fmax MHz (median)", "per seed", "predicted MHz", "nextpnr critical path"],
        [[r["block"], ", ".join(f"{k}={v}" for k, v in r["params"].items()), r["lut"],
          r["levels"], r["budget"], r["fmax"]["median"],
          " / ".join(str(v) for v in r["fmax"]["seeds"].values()),
          round(1000 / (a + b * r["levels"]), 1),
          f"{r['path']['logic_levels']} cells, {r['path']['logic_ns']} ns logic + "
          f"{r['path']['routing_ns']} ns routing"] for r in rows])
    body = "\n".join([
        table, "",
        f"Fit over the paths without a multiplier: period = {a:.2f} ns + {b:.3f} ns x levels "
        "(the intercept fixed at a flip-flop's clock-to-out and setup).",
        f"Levels that reach 150 MHz: {levels_for(150, a, b)}; 100 MHz: {levels_for(100, a, b)}.",
        ""])
    path = results.write("timing", "accelgen timing", body)
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
