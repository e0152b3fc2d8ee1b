"""Real point clouds for the mapping workloads, read from a data file an installed package
ships (nothing is downloaded): the Stanford bunny (2503 points) in PyPI ``pygsp``
(``pygsp/data/pointclouds/bunny.mat``). Only the file is read; pygsp is not imported. The
package's other clouds (david64, david500, airfoil, two_moons) are 2-D, so they are left
out; pymeshlab (meshes) is not installed here.

Voxelization follows torchsparse's ``sparse_quantize`` (papers.md §3): c = floor(p / voxel)
as int32; unique by the row-major key, the FIRST occurrence kept; output sorted by key. The
coordinates are then shifted so each axis starts at 0 (torchsparse's key does the same
shift), which makes them the non-negative grid the hardware takes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from .packaged import package_file

# name -> (package, path inside the package, variable holding the [N, 3] points)
SOURCES: dict[str, tuple[str, str, str]] = {
    "bunny": ("pygsp", "data/pointclouds/bunny.mat", "bunny"),
}
NAMES = tuple(SOURCES)

# voxels of each cloud at the voxel sizes the workloads use: (name, voxel size) -> count
VOXEL_COUNTS: dict[tuple[str, float], int] = {
    ("bunny", 0.005): 1873, ("bunny", 0.01): 658, ("bunny", 0.015): 313,
}


def path(name: str) -> Path:
    """Location of the data file of cloud ``name`` inside its installed package."""
    package, rel, _ = SOURCES[name]
    return package_file(package, rel, name)


def load(name: str) -> np.ndarray:
    """Points of cloud ``name`` (one of NAMES) as float64 [N, 3], in file order."""
    return scipy.io.loadmat(path(name))[SOURCES[name][2]].astype(np.float64)


def voxelize(points: np.ndarray, voxel_size: float) -> tuple[np.ndarray, np.ndarray]:
    """torchsparse's sparse_quantize: (voxel coordinates int64 [M, 3] sorted by key and
    shifted to start at 0, index of the first point of each voxel)."""
    c = np.floor(np.asarray(points, dtype=np.float64) / voxel_size).astype(np.int32).astype(np.int64)
    c -= c.min(axis=0)
    extent = c.max(axis=0) + 1
    keys = (c[:, 0] * extent[1] + c[:, 1]) * extent[2] + c[:, 2]  # x most significant
    _, first = np.unique(keys, return_index=True)  # sorted keys, first occurrences
    return c[first], first


def voxel_cloud(name: str, voxel_size: float) -> np.ndarray:
    """Integer voxel coordinates (int64 [M, 3]) of cloud ``name`` at ``voxel_size``."""
    return voxelize(load(name), voxel_size)[0]
