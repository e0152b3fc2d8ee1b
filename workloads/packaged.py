"""Data files that installed packages ship (real matrices, point clouds): found inside
the package's directory without importing it, so nothing is downloaded or run."""
from __future__ import annotations

import importlib.util
from pathlib import Path


def package_file(package: str, rel: str, what: str) -> Path:
    """Path of ``rel`` inside installed ``package``; ``what`` names the data in the error
    raised when the package is missing."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{package} is not installed (it ships {what})")
    return Path(spec.submodule_search_locations[0]) / rel
