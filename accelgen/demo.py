"""``accelgen demo`` (``make demo``): every registered block's default workload on Verilator, one table."""
from __future__ import annotations

import argparse
import sys

from accelgen import registry
from accelgen.configure import load_config
from accelgen.run import pick_sim, run_block
from accelgen.table import markdown


def main(argv=None) -> int:
    argparse.ArgumentParser(prog="accelgen demo", description=__doc__.splitlines()[0]).parse_args(argv)
    sim = pick_sim("verilator")
    rows = []
    for block in registry.BLOCKS.values():
        cfg = load_config(block, None, [])
        _, rep = run_block(block, cfg, block.bench.default_workload(cfg), sim)
        rows.append([block.name, sim, rep["match"], rep["cycles"], rep["model_cycles"],
                     rep["bound_cycles"], round(rep["bound_cycles"] / rep["cycles"], 4)])
    print(markdown(["block", "sim", "match", "cycles", "model cycles", "bound", "bound / cycles"],
                   rows))
    return 0 if all(r[2] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
