"""The mapping golden models (papers.md §3) against independent references: a Python dict
hash map for kernel maps (torchsparse's method), scipy's cKDTree for kNN and ball query
(its arbitrary tie order and <= r resolved exactly here), plain loops for FPS and
voxelization; on random clouds, corner cases and the voxelized pygsp bunny."""
import itertools

import numpy as np
import pytest
from accelgen.golden import mapping
from accelgen.workloads import pointclouds

from mapping_refs import (CORNERS, CUBE, LINE, MAX, WRAP, ball_ref, fps_ref,
                          kernel_map_ref, knn_ref, offsets, random_cloud, voxelize_ref,
                          wide_cloud)

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
    assert k3 == [list(d) for d in offsets(3)] and k2 == [list(d) for d in offsets(2)]
    assert k3[13] == [0, 0, 0]


def test_coord_keys_order_rows_x_major():
    rng = np.random.default_rng(1)
    pts = wide_cloud(rng, 300)
    order = mapping.sort_coords(pts)
    assert [tuple(p) for p in pts[order].tolist()] == sorted(tuple(p) for p in pts.tolist())
    assert int(mapping.coord_keys(np.array([[MAX, MAX, MAX]]))[0]) == 2**48 - 1
    assert int(mapping.coord_keys(np.array([[1, 0, 0]]))[0]) == 2**32


# ------------------------------------------------------------------ kernel map
def _check_kernel_map(coords, kernel_size, stride):
    got = mapping.kernel_map(coords, kernel_size, stride)
    maps, out = kernel_map_ref(coords, kernel_size, stride)
    triples = list(zip(got["offset"].tolist(), got["in_idx"].tolist(), got["out_idx"].tolist()))
    assert triples == maps
    assert [tuple(c) for c in got["out_coords"].tolist()] == out
    assert all(got[key].dtype == np.int64 for key in got)
    return got


@pytest.mark.parametrize("kernel_size, stride", [(3, 1), (2, 1), (3, 2), (2, 2)])
@pytest.mark.parametrize("n, extent", [(50, 8), (400, 10), (300, 40)])
def test_kernel_map_matches_hash_map(kernel_size, stride, n, extent):
    rng = np.random.default_rng(n + extent)
    _check_kernel_map(random_cloud(rng, n, extent), kernel_size, stride)


@pytest.mark.parametrize("kernel_size, stride", [(3, 1), (2, 1), (3, 2), (2, 2)])
@pytest.mark.parametrize("name", list(CORNERS) + ["wide"])
def test_kernel_map_corner_cases(name, kernel_size, stride):
    coords = wide_cloud(np.random.default_rng(2), 200) if name == "wide" else CORNERS[name]
    _check_kernel_map(coords, kernel_size, stride)


def test_kernel_map_does_not_wrap_at_the_coordinate_limits():
    """(1,0,0) shifted by y-1 has the key of (0,65535,0) if the fields wrap, (0,1,0) by
    z-1 that of (0,0,65535); x=0 by -1 must not reach x=65535. Only real neighbours map."""
    got = mapping.kernel_map(WRAP, 3, 1)
    true_pairs = {(i, j) for _, i, j in kernel_map_ref(WRAP, 3, 1)[0]}
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
    ref_idx, ref_dist = knn_ref(coords, queries, k)
    assert idx.dtype == dist.dtype == np.int64 and idx.shape == dist.shape == (len(queries), k)
    assert idx.tolist() == ref_idx and dist.tolist() == ref_dist


@pytest.mark.parametrize("n, extent, k", [(60, 5, 1), (300, 8, 8), (500, 12, 32), (200, 30, 200)])
def test_knn_matches_ckdtree(n, extent, k):
    rng = np.random.default_rng(n * k)
    coords = random_cloud(rng, n, extent)
    queries = np.concatenate([rng.integers(0, extent, (20, 3)), coords[:5]])
    _check_knn(coords, queries, k)


@pytest.mark.parametrize("name", list(CORNERS) + ["wide"])
def test_knn_corner_cases(name):
    coords = wide_cloud(np.random.default_rng(3), 200) if name == "wide" else CORNERS[name]
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
    assert got.dtype == np.int64 and got.tolist() == ball_ref(coords, queries, radius2, k)
    return got


@pytest.mark.parametrize("n, extent, radius2, k", [
    (100, 6, 2, 4), (300, 8, 5, 16), (500, 12, 10, 32), (200, 30, 50, 8), (50, 10, 1, 3)])
def test_ball_query_matches_ckdtree(n, extent, radius2, k):
    rng = np.random.default_rng(n + radius2)
    coords = random_cloud(rng, n, extent)
    queries = np.concatenate([rng.integers(0, extent, (25, 3)), coords[:5]])
    _check_ball(coords, queries, radius2, k)


@pytest.mark.parametrize("name", list(CORNERS) + ["wide"])
def test_ball_query_corner_cases(name):
    coords = wide_cloud(np.random.default_rng(4), 200) if name == "wide" else CORNERS[name]
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
    coords = random_cloud(np.random.default_rng(n + m), n, extent)
    got = mapping.fps(coords, m)
    assert got.dtype == np.int64 and got.tolist() == fps_ref(coords, m)


@pytest.mark.parametrize("name", list(CORNERS) + ["wide"])
def test_fps_corner_cases(name):
    coords = wide_cloud(np.random.default_rng(5), 200) if name == "wide" else CORNERS[name]
    got = mapping.fps(coords, len(coords))
    assert got.tolist() == fps_ref(coords, len(coords))
    assert sorted(got.tolist()) == list(range(len(coords)))  # unique points: all picked once


def test_fps_on_a_line_takes_the_far_end_then_the_middle():
    assert mapping.fps(LINE, 3).tolist() == [0, 19, 9]  # 9 and 10 tie: lowest index


def test_fps_on_bunny(bunny_small):
    assert mapping.fps(bunny_small, 48).tolist() == fps_ref(bunny_small, 48)


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
    ref_coords, ref_first = voxelize_ref(pts, voxel)
    assert coords.dtype == first.dtype == np.int64
    assert coords.tolist() == ref_coords and first.tolist() == ref_first
    assert len(coords) == pointclouds.VOXEL_COUNTS[name, voxel]
    assert coords.min(axis=0).tolist() == [0, 0, 0]


def test_voxelize_keeps_first_occurrence_with_negative_points():
    rng = np.random.default_rng(6)
    pts = rng.uniform(-3.0, 2.0, (800, 3))
    for voxel in (0.5, 1.0, 0.37):
        coords, first = pointclouds.voxelize(pts, voxel)
        ref_coords, ref_first = voxelize_ref(pts, voxel)
        assert coords.tolist() == ref_coords and first.tolist() == ref_first
        assert len(coords) < len(pts)  # duplicates were merged
