"""Real sparse matrices for the SpGEMM workloads, read from data files that installed
packages ship (nothing is downloaded): SuiteSparse Gleich/minnesota from PyPI ``pygsp``
(``pygsp/data/pointclouds/minnesota.mat``) and PyAMG's finite-element example matrices
(``pyamg/gallery/example_data/*.mat``). Only the files are read; neither package is imported.

Values rule: the structure (every stored entry, explicit zeros included) is kept and the
values are replaced by integers: the i-th stored entry in canonical CSR order (rows, then
sorted columns) gets the i-th draw of ``numpy.random.default_rng(VALUE_SEED)``, uniform over
{-8..-1, 1..8} (magnitude ``integers(1, 9)`` times sign ``choice([-1, 1])``, drawn as two
arrays). ``helmholtz_2D`` is complex in the file: only its structure is used.
"""
from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp

from .packaged import package_file

VALUE_SEED = 2002

# name -> (package, path inside the package); every file holds a square sparse "A"
SOURCES: dict[str, tuple[str, str]] = {
    "minnesota": ("pygsp", "data/pointclouds/minnesota.mat"),
    **{name: ("pyamg", f"gallery/example_data/{name}.mat") for name in (
        "airfoil", "bar", "helmholtz_2D", "knot", "local_disc_galerkin_diffusion",
        "recirc_flow", "unit_cube", "unit_square")},
}
NAMES = tuple(SOURCES)

# (rows = cols, stored nonzeros) of every matrix as loaded
SHAPES: dict[str, tuple[int, int]] = {
    "minnesota": (2642, 6606), "airfoil": (260, 1682), "bar": (600, 23402),
    "helmholtz_2D": (2880, 52016), "knot": (239, 1667),
    "local_disc_galerkin_diffusion": (966, 35338), "recirc_flow": (225, 1849),
    "unit_cube": (125, 1473), "unit_square": (191, 1243),
}

# The scale case: A @ A for A = the 1024-node BFS-induced subgraph of the structure of
# helmholtz_2D cubed (distance-3 neighbourhoods of a real FEM mesh).
SCALE_CASE = {"name": "helmholtz_2D", "power": 3, "nodes": 1024, "seed": 0}


def path(name: str) -> Path:
    """Location of the data file of matrix ``name`` inside its installed package."""
    package, rel = SOURCES[name]
    return package_file(package, rel, name)


def with_values(pattern: sp.spmatrix, seed: int = VALUE_SEED) -> sp.csr_matrix:
    """Same structure (explicit zeros kept as entries), int64 values by the module's rule."""
    a = sp.csr_matrix(pattern, copy=True)
    a.sum_duplicates()
    rng = np.random.default_rng(seed)
    magnitude = rng.integers(1, 9, a.nnz)
    sign = rng.choice(np.array([-1, 1]), a.nnz)
    return sp.csr_matrix((magnitude * sign, a.indices, a.indptr), shape=a.shape, dtype=np.int64)


def load(name: str) -> sp.csr_matrix:
    """Matrix ``name`` (one of NAMES) as int64 CSR with values by the module's rule."""
    return with_values(scipy.io.loadmat(path(name))["A"])


def power(a: sp.spmatrix, k: int) -> sp.csr_matrix:
    """Structure of A^k (no cancellation: computed on the 0/1 pattern) with rule values."""
    p = sp.csr_matrix(a, copy=True)
    p.data = np.ones_like(p.data, dtype=np.float64)
    q = p
    for _ in range(k - 1):
        q = q @ p
    return with_values(q)


def bfs_nodes(a: sp.spmatrix, nodes: int, seed: int = 0) -> np.ndarray:
    """``nodes`` node ids in breadth-first order over the symmetrized structure of square
    ``a``, from a start drawn by ``seed``; an exhausted component continues from the
    lowest unvisited node."""
    g = sp.csr_matrix(a, dtype=bool)
    g = (g + g.T).tocsr()
    n = g.shape[0]
    seen = np.zeros(n, dtype=bool)
    order: list[int] = []
    start = int(np.random.default_rng(seed).integers(n))
    while len(order) < min(nodes, n):
        if seen[start]:
            start = int(np.flatnonzero(~seen)[0])
        seen[start] = True
        queue = deque([start])
        while queue and len(order) < nodes:
            v = queue.popleft()
            order.append(v)
            for u in g.indices[g.indptr[v]:g.indptr[v + 1]].tolist():
                if not seen[u]:
                    seen[u] = True
                    queue.append(u)
    return np.array(order, dtype=np.int64)


def induced_subgraph(a: sp.spmatrix, nodes: int, seed: int = 0) -> sp.csr_matrix:
    """Submatrix of square ``a`` on the ``nodes`` nodes reached first by ``bfs_nodes``,
    kept in the original node order."""
    keep = np.sort(bfs_nodes(a, nodes, seed))
    return sp.csr_matrix(a)[keep][:, keep].tocsr()


def slice_rows(a: sp.spmatrix, stop: int, start: int = 0) -> sp.csr_matrix:
    """Rows start..stop-1 of ``a``."""
    return sp.csr_matrix(a)[start:stop].tocsr()


def slice_cols(a: sp.spmatrix, stop: int, start: int = 0) -> sp.csr_matrix:
    """Columns start..stop-1 of ``a``."""
    return sp.csr_matrix(a)[:, start:stop].tocsr()


def scale_case() -> sp.csr_matrix:
    """A of the scale case (SCALE_CASE); the workload is A @ A."""
    c = SCALE_CASE
    return induced_subgraph(power(load(c["name"]), c["power"]), c["nodes"], c["seed"])


def stats(a: sp.spmatrix, b: sp.spmatrix | None = None) -> dict[str, int]:
    """n, nnz, max row nnz of A, partial products and nnz of the structure of A @ B (B = A)."""
    a = sp.csr_matrix(a)
    b = a if b is None else sp.csr_matrix(b)
    pa, pb = (sp.csr_matrix((np.ones(m.nnz), m.indices, m.indptr), shape=m.shape) for m in (a, b))
    products = int(np.diff(pb.indptr)[pa.indices].sum())
    return {"n": a.shape[0], "nnz": a.nnz, "max_row_nnz": int(np.diff(a.indptr).max(initial=0)),
            "partial_products": products, "nnz_c": (pa @ pb).nnz}
