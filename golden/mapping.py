"""Golden models of PointAcc's ranking-based mapping unit (papers.md §3): kernel maps for
sparse convolution, kNN, ball query and farthest point sampling on integer voxel coordinates.

Coordinates are [N, 3] non-negative integers of ``coord_width`` bits each (default 16),
unique where a map needs them to be; all arithmetic is exact int64. Golden rules (binding,
papers.md §3 and the block's issue):

- Kernel map (torchsparse): every (offset o, input i, output j) with
  coords_in[i] = coords_out[j] * stride + delta_o, delta_o from ``kernel_offsets`` (not
  scaled by the conv stride: the input's tensor stride is 1); grouped by offset index
  ascending, then output index ascending. Stride 1 is submanifold (outputs = inputs, same
  indices); stride 2 outputs are the unique floor(c / 2), sorted by the row-major key.
  A shifted coordinate outside [0, 2^w) matches nothing (no wrap into another row).
- kNN: squared distances to all points, the k smallest, ascending distance, ties -> lower
  index.
- Ball query (pvcnn): d2 < radius2 (strict), the first k hits in index order; unused slots
  repeat the first hit; no hit -> all 0.
- FPS (pvcnn): first pick index 0; per point the running min squared distance to the picks
  (from +inf); next pick = argmax, ties -> lowest index. No point is skipped (pointnet2's
  ``mag <= 1e-3`` skip of the origin is not part of the rule).

The kernel map is computed as the hardware does, by ranking: the inputs are sorted by key
once and every shifted output is located by binary search (a merge of two sorted streams).
"""
from __future__ import annotations

import numpy as np

MAX_COORD_WIDTH = 21  # three fields in one non-negative int64 key


def _as_coords(coords, coord_width: int, name: str = "coords") -> np.ndarray:
    """``coords`` as int64 [N, 3], checked to lie in [0, 2^coord_width)."""
    if not 1 <= coord_width <= MAX_COORD_WIDTH:
        raise ValueError(f"coord_width = {coord_width} is outside 1..{MAX_COORD_WIDTH}")
    a = np.asarray(coords)
    if a.ndim != 2 or a.shape[1] != 3 or not (a.size == 0 or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{name} must be an integer array of shape [N, 3], got {a.dtype} {a.shape}")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= 1 << coord_width):
        raise ValueError(f"{name} must lie in 0..{(1 << coord_width) - 1} (coord_width = {coord_width})")
    return a


def _check_count(name: str, value: int, n: int) -> None:
    """``value`` (k or m) must pick between 1 and all of the n points."""
    if not 1 <= value <= n:
        raise ValueError(f"{name} = {value} is outside 1..{n} (the number of points)")


def coord_keys(coords, coord_width: int = 16) -> np.ndarray:
    """Row-major key of each coordinate: x << 2w | y << w | z (x most significant)."""
    c = _as_coords(coords, coord_width)
    return (c[:, 0] << 2 * coord_width) | (c[:, 1] << coord_width) | c[:, 2]


def sort_coords(coords, coord_width: int = 16) -> np.ndarray:
    """Order that sorts the coordinates by key (stable argsort)."""
    return np.argsort(coord_keys(coords, coord_width), kind="stable")


def kernel_offsets(kernel_size: int) -> np.ndarray:
    """The K^3 offsets (int64 [K^3, 3]) in torchsparse's order: per dimension
    arange((-k)//2 + 1, k//2 + 1); odd volume (k = 3) x varies fastest:
    (-1,-1,-1), (0,-1,-1), (1,-1,-1), (-1,0,-1), ...; even volume (k = 2) z varies
    fastest: (0,0,0), (0,0,1), (0,1,0), (0,1,1), (1,0,0), ..."""
    if kernel_size not in (2, 3):
        raise ValueError(f"kernel_size = {kernel_size} is not 2 or 3")
    r = np.arange((-kernel_size) // 2 + 1, kernel_size // 2 + 1)
    slow, mid, fast = np.meshgrid(r, r, r, indexing="ij")
    xyz = (fast, mid, slow) if kernel_size % 2 else (slow, mid, fast)
    return np.stack([a.ravel() for a in xyz], axis=1).astype(np.int64)


def _check_stride(stride: int) -> None:
    if stride not in (1, 2):
        raise ValueError(f"stride = {stride} is not 1 or 2")


def output_coords(coords, stride: int, coord_width: int = 16) -> np.ndarray:
    """Output coordinates: stride 1 the inputs unchanged (submanifold, same indices);
    stride 2 the unique floor(c / 2), sorted by key."""
    _check_stride(stride)
    c = _as_coords(coords, coord_width)
    if stride == 1:
        return c
    half = c // 2
    _, first = np.unique(coord_keys(half, coord_width), return_index=True)
    return half[first]


def kernel_map(coords, kernel_size: int, stride: int, coord_width: int = 16) -> dict:
    """All (offset, in_idx, out_idx) with coords[in_idx] = out_coords[out_idx] * stride +
    offsets[offset], ordered by offset then out_idx, plus ``out_coords``. Ranking method:
    the shifted outputs are searched in the key-sorted inputs."""
    offsets = kernel_offsets(kernel_size)
    c = _as_coords(coords, coord_width)
    out = output_coords(c, stride, coord_width)
    order = sort_coords(c, coord_width)
    sorted_keys = coord_keys(c, coord_width)[order]
    if np.any(sorted_keys[1:] == sorted_keys[:-1]):
        raise ValueError("coords must be unique for a kernel map")
    shifted = (out[None, :, :] * stride + offsets[:, None, :]).reshape(-1, 3)  # offset-major
    inside = np.flatnonzero(np.all((shifted >= 0) & (shifted < 1 << coord_width), axis=1))
    keys = coord_keys(shifted[inside], coord_width)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    hit = sorted_keys[pos] == keys
    flat = inside[hit]
    return {"offset": flat // len(out), "in_idx": order[pos[hit]], "out_idx": flat % len(out),
            "out_coords": out}


def dist2(coords: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Exact squared distances, int64 [Q, N]."""
    return sum((queries[:, None, d] - coords[None, :, d]) ** 2 for d in range(3))


def knn(coords, queries, k: int, coord_width: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Per query the k nearest points (int64 [Q, k]) and their squared distances
    (int64 [Q, k]): ascending distance, ties to the lower index."""
    c = _as_coords(coords, coord_width)
    q = _as_coords(queries, coord_width, "queries")
    _check_count("k", k, len(c))
    d2 = dist2(c, q)
    idx = np.argsort(d2, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d2, idx, axis=1)


def ball_query(coords, queries, radius2: int, k: int, coord_width: int = 16) -> np.ndarray:
    """Per query the first k points in index order with d2 < radius2 (int64 [Q, k]);
    unused slots repeat the first hit; a query without hits gets all 0."""
    c = _as_coords(coords, coord_width)
    q = _as_coords(queries, coord_width, "queries")
    _check_count("k", k, len(c))
    if radius2 < 0:
        raise ValueError(f"radius2 = {radius2} is negative")
    inside = dist2(c, q) < radius2
    first_hits = np.argsort(~inside, axis=1, kind="stable")[:, :k]  # hits first, index order
    hits = inside.sum(axis=1, keepdims=True)
    fill = np.where(hits > 0, first_hits[:, :1], 0)
    return np.where(np.arange(k) < hits, first_hits, fill)


def fps(coords, m: int, coord_width: int = 16) -> np.ndarray:
    """Indices (int64 [m]) of m farthest-point picks, starting at index 0."""
    c = _as_coords(coords, coord_width)
    _check_count("m", m, len(c))
    picks = np.zeros(m, dtype=np.int64)
    dist = np.full(len(c), np.iinfo(np.int64).max)  # +inf: above any exact distance
    for t in range(1, m):
        dist = np.minimum(dist, dist2(c, c[picks[t - 1]][None])[0])
        picks[t] = np.argmax(dist)  # first maximum: lowest index
    return picks

