"""``make soak``: at least 10**6 input beats through every block on Verilator, random
stalls on every port; counts beats lost, duplicated or reordered (must be 0).

Outside CI's budget; prints one line per block with the simulation rate.
"""
from __future__ import annotations

import argparse
import sys

from accelgen import registry
from accelgen.cli import load_config
from accelgen.run import run_block
from sim.streams import random_pattern


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.soak", description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=10**6)
    p.add_argument("--sim", default="verilator", choices=("verilator", "icarus"))
    args = p.parse_args(argv)
    failed = 0
    for block in registry.BLOCKS.values():
        cfg = load_config(block, None, [])
        inputs = block.bench.soak_workload(cfg, args.items)
        _, rep = run_block(block, cfg, inputs, args.sim, valid=random_pattern(0.7, seed=11),
                           ready=random_pattern(0.7, seed=12))
        ok = rep["match"] and rep["mismatches"] == 0 and rep["stream_violations"] == 0
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} {block.name}: {rep['input_beats']} input beats, "
              f"{rep['mismatches']} wrong/lost/extra outputs, {rep['stream_violations']} "
              f"stream violations, {rep['cycles']} cycles, {rep['sim_cycles_per_s']:.0f} "
              f"cycles/s on {args.sim}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
