"""The mapping golden models (papers.md §3) against independent references: a Python dict
hash map for kernel maps (torchsparse's method), scipy's cKDTree for kNN and ball query
(its arbitrary tie order and <= r resolved exactly here), plain loops for FPS and
voxelization; on random clouds, corner cases and the voxelized pygsp bunny."""
import itertools
import math

import numpy as np
import pytest
from scipy.spatial import cKDTree

from golden import mapping, pointclouds

MAX = 2**16 - 1


# ------------------------------------------------------------------ references
def _offsets(kernel_size):
    """papers.md §3: per dimension arange((-k)//2+1, k//2+1); odd volume x fastest,
    k = 2 z fastest (so the order is the sort by (z, y, x) resp. (x, y, z))."""
    r = range((-kernel_size) // 2 + 1, kernel_size // 2 + 1)
    deltas = list(itertools.product(r, repeat=3))
    if kernel_size % 2:
        return sorted(deltas, key=lambda d: (d[2], d[1], d[0]))
    return sorted(deltas)


def _kernel_map_ref(coords, kernel_size, stride):
    """torchsparse's hash-map kernel map: for each offset, each output, a dict lookup."""
    pts = [tuple(int(v) for v in c) for c in coords]
    table = {p: i for i, p in enumerate(pts)}
    out = pts if stride == 1 else sorted({(x // 2, y // 2, z // 2) for x, y, z in pts})
    maps = []
    for o, d in enumerate(_offsets(kernel_size)):
        for j, c in enumerate(out):
            i = table.get(tuple(c[a] * stride + d[a] for a in range(3)))
            if i is not None:
                maps.append((o, i, j))
    return maps, out


def _d2(p, q):
    return sum((int(a) - int(b)) ** 2 for a, b in zip(p, q))


def _knn_ref(coords, queries, k):
    """cKDTree's k nearest fix the k-th distance; every point within it, exactly ranked
    by (d2, index), gives the tie rule."""
    tree = cKDTree(coords.astype(np.float64))
    _, cand = tree.query(queries.astype(np.float64), k=k)
    cand = np.asarray(cand).reshape(len(queries), k)
    idx, dist = [], []
    for q, row in zip(queries, cand):
        kth = max(_d2(q, coords[i]) for i in row)
        near = tree.query_ball_point(q.astype(np.float64), math.sqrt(kth) * (1 + 1e-9) + 1e-9)
        ranked = sorted((_d2(q, coords[i]), i) for i in near if _d2(q, coords[i]) <= kth)[:k]
        idx.append([i for _, i in ranked])
        dist.append([d for d, _ in ranked])
    return idx, dist


def _ball_ref(coords, queries, radius2, k):
    """pvcnn's strict ball from cKDTree's closed one: d2 < r2 <=> d <= sqrt(r2 - 1) for
    integer d2 (the epsilon is far below sqrt(r2) - sqrt(r2 - 1))."""
    tree = cKDTree(coords.astype(np.float64))
    rows = []
    for q in queries:
        hits = [] if radius2 < 1 else sorted(
            tree.query_ball_point(q.astype(np.float64), math.sqrt(radius2 - 1) + 1e-7))
        assert all(_d2(q, coords[i]) < radius2 for i in hits)
        hits = hits[:k]
        rows.append(hits + [hits[0] if hits else 0] * (k - len(hits)))
    return rows


def _fps_ref(coords, m):
    pts = [tuple(int(v) for v in c) for c in coords]
    dist = [math.inf] * len(pts)
    picks = [0]
    while len(picks) < m:
        last = pts[picks[-1]]
        best, besti = -1, 0
        for i, p in enumerate(pts):
            dist[i] = min(dist[i], _d2(p, last))
            if dist[i] > best:
                best, besti = dist[i], i
        picks.append(besti)
    return picks


def _voxelize_ref(points, voxel):
    first = {}
    for i, p in enumerate(points.tolist()):
        first.setdefault(tuple(math.floor(v / voxel) for v in p), i)
    keys = sorted(first)
    low = [min(key[a] for key in keys) for a in range(3)]
    return [[key[a] - low[a] for a in range(3)] for key in keys], [first[key] for key in keys]


# ------------------------------------------------------------------ clouds
def _random_cloud(rng, n, extent):
    """n unique points in [0, extent)^3, in random order."""
    flat = rng.choice(extent**3, size=n, replace=False)
    return np.stack(np.unravel_index(flat, (extent,) * 3), axis=1).astype(np.int64)


def _wide_cloud(rng, n):
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


@pytest.fixture(scope="module")
def bunny_small():
    return pointclouds.voxel_cloud("bunny", 0.015)


@pytest.fixture(scope="module")
def bunny_mid():
    return pointclouds.voxel_cloud("bunny", 0.01)


# ------------------------------------------------------------------ keys and offsets
def test_kernel_offsets_follow_torchsparse_order():
    k3, k2 = mapping.kernel_offsets(3).tolist(), mapping.kernel_offsets(2).tolist()
    assert k3[:3] == [[-1, -1, -1], [0, -1, -1], [1, -1, -1]]  # x fastest
    assert k2[:2] == [[0, 0, 0], [0, 0, 1]]  # z fastest
    assert k3 == [list(d) for d in _offsets(3)] and k2 == [list(d) for d in _offsets(2)]
    assert k3[13] == [0, 0, 0]


def test_coord_keys_order_rows_x_major():
    rng = np.random.default_rng(1)
    pts = _wide_cloud(rng, 300)
    order = mapping.sort_coords(pts)
    assert [tuple(p) for p in pts[order].tolist()] == sorted(tuple(p) for p in pts.tolist())
    assert int(mapping.coord_keys(np.array([[MAX, MAX, MAX]]))[0]) == 2**48 - 1
    assert int(mapping.coord_keys(np.array([[1, 0, 0]]))[0]) == 2**32


# ------------------------------------------------------------------ kernel map
def _check_kernel_map(coords, kernel_size, stride):
    got = mapping.kernel_map(coords, kernel_size, stride)
    maps, out = _kernel_map_ref(coords, kernel_size, stride)
    triples = list(zip(got["offset"].tolist(), got["in_idx"].tolist(), got["out_idx"].tolist()))
    assert triples == maps
    assert [tuple(c) for c in got["out_coords"].tolist()] == out
    assert all(got[key].dtype == np.int64 for key in got)
    return got


@pytest.mark.parametrize("kernel_size, stride", [(3, 1), (2, 1), (3, 2), (2, 2)])
@pytest.mark.parametrize("n, extent", [(50, 8), (400, 10), (300, 40)])
def test_kernel_map_matches_hash_map(kernel_size, stride, n, extent):
    rng = np.random.default_rng(n + extent)
    _check_kernel_map(_random_cloud(rng, n, extent), kernel_size, stride)


@pytest.mark.parametrize("kernel_size, stride", [(3, 1), (2, 1), (3, 2), (2, 2)])
@pytest.mark.parametrize("name", list(CORNERS) + ["wide"])
def test_kernel_map_corner_cases(name, kernel_size, stride):
    coords = _wide_cloud(np.random.default_rng(2), 200) if name == "wide" else CORNERS[name]
    _check_kernel_map(coords, kernel_size, stride)


def test_kernel_map_does_not_wrap_at_the_coordinate_limits():
    """(1,0,0) shifted by y-1 has the key of (0,65535,0) if the fields wrap, (0,1,0) by
    z-1 that of (0,0,65535); x=0 by -1 must not reach x=65535. Only real neighbours map."""
    got = mapping.kernel_map(WRAP, 3, 1)
    true_pairs = {(i, j) for _, i, j in _kernel_map_ref(WRAP, 3, 1)[0]}
    assert {(1, 2), (2, 1), (1, 4), (4, 1)} <= true_pairs  # real neighbours of (0,0,0)
    assert set(zip(got["in_idx"].tolist(), got["out_idx"].tolist())) == true_pairs
    assert (3, 2) not in true_pairs and (5, 4) not in true_pairs and (0, 1) not in true_pairs


def test_kernel_map_dense_cube_counts():
    sub = mapping.kernel_map(CUBE, 3, 1)
    assert sub["offset"].size == 13**3  # per axis 4 + 5 + 4 pairs
    down = mapping.kernel_map(CUBE, 2, 2)
    assert down["out_coords"].tolist() == [list(c) for c in itertools.product(range(3), repeat=3)]
    assert sorted(down["in_idx"].tolist()) == list(range(125))  # every input exactly once


def test_kernel_map_on_bunny(bunny_mid):
    for kernel_size, stride in [(3, 1), (2, 1), (3, 2), (2, 2)]:
        got = _check_kernel_map(bunny_mid, kernel_size, stride)
        assert set(got["in_idx"].tolist()) == set(range(len(bunny_mid)))  # all inputs used


# ------------------------------------------------------------------ kNN
def _check_knn(coords, queries, k):
    idx, dist = mapping.knn(coords, queries, k)
    ref_idx, ref_dist = _knn_ref(coords, queries, k)
    assert idx.dtype == dist.dtype == np.int64 and idx.shape == dist.shape == (len(queries), k)
    assert idx.tolist() == ref_idx and dist.tolist() == ref_dist


@pytest.mark.parametrize("n, extent, k", [(60, 5, 1), (300, 8, 8), (500, 12, 32), (200, 30, 200)])
def test_knn_matches_ckdtree(n, extent, k):
    rng = np.random.default_rng(n * k)
    coords = _random_cloud(rng, n, extent)
    queries = np.concatenate([rng.integers(0, extent, (20, 3)), coords[:5]])
    _check_knn(coords, queries, k)


@pytest.mark.parametrize("name", list(CORNERS) + ["wide"])
def test_knn_corner_cases(name):
    coords = _wide_cloud(np.random.default_rng(3), 200) if name == "wide" else CORNERS[name]
    queries = np.concatenate([coords, [[0, 0, 0], [MAX, MAX, MAX], [2, 3, 4]]])
    for k in sorted({1, min(3, len(coords)), len(coords)}):
        _check_knn(coords, queries, k)


def test_knn_query_on_a_point_is_its_own_nearest():
    idx, dist = mapping.knn(CUBE, CUBE, 7)
    assert idx[:, 0].tolist() == list(range(125)) and not dist[:, 0].any()
    assert dist[0].tolist() == [0, 1, 1, 1, 2, 2, 2]
    assert idx[0].tolist() == [0, 1, 5, 25, 6, 26, 30]  # ties by index


def test_knn_far_corner_distance_is_exact():
    _, dist = mapping.knn(np.array([[MAX, MAX, MAX]]), np.array([[0, 0, 0]]), 1)
    assert int(dist[0, 0]) == 3 * MAX**2


def test_knn_on_bunny(bunny_mid):
    _check_knn(bunny_mid, bunny_mid[::15], 16)


# ------------------------------------------------------------------ ball query
def _check_ball(coords, queries, radius2, k):
    got = mapping.ball_query(coords, queries, radius2, k)
    assert got.dtype == np.int64 and got.tolist() == _ball_ref(coords, queries, radius2, k)
    return got


@pytest.mark.parametrize("n, extent, radius2, k", [
    (100, 6, 2, 4), (300, 8, 5, 16), (500, 12, 10, 32), (200, 30, 50, 8), (50, 10, 1, 3)])
def test_ball_query_matches_ckdtree(n, extent, radius2, k):
    rng = np.random.default_rng(n + radius2)
    coords = _random_cloud(rng, n, extent)
    queries = np.concatenate([rng.integers(0, extent, (25, 3)), coords[:5]])
    _check_ball(coords, queries, radius2, k)


@pytest.mark.parametrize("name", list(CORNERS) + ["wide"])
def test_ball_query_corner_cases(name):
    coords = _wide_cloud(np.random.default_rng(4), 200) if name == "wide" else CORNERS[name]
    queries = np.concatenate([coords, [[0, 0, 0], [MAX, MAX, MAX], [2, 3, 4]]])
    for radius2 in (0, 1, 2, 4, 5, 9, 3 * MAX**2, 3 * MAX**2 + 1):
        _check_ball(coords, queries, radius2, len(coords))
        _check_ball(coords, queries, radius2, 1)


def test_ball_query_strict_radius_and_padding():
    # LINE points are 2 apart on x: radius2 4 excludes the neighbours, 5 includes them
    q = LINE[3:4]
    assert mapping.ball_query(LINE, q, 4, 3).tolist() == [[3, 3, 3]]  # only itself, repeated
    assert mapping.ball_query(LINE, q, 5, 4).tolist() == [[2, 3, 4, 2]]
    assert mapping.ball_query(LINE, np.array([[100, 100, 100]]), 9, 3).tolist() == [[0, 0, 0]]


def test_ball_query_on_bunny(bunny_mid):
    for radius2, k in [(3, 8), (10, 32)]:
        got = _check_ball(bunny_mid, bunny_mid[::15], radius2, k)
        assert (got != got[:, :1]).any()  # more than one hit somewhere


# ------------------------------------------------------------------ FPS
@pytest.mark.parametrize("n, extent, m", [(1, 3, 1), (50, 5, 50), (300, 10, 40), (200, 40, 60)])
def test_fps_matches_loop(n, extent, m):
    coords = _random_cloud(np.random.default_rng(n + m), n, extent)
    got = mapping.fps(coords, m)
    assert got.dtype == np.int64 and got.tolist() == _fps_ref(coords, m)


@pytest.mark.parametrize("name", list(CORNERS) + ["wide"])
def test_fps_corner_cases(name):
    coords = _wide_cloud(np.random.default_rng(5), 200) if name == "wide" else CORNERS[name]
    got = mapping.fps(coords, len(coords))
    assert got.tolist() == _fps_ref(coords, len(coords))
    assert sorted(got.tolist()) == list(range(len(coords)))  # unique points: all picked once


def test_fps_on_a_line_takes_the_far_end_then_the_middle():
    assert mapping.fps(LINE, 3).tolist() == [0, 19, 9]  # 9 and 10 tie: lowest index


def test_fps_on_bunny(bunny_small):
    assert mapping.fps(bunny_small, 48).tolist() == _fps_ref(bunny_small, 48)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("call, message", [
    (lambda: mapping.knn(LINE, LINE, 21), r"k = 21 is outside 1\.\.20"),
    (lambda: mapping.knn(LINE, LINE, 0), r"k = 0 is outside 1\.\.20"),
    (lambda: mapping.ball_query(LINE, LINE, 4, 21), r"k = 21 is outside 1\.\.20"),
    (lambda: mapping.ball_query(LINE, LINE, -1, 2), r"radius2 = -1"),
    (lambda: mapping.fps(LINE, 21), r"m = 21 is outside 1\.\.20"),
    (lambda: mapping.fps(LINE, 0), r"m = 0 is outside 1\.\.20"),
    (lambda: mapping.kernel_map(LINE, 4, 1), r"kernel_size = 4"),
    (lambda: mapping.kernel_offsets(1), r"kernel_size = 1"),
    (lambda: mapping.kernel_map(LINE, 3, 3), r"stride = 3"),
    (lambda: mapping.kernel_map(np.array([[1, 2, 3], [1, 2, 3]]), 3, 1), r"unique"),
    (lambda: mapping.knn(np.array([[MAX + 1, 0, 0]]), LINE, 1), r"0\.\.65535"),
    (lambda: mapping.knn(np.array([[-1, 0, 0]]), LINE, 1), r"0\.\.65535"),
    (lambda: mapping.knn(LINE.astype(float), LINE, 1), r"integer array"),
])
def test_bad_parameters_raise_one_line_value_errors(call, message):
    with pytest.raises(ValueError, match=message) as err:
        call()
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------ point clouds
def test_bunny_loads_as_3d_float64():
    assert pointclouds.NAMES == ("bunny",)
    pts = pointclouds.load("bunny")
    assert pts.shape == (2503, 3) and pts.dtype == np.float64


@pytest.mark.parametrize("name, voxel", list(pointclouds.VOXEL_COUNTS))
def test_voxelize_bunny_matches_loop(name, voxel):
    pts = pointclouds.load(name)
    coords, first = pointclouds.voxelize(pts, voxel)
    ref_coords, ref_first = _voxelize_ref(pts, voxel)
    assert coords.dtype == first.dtype == np.int64
    assert coords.tolist() == ref_coords and first.tolist() == ref_first
    assert len(coords) == pointclouds.VOXEL_COUNTS[name, voxel]
    assert coords.min(axis=0).tolist() == [0, 0, 0]


def test_voxelize_keeps_first_occurrence_with_negative_points():
    rng = np.random.default_rng(6)
    pts = rng.uniform(-3.0, 2.0, (800, 3))
    for voxel in (0.5, 1.0, 0.37):
        coords, first = pointclouds.voxelize(pts, voxel)
        ref_coords, ref_first = _voxelize_ref(pts, voxel)
        assert coords.tolist() == ref_coords and first.tolist() == ref_first
        assert len(coords) < len(pts)  # duplicates were merged
