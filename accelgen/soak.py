"""``accelgen soak`` (``make soak``): at least 10**6 input beats through every block on Verilator, random
stalls on every port; counts beats lost, duplicated or reordered (must be 0).

Outside CI's budget; prints one line per block with the simulation rate.
"""
from __future__ import annotations

import argparse
import sys

from accelgen import registry, results
from accelgen.configure import load_config
from accelgen.run import run_block
from accelgen.sim.streams import random_pattern


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="accelgen soak", description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=10**6)
    p.add_argument("--sim", default="verilator", choices=("verilator", "icarus"))
    p.add_argument("blocks", nargs="*", help="blocks to soak (default: all)")
    p.add_argument("--set", action="append", default=[], metavar="key=value",
                   help="override a parameter of the named block (repeatable)")
    args = p.parse_args(argv)
    failed, lines = 0, []
    for name in args.blocks or list(registry.BLOCKS):
        block = registry.get(name)
        cfg = load_config(block, None, args.set)
        inputs = block.bench.soak_workload(cfg, args.items)
        _, rep = run_block(block, cfg, inputs, args.sim, valid=random_pattern(0.7, seed=11),
                           ready=random_pattern(0.7, seed=12))
        ok = rep["match"] and rep["mismatches"] == 0 and rep["stream_violations"] == 0
        failed += not ok
        label = block.name + "".join(f" {x}" for x in args.set)
        lines.append(f"{'PASS' if ok else 'FAIL'} {label}: {rep['input_beats']} input beats, "
                     f"{rep['mismatches']} wrong/lost/extra outputs, "
                     f"{rep['stream_violations']} stream violations, {rep['cycles']} cycles, "
                     f"{rep['sim_cycles_per_s']:.0f} cycles/s on {args.sim}")
        print(lines[-1], flush=True)
    name = "-".join(["soak", *args.blocks, *(x.replace("=", "-") for x in args.set)])
    path = results.write(name, "accelgen soak", "\n".join(f"- {line}" for line in lines))
    print(f"written: {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
