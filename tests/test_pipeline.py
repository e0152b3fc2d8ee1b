"""The registered lane networks of hdl/pipeline.py on the Amaranth simulator, each
against a plain Python model written here, with ``adv`` stalling at random: what
entered on an advancing cycle shows on the outputs ``latency`` advancing cycles later.
(The :class:`StagedQueue` runs the SlotQueue's framing test in tests/test_parts.py.)"""
import random

import pytest
from amaranth import unsigned
from amaranth.sim import Simulator

from accelgen.hdl.pipeline import Eliminate, PrefixCount, Rotate

pytestmark = pytest.mark.mutation


def run_stalled(part, rng, drive, observe, cases=60):
    """Drives ``drive(ctx, case)`` for random cases, with ``adv`` high half the time,
    and checks ``observe(ctx)`` against ``expect(case)`` of the case that entered
    ``part.latency`` advancing cycles before."""
    entered, got = [], []

    async def bench(ctx):
        for _ in range(cases * 3):
            adv = rng.random() < 0.5
            ctx.set(part.adv, adv)
            case = drive(ctx, rng)
            if len(entered) >= part.latency:
                got.append((entered[len(entered) - part.latency], observe(ctx)))
            if adv:
                entered.append(case)
            await ctx.tick()

    sim = Simulator(part)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(got) > cases // 2
    return got


@pytest.mark.parametrize("lanes", (1, 3, 8, 16))
def test_prefix_count_counts_the_set_bits_before_each_lane(lanes):
    part = PrefixCount(lanes)

    def drive(ctx, rng):
        bits = [rng.random() < 0.5 for _ in range(lanes)]
        ctx.set(part.bits, sum(b << i for i, b in enumerate(bits)))
        return bits

    def observe(ctx):
        return [ctx.get(part.before[i]) for i in range(lanes)], ctx.get(part.total)

    for bits, (before, total) in run_stalled(part, random.Random(lanes), drive, observe):
        assert before == [sum(bits[:i]) for i in range(lanes)] and total == sum(bits)


@pytest.mark.parametrize("lanes, prefix", [(1, False), (3, False), (5, False), (8, False),
                                           (5, True), (8, True)])
def test_eliminate_moves_the_kept_lanes_down_in_order(lanes, prefix):
    """``prefix``: the masks are prefixes of the lanes, which stay where they are."""
    part = Eliminate(unsigned(8), lanes, prefix=prefix)

    def drive(ctx, rng):
        items = [rng.randrange(256) for _ in range(lanes)]
        if prefix:
            count = rng.randrange(lanes + 1)
            mask = [j < count for j in range(lanes)]
        else:
            mask = [rng.random() < 0.5 for _ in range(lanes)]
        for i, item in enumerate(items):
            ctx.set(part.items[i], item)
        ctx.set(part.mask, sum(b << i for i, b in enumerate(mask)))
        return [item for item, keep in zip(items, mask) if keep]

    def observe(ctx):
        count, kept = ctx.get(part.count), ctx.get(part.kept)
        return count, kept, [ctx.get(part.data[i]) for i in range(count)]

    for want, (count, kept, items) in run_stalled(part, random.Random(lanes), drive, observe):
        assert (count, kept, items) == (len(want), (1 << len(want)) - 1, want)


@pytest.mark.parametrize("lanes", (1, 3, 4, 8))
def test_rotate_turns_compacted_lane_j_into_bank_off_plus_j(lanes):
    part = Rotate(unsigned(8), lanes)

    def drive(ctx, rng):
        count, off = rng.randrange(lanes + 1), rng.randrange(lanes)
        items = [rng.randrange(256) for _ in range(lanes)]
        for i, item in enumerate(items):
            ctx.set(part.items[i], item)
        ctx.set(part.kept, (1 << count) - 1)
        ctx.set(part.off, off)
        banks = {(off + j) % lanes: items[j] for j in range(count)}
        return banks, [b < off for b in range(lanes)]

    def observe(ctx):
        en, wrap = ctx.get(part.en), ctx.get(part.wrap)
        return ({b: ctx.get(part.data[b]) for b in range(lanes) if en >> b & 1},
                [bool(wrap >> b & 1) for b in range(lanes)])

    for want, got in run_stalled(part, random.Random(lanes), drive, observe):
        assert got == want
