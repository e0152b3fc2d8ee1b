"""``make bench``: measured cycles on real workloads and ECP5 synthesis, as Markdown.

Every number printed here is measured by this run (RTL simulation on Verilator,
yosys + nextpnr with three seeds for resources and Fmax); the analytic model and the
physical bound sit beside the measurement, and throughput per second is the median
Fmax times the work per cycle. Each block's sections are its registry entry's
(``accelgen/benches/<block>.py``). Each block's report is written to
docs/results/bench-<block>.md.
"""
from __future__ import annotations

import argparse
import sys

from accelgen import registry, results
from accelgen.run import pick_sim


def main(argv=None) -> int:
    """``accelgen bench [BLOCK ...]``: every block's sections, or the named ones; each
    block's written to docs/results/bench-BLOCK.md."""
    names_all = list(registry.BLOCKS)
    p = argparse.ArgumentParser(prog="accelgen bench", description=main.__doc__.splitlines()[0])
    p.add_argument("blocks", nargs="*", metavar="BLOCK", help=f"one of {', '.join(names_all)}")
    names = p.parse_args(argv).blocks or names_all
    unknown = [n for n in names if n not in names_all]
    if unknown:
        print(f"bench: {unknown[0]!r} is unknown; allowed: {', '.join(names_all)}",
              file=sys.stderr)
        return 2
    sim = pick_sim("verilator")
    for name in names:
        parts = []
        for title, section in registry.get(name).bench_sections:
            parts += [f"## {title.format(sim=sim)}\n", section(sim), ""]
        path = results.write(f"bench-{name}", "accelgen bench", "\n".join(parts))
        print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
