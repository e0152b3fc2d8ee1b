"""The merger RTL against an independent merge (heapq + dict), on every simulator, under
random valid/ready stalls: corner streams, widths at the limits, merge rounds,
throughput and the cycle model."""
import heapq

import numpy as np
import pytest
from conftest import require_sim

from accelgen.params import MergerConfig
from accelgen.registry import get
from accelgen.run import run_block
from accelgen.sim import runner
from accelgen.sim.job import chain, split
from accelgen.sim.merger import random_streams
from accelgen.sim.streams import always, fixed, random_pattern

BLOCK = get("merger")
STALLS = {
    "none": lambda: (None, None),
    "random": lambda: (random_pattern(0.6, seed=21), random_pattern(0.5, seed=22)),
    "bursty": lambda: (fixed([1, 1, 1, 1, 0, 0, 0]), fixed([0, 1, 1, 0, 1])),
}
# P = 3 does not divide the tree's lanes evenly; 5 ways leave an odd subtree
SMALL = MergerConfig(ways=5, lanes=3, key_width=8, value_width=8)
TWO = MergerConfig(ways=2, lanes=4, key_width=8, value_width=8)


def reference(parts, value_range, saturate=True):
    """Sorted keys and summed values: heapq.merge and a dict, not golden/."""
    sums = {}
    for key, value in heapq.merge(*[list(zip(map(int, k), map(int, v))) for k, v in parts]):
        sums[key] = sums.get(key, 0) + value
    lo, hi = value_range
    keys = sorted(sums)
    return keys, [min(hi, max(lo, sums[k])) if saturate else sums[k] for k in keys]


def run(cfg, parts, sim, stalls="random"):
    """Merge ``parts`` (a list of (keys, values)) on the RTL and check every entry,
    the stream rules and the framing."""
    inputs = {"keys": np.array([int(x) for k, _ in parts for x in k], dtype=np.uint64),
              "values": np.array([int(x) for _, v in parts for x in v], dtype=np.int64),
              "lengths": np.array([len(k) for k, _ in parts])}
    valid, ready = STALLS[stalls]()
    outputs, report = run_block(BLOCK, cfg, inputs, sim, valid=valid, ready=ready)
    keys, values = reference(parts, cfg.value_range, cfg.saturate)
    assert [int(k) for k in outputs["keys"]] == keys
    assert [int(v) for v in outputs["values"]] == values
    assert report["match"] and report["stream_violations"] == 0 and not report["timed_out"]
    assert report["error_flags"] == 0  # `last` on the final beat only
    return report


def sorted_stream(rng, n, top, lo=-20, hi=20):
    return np.sort(rng.integers(0, top, n)), rng.integers(lo, hi + 1, n)


def test_corner_streams(any_sim):
    """Empty streams (all of them, and some), one stream, all keys equal across streams
    (the sum saturates), keys and values at their extremes, lengths not multiples of P,
    sums of zero (kept: structural nonzeros)."""
    rng = np.random.default_rng(5)
    empty = ([], [])
    run(SMALL, [empty] * 5, any_sim)
    run(SMALL, [sorted_stream(rng, 17, 256)], any_sim)
    run(SMALL, [([7] * 6, [100] * 6)] * 5, any_sim, "bursty")  # 3000 clamps to 127
    run(SMALL, [([0, 255, 255], [-128, -128, 127]), empty, ([255], [127]),
                ([0, 0, 254], [127, 127, -128]), ([255] * 4, [-128] * 4)], any_sim)
    run(SMALL, [sorted_stream(rng, n, 40) for n in (7, 1, 0, 13, 2)], any_sim)
    run(SMALL, [([1, 2, 3], [5, -6, 7]), ([1, 2, 3], [-5, 6, -7])] + [empty] * 3, any_sim)


def test_long_run_from_one_way(any_sim):
    """One way holds every key below the others' (then above): the tree drains it alone
    without starving or deadlocking, in both orders."""
    rng = np.random.default_rng(6)
    low = (np.arange(60), rng.integers(-9, 10, 60))
    high = [(np.sort(rng.integers(100, 200, 8)), rng.integers(-9, 10, 8)) for _ in range(4)]
    run(SMALL, [low] + high, any_sim)
    run(SMALL, [(k - 100, v) for k, v in high] + [(low[0] + 150, low[1])], any_sim, "bursty")


def test_rounds_fewest_first(any_sim):
    """12 streams through 5 ways: three rounds, each result fed back to the same RTL."""
    rng = np.random.default_rng(7)
    parts = [sorted_stream(rng, n, 120, -3, 3) for n in (9, 0, 30, 4, 4, 17, 1, 25, 8, 3, 11, 2)]
    report = run(SMALL, parts, any_sim)
    assert report["rounds"] == 3  # ((12 - 2) mod 4) + 2 = 4 first, then 5 and 5


def test_streams_back_to_back(any_sim, tmp_path):
    """Five merges back to back in one simulation under random stalls: each merge's
    first key equals the previous merge's last (nothing joins across a stream's end),
    sums saturating at both ends, an empty merge in between. On the Amaranth simulator
    (the mutation subset) two ways of four lanes (one node; four lanes give the
    combiner's prefix sum two levels); elsewhere the 5-way, 3-lane tree (built once)."""
    cfg = TWO if any_sim == "amaranth" else SMALL
    rng = np.random.default_rng(10)
    merges = [[([1, 5, 5, 9], [100, 100, -3, 7]), ([5, 9, 9], [50, -128, -128])],
              [([9, 10, 11, 12, 13], [1, 2, 3, 4, 5]), ([9], [3])],
              [([], []), ([], [])],
              [([13] * 9, [-100] * 9), ([13, 14], [120, 1])]]
    merges.append([(np.concatenate([[14], np.sort(rng.integers(14, 40, n - 1))]),
                    rng.integers(-60, 61, n)) for n in (30, 23)])
    jobs = [BLOCK.bench.round_job(cfg, parts, always(), always()) for parts in merges]
    whole = chain(jobs, lambda port: random_pattern(0.6, seed=int(port[1:] or 9)),
                  lambda port: random_pattern(0.5, seed=30))
    result = runner.run(any_sim, BLOCK.component(cfg), BLOCK.name, whole, tmp_path)
    assert not result.violations and not result.timed_out, result.violations
    for parts, beats in zip(merges, split(jobs, result.beats["o"], "o")):
        out = BLOCK.bench.decode(cfg, None, beats)
        keys, values = reference(parts, cfg.value_range)
        assert out["keys"].tolist() == keys and out["values"].tolist() == values
        assert BLOCK.bench.flagged(cfg, None, beats) == 0  # `last` on each merge's final beat


def test_sums_beyond_the_carry_width_clamp(hdl_sim):
    """Runs of one key long enough to overflow the combiner's carried sum (value_width +
    16 bits: about 2^16 entries of the largest magnitude) still clamp to the value range,
    positive and negative. Too long for the Amaranth simulator."""
    cfg = SMALL
    lo, hi = cfg.value_range
    half = ([3] * 33100 + [7] * 32800, [hi] * 33100 + [lo] * 32800)
    assert 66200 * hi > (1 << 23) and 65600 * lo < -(1 << 23)  # beyond 24-bit sums
    run(cfg, [half, half], hdl_sim, "none")


@pytest.mark.parametrize("cfg", [
    MergerConfig(ways=2, lanes=1, key_width=1, value_width=2),
    MergerConfig(ways=3, lanes=4, key_width=64, value_width=64, saturate=False),
])  # the 64-bit case has 4 streams: two rounds
def test_widths_at_the_limits(hdl_sim, cfg):
    rng = np.random.default_rng(8)
    lo, hi = cfg.value_range
    if cfg.key_width == 1:
        parts = [([0, 0, 1], [1, -2, 1]), ([0, 1, 1, 1], [-2, 1, -2, 1])]  # sums in -2..1
    else:
        top = (1 << 64) - 1
        parts = [([0, 5, top], [hi, lo, 3]), ([5, top - 1, top], [1, 2, -3]),
                 ([top] * 2, [lo + 10, -10])]
        parts += [(sorted(int(x) for x in rng.integers(0, 1 << 62, 9, dtype=np.int64)),
                   rng.integers(-50, 50, 9))]
    run(cfg, parts, hdl_sim)


@pytest.mark.parametrize("hdl_sim, ways, lanes, streams", [
    ("icarus", 64, 2, 100), ("verilator", 64, 2, 100), ("verilator", 2, 16, 4)])
def test_ways_and_lanes_at_the_limits(hdl_sim, ways, lanes, streams):
    """The widest tree and the widest beats, random stalls, more streams than ways
    (rounds). The 16-lane beats run on Verilator only (Icarus takes 75 s on them; the
    merger's other tests cover Icarus). The 64-way 16-lane tree runs in `make bench`
    (its build takes minutes)."""
    require_sim(hdl_sim)
    cfg = MergerConfig(ways=ways, lanes=lanes, key_width=16, value_width=16)
    rng = np.random.default_rng(9)
    parts = [sorted_stream(rng, int(n), 1 << 16) for n in rng.integers(0, 80, streams)]
    run(cfg, parts, hdl_sim)


@pytest.mark.parametrize("ways, lanes", [(16, 4), (4, 4)])
def test_throughput_and_cycle_model(ways, lanes):
    """Long random streams with no stalls: >= 0.95 P input entries a cycle, and the
    cycle model within 10% of the RTL."""
    require_sim("verilator")
    cfg = MergerConfig(ways=ways, lanes=lanes)
    inputs = random_streams(cfg, ways, 1024, seed=3)
    _, report = run_block(BLOCK, cfg, inputs, "verilator")
    assert report["match"]
    assert report["elements_per_cycle_per_lane"] >= 0.95, report
    assert abs(report["model_cycles"] - report["cycles"]) <= 0.1 * report["cycles"], report
