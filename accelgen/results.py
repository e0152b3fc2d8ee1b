"""Measured results as files: ``accelgen bench``, ``formal`` and ``soak`` write their
tables to ``docs/results/<name>.md``, each stamped with the date, the commit and the
machine it ran on, so the numbers in the docs come from a command anyone can re-run
and are never edited by hand."""
from __future__ import annotations

import os
import platform
import subprocess
from datetime import date
from pathlib import Path

RESULTS = Path("docs") / "results"


def machine() -> str:
    """The processor, its core count and the Python version."""
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor() or platform.machine())
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def commit() -> str:
    """The checkout's commit (``-dirty`` with uncommitted changes), or "unknown"."""
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return "unknown"
    return head + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def stamp() -> str:
    return f"{date.today()}, commit {commit()}, {machine()}"


def write(name: str, title: str, body: str, folder: Path = RESULTS) -> Path:
    """Write ``docs/results/<name>.md``: the title, the stamp, then ``body``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.md"
    path.write_text(f"# {title}\n\nMeasured {stamp()}.\n\n{body.rstrip()}\n")
    return path
