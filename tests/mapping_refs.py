"""Independent references for the mapping block's tests: a Python dict hash map for
kernel maps (torchsparse's method), scipy's cKDTree for kNN and ball query (its arbitrary
tie order and <= r resolved exactly here), plain loops for FPS and voxelization; and the
clouds a reviewer tries first. Nothing here imports golden/ or hdl/."""
import itertools
import math

import numpy as np
from scipy.spatial import cKDTree

MAX = 2**16 - 1


# ------------------------------------------------------------------ references
def offsets(kernel_size):
    """papers.md §3: per dimension arange((-k)//2+1, k//2+1); odd volume x fastest,
    k = 2 z fastest (so the order is the sort by (z, y, x) resp. (x, y, z))."""
    r = range((-kernel_size) // 2 + 1, kernel_size // 2 + 1)
    deltas = list(itertools.product(r, repeat=3))
    if kernel_size % 2:
        return sorted(deltas, key=lambda d: (d[2], d[1], d[0]))
    return sorted(deltas)


def kernel_map_ref(coords, kernel_size, stride):
    """torchsparse's hash-map kernel map: for each offset, each output, a dict lookup."""
    pts = [tuple(int(v) for v in c) for c in coords]
    table = {p: i for i, p in enumerate(pts)}
    out = pts if stride == 1 else sorted({(x // 2, y // 2, z // 2) for x, y, z in pts})
    maps = []
    for o, d in enumerate(offsets(kernel_size)):
        for j, c in enumerate(out):
            i = table.get(tuple(c[a] * stride + d[a] for a in range(3)))
            if i is not None:
                maps.append((o, i, j))
    return maps, out


def d2(p, q):
    return sum((int(a) - int(b)) ** 2 for a, b in zip(p, q))


def knn_ref(coords, queries, k):
    """cKDTree's k nearest fix the k-th distance; every point within it, exactly ranked
    by (d2, index), gives the tie rule."""
    tree = cKDTree(coords.astype(np.float64))
    _, cand = tree.query(queries.astype(np.float64), k=k)
    cand = np.asarray(cand).reshape(len(queries), k)
    idx, dist = [], []
    for q, row in zip(queries, cand):
        kth = max(d2(q, coords[i]) for i in row)
        near = tree.query_ball_point(q.astype(np.float64), math.sqrt(kth) * (1 + 1e-9) + 1e-9)
        ranked = sorted((d2(q, coords[i]), i) for i in near if d2(q, coords[i]) <= kth)[:k]
        idx.append([i for _, i in ranked])
        dist.append([d for d, _ in ranked])
    return idx, dist


def ball_ref(coords, queries, radius2, k):
    """pvcnn's strict ball from cKDTree's closed one: d2 < r2 <=> d <= sqrt(r2 - 1) for
    integer d2 (the epsilon is far below sqrt(r2) - sqrt(r2 - 1))."""
    tree = cKDTree(coords.astype(np.float64))
    rows = []
    for q in queries:
        hits = [] if radius2 < 1 else sorted(
            tree.query_ball_point(q.astype(np.float64), math.sqrt(radius2 - 1) + 1e-7))
        assert all(d2(q, coords[i]) < radius2 for i in hits)
        hits = hits[:k]
        rows.append(hits + [hits[0] if hits else 0] * (k - len(hits)))
    return rows


def fps_ref(coords, m):
    pts = [tuple(int(v) for v in c) for c in coords]
    dist = [math.inf] * len(pts)
    picks = [0][:m]
    while len(picks) < m:
        last = pts[picks[-1]]
        best, besti = -1, 0
        for i, p in enumerate(pts):
            dist[i] = min(dist[i], d2(p, last))
            if dist[i] > best:
                best, besti = dist[i], i
        picks.append(besti)
    return picks


def voxelize_ref(points, voxel):
    first = {}
    for i, p in enumerate(points.tolist()):
        first.setdefault(tuple(math.floor(v / voxel) for v in p), i)
    keys = sorted(first)
    low = [min(key[a] for key in keys) for a in range(3)]
    return [[key[a] - low[a] for a in range(3)] for key in keys], [first[key] for key in keys]


# ------------------------------------------------------------------ clouds
def random_cloud(rng, n, extent):
    """n unique points in [0, extent)^3, in random order."""
    flat = rng.choice(extent**3, size=n, replace=False)
    return np.stack(np.unravel_index(flat, (extent,) * 3), axis=1).astype(np.int64)


def wide_cloud(rng, n):
    """n unique points over the whole 16-bit range, including the extremes."""
    pts = np.unique(rng.integers(0, MAX + 1, (n, 3)), axis=0)
    pts = np.concatenate([pts, [[0, 0, 0], [MAX, MAX, MAX], [MAX, 0, 0], [0, MAX, 0]]])
    return rng.permutation(np.unique(pts, axis=0))


CUBE = np.array(list(itertools.product(range(5), repeat=3)))  # {0..4}^3, x-major order
LINE = np.array([[x, 3, 7] for x in range(0, 40, 2)])
WRAP = np.array([[MAX, 0, 0], [0, 0, 0], [1, 0, 0], [0, MAX, 0], [0, 1, 0], [0, 0, MAX],
                 [MAX, MAX, MAX], [2, 2, 2]])
CORNERS = {"one": np.array([[5, 6, 7]]), "line": LINE, "cube": CUBE, "wrap": WRAP,
           "max": np.array([[MAX, MAX, MAX], [MAX - 1, MAX, MAX], [MAX, MAX - 1, MAX - 1]])}
