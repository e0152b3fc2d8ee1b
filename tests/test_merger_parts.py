"""The merger's parts alone: the FLiMS node's sorting layers against every 0-1 input (the
0-1 principle), and the node on the Amaranth simulator against Python's sort, job after
job, under random valid/ready stalls on all three streams."""

import itertools
import random

import pytest
from amaranth.sim import Simulator
from sim_streams import taken_beats

from accelgen.hdl.merger import FlimsNode, sort_layers
from accelgen.params import MergerConfig

#: the fast subset that mutation testing runs (pyproject [tool.mutmut])
pytestmark = pytest.mark.mutation


def _apply(layers, values):
    values = list(values)
    for layer in layers:
        for lo, hi in layer:
            if values[hi] < values[lo]:
                values[lo], values[hi] = values[hi], values[lo]
    return values


@pytest.mark.parametrize("lanes", (1, 2, 4, 8, 16))
def test_sort_layers_sort_every_rotated_bitonic_sequence(lanes):
    """P a power of two: the winners of a fire are a rotation of an ascending run
    followed by a descending one; on 0-1 values that is every rotation of 0^a 1^b 0^c."""
    n, layers = sort_layers(lanes)
    assert n == lanes and len(layers) == (lanes - 1).bit_length()
    for ones in range(lanes + 1):
        for shift in range(lanes):
            seq = [1] * ones + [0] * (lanes - ones)
            seq = seq[shift:] + seq[:shift]
            assert _apply(layers, seq) == sorted(seq)


@pytest.mark.parametrize("lanes", (3, 5, 6, 7))
def test_sort_layers_sort_anything_when_lanes_are_not_a_power_of_two(lanes):
    n, layers = sort_layers(lanes)
    assert n == 1 << (lanes - 1).bit_length()
    for bits in itertools.product((0, 1), repeat=lanes):
        padded = list(bits) + [2] * (n - lanes)  # empty lanes above every key
        assert _apply(layers, padded) == sorted(padded)


def _stream(rng, n, key_top):
    keys = sorted(rng.randrange(key_top) for _ in range(n))
    return [(k, rng.randrange(-100, 100)) for k in keys]


def _beats(entries, lanes):
    """Beats of ``lanes`` entries, full but the final one (which may be empty)."""
    beats = [entries[i:i + lanes] for i in range(0, len(entries), lanes)]
    if not beats or len(beats[-1]) == lanes:
        beats.append([])
    return beats


@pytest.mark.parametrize("lanes, a_lanes, b_lanes", [(1, 1, 1), (2, 2, 2), (3, 3, 3),
                                                     (4, 4, 4), (8, 8, 8), (4, 1, 2), (8, 2, 8)])
def test_flims_node_merges_job_after_job_under_stalls(lanes, a_lanes, b_lanes):
    """Random jobs (empty streams, one-sided, equal keys across the inputs, lengths
    around multiples of P) back to back, from inputs as wide as the node or narrower:
    every output beat full but a job's final one, and each job's entries the sorted
    merge of its two streams (equal keys in either order), nothing lost or duplicated."""
    rng = random.Random(lanes * 100 + a_lanes * 10 + b_lanes)
    cfg = MergerConfig(ways=2, lanes=lanes, key_width=8, value_width=8)
    node = FlimsNode(cfg, lanes, a_lanes, b_lanes)
    sizes = [0, 1, lanes - 1, lanes, lanes + 1, 2 * lanes, 3 * lanes + 1, 17, 40]
    jobs = [(_stream(rng, rng.choice(sizes), rng.choice((4, 256))),
             _stream(rng, rng.choice(sizes), rng.choice((4, 256)))) for _ in range(24)]
    jobs += [([], []), (_stream(rng, 9, 256), []), ([], _stream(rng, 9, 256))]
    got = []

    def feeder(port, side, width):
        async def bench(ctx):
            for job in jobs:
                beats = _beats(job[side], width)
                for j, beat in enumerate(beats):
                    while rng.random() < 0.3:
                        ctx.set(port.valid, 0)
                        await ctx.tick()
                    for lane, (key, value) in enumerate(beat):
                        ctx.set(port.payload.entries[lane].key, key)
                        ctx.set(port.payload.entries[lane].value, value)
                    ctx.set(port.payload.count, len(beat))
                    ctx.set(port.payload.last, j == len(beats) - 1)
                    ctx.set(port.valid, 1)
                    await ctx.tick().until(port.ready)
                ctx.set(port.valid, 0)
        return bench

    async def reader(ctx):
        entries = []
        async for payload in taken_beats(ctx, node.o, rng, 0.6):
            assert payload.last or payload.count == lanes, "a short beat not final"
            entries += [(e.key, e.value) for e in list(payload.entries)[:payload.count]]
            if payload.last:
                got.append(entries)
                entries = []
                if len(got) == len(jobs):
                    break
        await ctx.tick()
        for _ in range(40):  # and nothing more
            assert not ctx.get(node.o.valid)
            await ctx.tick()

    sim = Simulator(node)
    sim.add_clock(1e-6)
    sim.add_testbench(feeder(node.a, 0, a_lanes))
    sim.add_testbench(feeder(node.b, 1, b_lanes))
    sim.add_testbench(reader)
    sim.run_until(20000e-6)  # (a stuck node would wait forever)
    assert len(got) == len(jobs), "jobs stuck"
    for (a, b), out in zip(jobs, got):
        assert [k for k, _ in out] == sorted(k for k, _ in a + b)
        assert sorted(out) == sorted(a + b)
