"""``accelgen formal [--depth N] [--mode bmc|prove]``: every registered block proven at its
small formal configurations: the stream rules to depth N, then the stream rules with the
block's invariants (sim/invariants.py) to depth N or its ``FormalCase.invariant_depth``;
then k-induction is tried (unbounded proofs of the stream rules, a minute each).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from accelgen import registry, results
from accelgen.sim.formal import prove
from accelgen.table import markdown


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="accelgen formal", description=__doc__.splitlines()[0])
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--mode", choices=("bmc", "prove"), default="bmc")
    p.add_argument("-o", "--output", default="out/formal")
    p.add_argument("--no-induction", dest="induction", action="store_false",
                   help="skip the k-induction attempts (a minute at most each)")
    args = p.parse_args(argv)
    rows = []
    for block in registry.BLOCKS.values():
        for case, cfg in block.formal_configs():
            runs = [(case.label, args.depth, None)]
            if block.invariants is not None:
                runs.append((f"{case.label}+invariants",
                             min(args.depth, case.invariant_depth), block.invariants))
            for name, depth, invariants in runs:
                outcome = prove(block.component(cfg), name, Path(args.output), depth,
                                args.mode, invariants, cover_depth=max(depth, case.test_depth),
                                **case.options)
                print(outcome.line(name), flush=True)
                rows.append(_row(name, outcome, "PASS" if outcome.passed else "FAIL"))
    failed = sum(row[-2] == "FAIL" for row in rows)
    summary = f"{len(rows) - failed} passed, {failed} failed"
    print(summary)
    if args.induction:
        rows += _induction(Path(args.output))
    path = results.write("formal", "accelgen formal", summary + "\n\n" + markdown(
        ["proof", "mode", "depth", "cover depth", "verdict", "seconds"], rows))
    print(f"written: {path}")
    return 1 if failed else 0


def _row(name: str, outcome, verdict: str) -> list:
    return [name, outcome.mode, outcome.depth, outcome.cover_depth, verdict, outcome.seconds]


def _induction(output: Path, depth: int = 10, timeout: float = 60) -> list[list]:
    """Try to prove the stream rules for ever (k-induction) for every configuration,
    allowing each a minute; return the table rows. A failed induction step is no bug
    (the step may start from a state no reset reaches); the bounded proofs stand."""
    rows = []
    for block in registry.BLOCKS.values():
        for case, cfg in block.formal_configs():
            label = case.label
            outcome = prove(block.component(cfg), label, output / "induction", depth,
                            "prove", timeout=timeout, cover_depth=case.test_depth,
                            **case.options)
            verdict = "PROVEN for ever" if outcome.passed else "no induction proof"
            print(f"{verdict} {label}: k-induction, k = {depth} (log {outcome.log})",
                  flush=True)
            rows.append(_row(label, outcome, verdict))
    return rows


if __name__ == "__main__":
    sys.exit(main())
