"""The mapping unit's RTL against independent references (tests/mapping_refs.py: a dict
hash map, cKDTree, plain loops), on Icarus and Verilator under random valid/ready
stalls: the four operations on corner clouds, shuffled and sorted inputs, a real
voxelized point cloud, one and sixteen lanes, and the cycle model."""
import json
import subprocess
import sys

import numpy as np
import pytest

from accelgen.params.mapping import MappingConfig
from accelgen.registry import get
from accelgen.run import run_block
from accelgen.workloads import pointclouds
from mapping_refs import (CORNERS, ball_ref, fps_ref, kernel_map_ref, knn_ref, random_cloud)
from accelgen.sim import runner
from accelgen.sim.job import Job, chain, split
from accelgen.sim.streams import always, random_pattern

BLOCK = get("mapping")
CFG = MappingConfig(lanes=4, coord_width=16, capacity=128)
SMALL = MappingConfig(lanes=2, coord_width=4, capacity=16)  # for the Amaranth simulator


def check(cfg, job, sim, seed=0):
    """Run ``job`` with random stalls; compare every output with the reference; return
    the report."""
    out, report = run_block(BLOCK, cfg, job, sim, random_pattern(0.7, seed),
                            random_pattern(0.6, seed + 1))
    compare(job, out)
    assert report["match"] and report["error_flags"] == 0, report
    assert report["stream_violations"] == 0 and not report["timed_out"]
    return report


def check_back_to_back(cfg, jobs, sim, workdir, seed=0, sent=None):
    """Run ``jobs`` as one simulation, each command right behind the previous one, with
    random stalls on every port; split the results by job and compare each with the
    reference (so no state leaks from one job into the next). ``sent``: the commands and
    points actually sent, where they differ from the jobs the unit should run."""
    parts = [BLOCK.bench.job(cfg, job, always(), always()) for job in jobs]
    if sent:  # the sent streams, the expected output
        parts = [Job(BLOCK.bench.job(cfg, raw, always(), always(), max_cycles=1).sources,
                     part.sinks, part.max_cycles) for raw, part in zip(sent, parts)]
    ports = ("cmd", "p", "q", "o")
    whole = chain(parts, lambda port: random_pattern(0.7, seed + ports.index(port)),
                  lambda port: random_pattern(0.6, seed + 5))
    result = runner.run(sim, BLOCK.component(cfg), BLOCK.name, whole, workdir)
    assert not result.violations and not result.timed_out, result.violations
    for job, mine in zip(jobs, split(parts, result.beats["o"], "o")):
        compare(job, BLOCK.bench.decode(cfg, job, mine))
        assert BLOCK.bench.flagged(cfg, job, mine) == 0  # `last` on each frame's final beat


def compare(job, out):
    """Every output of ``job`` against the independent reference."""
    c, op = job["coords"], job["op"]
    if op == "kernel_map":
        maps, outs = kernel_map_ref(c, job["kernel_size"], job["stride"])
        got = list(zip(out["offset"].tolist(), out["in_idx"].tolist(), out["out_idx"].tolist()))
        assert got == maps
        if job["stride"] == 2:
            assert out["out_coords"].tolist() == [list(p) for p in outs]
    elif op == "knn":
        none = [[] for _ in job["queries"]]
        idx, dist = knn_ref(c, job["queries"], job["k"]) if job["k"] else (none, none)
        assert out["indices"].tolist() == idx and out["dist2"].tolist() == dist
    elif op == "ball_query":
        assert out["indices"].tolist() == ball_ref(c, job["queries"], job["radius2"], job["k"])
    else:
        assert out["indices"].tolist() == fps_ref(c, job["m"])


def jobs_for(coords, rng, top):
    """Every operation on one cloud: kernel maps of both sizes and strides, kNN with
    k = 1 and k = N, ball queries with an empty ball, a small one and one holding all
    points, FPS of every point."""
    n = len(coords)
    q = np.concatenate([coords[:1], rng.integers(0, top + 1, (2, 3))])
    return ([{"coords": coords, "op": "kernel_map", "kernel_size": k, "stride": s}
             for k in (2, 3) for s in (1, 2)]
            + [{"coords": coords, "op": "knn", "queries": q, "k": k} for k in sorted({1, n})]
            + [{"coords": coords, "op": "ball_query", "queries": q, "k": k, "radius2": r2}
               for k, r2 in ((n, 0), (min(3, n), 5), (n, 3 * top * top + 1))]
            + [{"coords": coords, "op": "fps", "m": n}])


@pytest.mark.parametrize("cloud", sorted(CORNERS))
def test_corner_clouds(hdl_sim, cloud, tmp_path):
    """One point, a line, a dense 5^3 cube (x-major sorted), the coordinate limits (a
    shifted key must not wrap into a false match), points at the maximum: every
    operation, back to back in one simulation."""
    rng = np.random.default_rng(len(cloud))
    check_back_to_back(CFG, jobs_for(CORNERS[cloud], rng, 2**16 - 1), hdl_sim, tmp_path,
                       seed=len(cloud))


def test_shuffled_and_sorted_inputs(hdl_sim, tmp_path):
    """A random cloud in random order (merge sort, table scatter) and sorted (no pass),
    and an empty cloud, back to back."""
    rng = np.random.default_rng(5)
    coords = random_cloud(rng, 100, 9)
    order = np.lexsort(coords.T[::-1])
    jobs = [{"coords": c, "op": "kernel_map", "kernel_size": k, "stride": s}
            for c in (coords, coords[order]) for k, s in ((3, 1), (2, 2))]
    jobs.insert(2, {"coords": coords[:0], "op": "kernel_map", "kernel_size": 3, "stride": 2})
    check_back_to_back(CFG, jobs, hdl_sim, tmp_path, seed=5)


def test_real_cloud_slice(hdl_sim, tmp_path):
    """The first 128 voxels of the pygsp bunny at 0.015 (torchsparse voxelization): every
    operation, against the references; cycles within 10% of the model."""
    coords = pointclouds.voxel_cloud("bunny", 0.015)[:128]
    rng = np.random.default_rng(1)
    q = coords[::16]
    jobs = [{"coords": coords, "op": "kernel_map", "kernel_size": 3, "stride": 1},
            {"coords": coords[rng.permutation(128)], "op": "kernel_map", "kernel_size": 3,
             "stride": 1},
            {"coords": coords, "op": "kernel_map", "kernel_size": 2, "stride": 2},
            {"coords": coords, "op": "knn", "queries": q, "k": 16},
            {"coords": coords, "op": "ball_query", "queries": q, "k": 16, "radius2": 5},
            {"coords": coords, "op": "fps", "m": 32}]
    check_back_to_back(CFG, jobs, hdl_sim, tmp_path, seed=1)
    if hdl_sim == "verilator":  # the model assumes no stalls
        for job in jobs[1:4]:  # scattered kernel map, stride 2, kNN
            report = check(CFG, job, hdl_sim, seed=2)
            _, fast = run_block(BLOCK, CFG, job, hdl_sim)
            assert abs(fast["cycles"] - fast["model_cycles"]) <= 0.1 * fast["cycles"], fast
            assert fast["bound_cycles"] <= fast["cycles"] <= report["cycles"]


def test_commands_out_of_range(any_sim, tmp_path):
    """Commands the CLI refuses, sent to the hardware itself, back to back with random
    stalls: n above capacity (all n points are taken from ``p``, the first capacity are
    kept), k and m above n (clamped to n), k = 0, m = 0 and n = 0 (empty frames); a valid
    job after each shows that nothing of a bad one leaks into the next. The Amaranth
    simulator (``make mutate``'s subset) runs the 2-lane unit of 16 points."""
    cfg = SMALL if any_sim == "amaranth" else CFG
    rng = np.random.default_rng(9)
    cap = cfg.capacity
    big = random_cloud(rng, cap + 9, 16)
    few, none, q = big[:5], big[:0], rng.integers(0, 16, (2, 3))
    sent = [{"coords": big, "op": "kernel_map", "kernel_size": 3, "stride": 1},
            {"coords": big, "op": "knn", "queries": q, "k": 4},
            {"coords": big, "op": "fps", "m": 6},
            {"coords": few, "op": "knn", "queries": q, "k": 9},
            {"coords": few, "op": "knn", "queries": q, "k": 0},
            {"coords": few, "op": "ball_query", "queries": q, "k": 7, "radius2": 60},
            {"coords": few, "op": "ball_query", "queries": q, "k": 0, "radius2": 60},
            {"coords": few, "op": "fps", "m": 8},
            {"coords": few, "op": "fps", "m": 0},
            {"coords": none, "op": "knn", "queries": q, "k": 2},
            {"coords": none, "op": "ball_query", "queries": q, "k": 3, "radius2": 60},
            {"coords": none, "op": "fps", "m": 3}]
    valid = {"coords": few, "op": "knn", "queries": q, "k": 3}
    sent = [job for bad in sent for job in (bad, valid)]
    runs = []
    for job in sent:  # the rule, restated: n <= capacity, then k, m <= n
        c = job["coords"][:cap]
        runs.append(dict(job, coords=c, **{f: min(job[f], len(c)) for f in ("k", "m")
                                           if f in job}))
    check_back_to_back(cfg, runs, any_sim, tmp_path, seed=9, sent=sent)


@pytest.mark.parametrize("lanes", [1, pytest.param(16, marks=pytest.mark.long)])
def test_lane_limits(lanes, tmp_path):
    """P = 1 and P = 16 at the narrowest coordinates (2 bits: a full 4^3 cube, shuffled).
    The 16-lane unit takes two minutes to elaborate and simulate: ``make test-long``."""
    cfg = MappingConfig(lanes=lanes, coord_width=2, capacity=64)
    cube = np.array([[x, y, z] for x in range(4) for y in range(4) for z in range(4)])
    rng = np.random.default_rng(lanes)
    shuffled = cube[rng.permutation(64)]
    check_back_to_back(cfg, jobs_for(shuffled, rng, 3), "icarus", tmp_path, seed=lanes)


@pytest.mark.mutation
def test_small_unit_on_the_amaranth_simulator(tmp_path):
    """The fast check (and ``make mutate``'s subset): a 2-lane unit with 4-bit coordinates
    on the Amaranth simulator, random stalls: every operation on a shuffled cloud, the
    same cloud sorted, one point, the coordinate limits; an empty kernel map, a 2^3 cube
    sorted, reversed, and sorted but for its first beat (twice: loaded right after a
    smaller point, and after points below all of its own: the first beat alone must
    spoil "arrived sorted", its second lane compared with its first); FPS on the cube (ties
    within a beat go to the lower lane); ball queries whose first hit is lane 0 of a
    beat alone, or a point other than 0, padded with it. Without stalls, kernel maps and kNN take the modelled
    cycles (within 10%: sorted inputs skip the sort passes and the scatter; k <= P
    results need no sort pass)."""
    cfg = SMALL
    rng = np.random.default_rng(3)
    cloud = random_cloud(rng, 13, 16)
    cloud[:2] = [[0, 0, 15], [15, 15, 15]]  # a shifted key must not wrap at 0 or 15
    order = np.lexsort(cloud.T[::-1])
    cube = np.array([[x, y, z] for x in (7, 8) for y in (7, 8) for z in (7, 8)])
    jobs = [job for c in (cloud, cloud[order][:7], cloud[:1]) for job in jobs_for(c, rng, 15)]
    jobs += [{"coords": c, "op": "kernel_map", "kernel_size": k, "stride": 1}
             for c, k in ((cloud[:0], 3), (cube, 2), (cube[::-1], 3), (cube[[1, 0, *range(2, 8)]], 3),
                          (cube[[1, 0, *range(2, 8)]] + 2, 3))]
    lone = np.array([[0, 0, 0], [15, 15, 15], [15, 0, 15], [1, 0, 0], [9, 9, 9]])
    jobs += [{"coords": cube, "op": "fps", "m": 8},
             {"coords": lone, "op": "ball_query", "queries": lone[[0, 4]], "k": 4, "radius2": 2}]
    check_back_to_back(cfg, jobs, "amaranth", tmp_path, seed=3)
    timed = [jobs[-6], jobs[-5], {"coords": cloud, "op": "knn", "queries": cloud[:3], "k": 2}]
    for job in timed:  # sorted and unsorted kernel maps, kNN, no stalls
        _, fast = run_block(BLOCK, cfg, job, "amaranth")
        assert abs(fast["cycles"] - fast["model_cycles"]) <= 0.1 * fast["cycles"], fast


def test_run_real_cloud_through_the_cli(tmp_path):
    """``accelgen run mapping`` at the preset (16-bit coordinates, 4096 points) on the
    bunny at 0.01 (658 voxels, shuffled): the kernel map equals the hash-map reference."""
    inp = tmp_path / "bunny.npz"
    subprocess.run([sys.executable, "-m", "accelgen", "workloads", "mapping", str(inp),
                    "--voxel", "0.01", "--shuffle"], check=True)
    proc = subprocess.run([sys.executable, "-m", "accelgen", "run", "mapping", "--input",
                           str(inp), "--output", str(tmp_path / "o.npz")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    data, out = np.load(inp), np.load(tmp_path / "o.npz")
    maps, _ = kernel_map_ref(data["coords"], 3, 1)
    assert np.stack([out["offset"], out["in_idx"], out["out_idx"]], 1).tolist() == \
        [list(t) for t in maps]
    assert report["match"] is True and len(data["coords"]) == 658


def test_inputs_accept_one_element_arrays_and_a_real_radius():
    """k, m, kernel_size and stride may come as one-element arrays and op as bytes; a real
    radius2 becomes its ceiling (for an integer d2, d2 < r2 exactly when d2 < ceil(r2))."""
    c = np.array([[0, 0, 0], [1, 2, 3], [4, 4, 4]])
    got = BLOCK.bench.check_inputs(CFG, {"coords": c, "op": np.array([b"ball_query"]),
                                         "queries": c, "k": np.array([2]),
                                         "radius2": np.array(2.5)})
    assert (got["op"], got["k"], got["radius2"]) == ("ball_query", 2, 3)
    d2 = np.arange(10)
    assert ((d2 < 2.5) == (d2 < 3)).all()
