"""The shared lane parts (hdl/lanes.py), each alone on the Amaranth
simulator against a plain Python model, at lane counts that are and are not powers of
two; the slot queue's output under random back-pressure."""

import random

import pytest
from amaranth import unsigned
from amaranth.lib import data
from amaranth.sim import Simulator
from sim_streams import taken_beats

from accelgen.hdl.lanes import BankedStore, Route, RowReader, SlotQueue
from accelgen.hdl.pipeline import StagedQueue

#: the fast subset that mutation testing runs (pyproject [tool.mutmut])
pytestmark = pytest.mark.mutation
LANES = (1, 3, 4, 5, 8)


def _run(dut, bench, clocked=True):
    sim = Simulator(dut)
    if clocked:
        sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def _masked(rng, lanes):
    return [rng.random() < 0.6 for _ in range(lanes)]


@pytest.mark.parametrize("lanes", LANES)
def test_route_compacts_the_kept_lanes_from_the_offset(lanes):
    rng, route = random.Random(lanes), Route(unsigned(8), lanes)

    async def bench(ctx):
        for _ in range(200):
            items, keep = [rng.randrange(256) for _ in range(lanes)], _masked(rng, lanes)
            off = rng.randrange(lanes)
            for i, item in enumerate(items):
                ctx.set(route.items[i], item)
            ctx.set(route.mask, sum(k << i for i, k in enumerate(keep)))
            ctx.set(route.off, off)
            kept = [item for item, k in zip(items, keep) if k]
            want = {(off + j) % lanes: item for j, item in enumerate(kept)}
            assert ctx.get(route.count) == len(kept)
            en = ctx.get(route.en)
            assert {b for b in range(lanes) if en >> b & 1} == set(want)
            assert {b: ctx.get(route.data[b]) for b in want} == want
            assert ctx.get(route.wrap) == sum(1 << b for b in range(lanes) if b < off)
    _run(route, bench, clocked=False)


@pytest.mark.parametrize("lanes", LANES)
def test_banked_store_reads_back_what_was_pushed_in_order(lanes):
    """Port 0 reads the rows in order; port 1 gives each copy of its address (one per
    group of banks) a different row, and each bank answers from its own group's."""
    rows, groups = 9, min(2, lanes)
    rng = random.Random(lanes)
    store = BankedStore(unsigned(8), lanes, rows, readers=2, groups=groups)
    pushed = []

    async def bench(ctx):
        row = off = 0
        while len(pushed) + lanes <= rows * lanes:
            items, keep = [rng.randrange(256) for _ in range(lanes)], _masked(rng, lanes)
            ctx.set(store.w_row, row)
            ctx.set(store.w_off, off)
            ctx.set(store.w_mask, sum(k << i for i, k in enumerate(keep)))
            for i, item in enumerate(items):
                ctx.set(store.w_items[i], item)
            kept = [item for item, k in zip(items, keep) if k]
            assert ctx.get(store.w_count) == len(kept)
            pushed.extend(kept)
            row, off = divmod(row * lanes + off + len(kept), lanes)
            await ctx.tick()
        ctx.set(store.w_mask, 0)
        got = []
        for r in range(-(-len(pushed) // lanes)):
            other = [(r + 1 + 3 * g) % row for g in range(groups)]
            ctx.set(store.r_row[0], [r] * groups)
            ctx.set(store.r_row[1], other)
            await ctx.tick()
            got += [ctx.get(store.r_data[0][b]) for b in range(lanes)]
            assert [ctx.get(store.r_data[1][b]) for b in range(lanes)] == [
                pushed[other[b * groups // lanes] * lanes + b] for b in range(lanes)]
        assert got[:len(pushed)] == pushed
    _run(store, bench)


@pytest.mark.parametrize("lanes", (1, 4))
def test_row_reader_issues_every_row_once_and_marks_the_tail(lanes):
    """Its copies of the row, one per address group, always equal the row."""
    rng, reader = random.Random(lanes), RowReader(lanes, rows=6, groups=lanes)

    async def bench(ctx):
        for rows, tail in ((0, lanes), (1, 1), (5, lanes), (6, max(1, lanes - 1))):
            ctx.set(reader.clear, 1)
            await ctx.tick()
            ctx.set(reader.clear, 0)
            ctx.set(reader.rows, rows)
            ctx.set(reader.tail, tail)
            issued, arrived, cycles = [], [], 0
            while not ctx.get(reader.finished) or cycles == 0:
                go = rng.random() < 0.6
                ctx.set(reader.go, go)
                assert list(ctx.get(reader.row_copies)) == [ctx.get(reader.row)] * lanes
                if ctx.get(reader.issue):
                    issued.append(ctx.get(reader.row))
                await ctx.tick()
                if ctx.get(reader.inflight):
                    arrived.append((ctx.get(reader.live), ctx.get(reader.first)))
                cycles += 1
                assert cycles < 100
            assert issued == list(range(rows))
            full = (1 << lanes) - 1
            assert arrived == [(full if r + 1 < rows else (1 << tail) - 1, r == 0)
                               for r in range(rows)]
    _run(reader, bench)


def _push_plan(rng, lanes, rows=40):
    """Rows of random lengths, each as pushes (lanes used, items, final): up to P items a
    push on random lanes, the final push with or without items."""
    plan = []
    for _ in range(rows):
        row = [rng.randrange(256) for _ in range(rng.choice(
            [0, 1, lanes, 2 * lanes + 1, rng.randrange(4 * lanes)]))]
        pos = 0
        while True:
            take = min(len(row) - pos, rng.randrange(lanes + 1))
            used = sorted(rng.sample(range(lanes), take))
            pos += take
            final = pos == len(row) and rng.random() < 0.7
            plan.append((used, row[pos - take:pos], final))
            if final:
                break
    return plan


def _slot_beats(plan, lanes):
    """(items, last) of every beat the queue must send for ``plan``: rows cut into P-item
    slots; a row's final slot has ``last``; a final push of no items at a slot boundary
    adds an empty slot with ``last``."""
    beats, slot = [], []
    for _, items, final in plan:
        for item in items:
            slot.append(item)
            if len(slot) == lanes:
                beats.append([slot, False])
                slot = []
        if final:
            if slot or not items:
                beats.append([slot, True])
            else:
                beats[-1][1] = True
            slot = []
    return [tuple(b) for b in beats]


QUEUES = {"slot": SlotQueue, "staged": StagedQueue,
          "staged, room copies": lambda beat, items: StagedQueue(beat, items, copies=3)}


@pytest.mark.parametrize("queue", QUEUES)
@pytest.mark.parametrize("lanes", (1, 3, 4))
def test_slot_queue_frames_rows_into_beats_under_back_pressure(lanes, queue):
    """The SlotQueue, and the StagedQueue (hdl/pipeline.py) with its registered writer,
    also with its ``room`` as registered copies (each equal to the used count's
    ``room`` in every cycle)."""
    rng = random.Random(lanes)
    beat = data.StructLayout({"items": data.ArrayLayout(unsigned(8), lanes),
                              "count": unsigned(lanes.bit_length()), "last": unsigned(1)})
    queue = QUEUES[queue](beat, "items")
    plan = _push_plan(rng, lanes)
    want, got = _slot_beats(plan, lanes), []

    def room(ctx):
        """The queue's room, and its copies agree."""
        room = ctx.get(queue.room)
        if hasattr(queue, "rooms"):
            assert ctx.get(queue.rooms) == ((1 << len(queue.rooms)) - 1 if room else 0)
        return room

    async def writer(ctx):
        for used, items, final in plan:
            while rng.random() < 0.3 or not room(ctx):
                ctx.set(queue.push_mask, 0)
                ctx.set(queue.push_final, 0)
                await ctx.tick()
            for lane, item in zip(used, items):
                ctx.set(queue.push_items[lane], item)
            ctx.set(queue.push_mask, sum(1 << lane for lane in used))
            ctx.set(queue.push_final, final)
            await ctx.tick()
        ctx.set(queue.push_mask, 0)
        ctx.set(queue.push_final, 0)

    async def reader(ctx):
        async for payload in taken_beats(ctx, queue.o, rng, 0.5):
            got.append((list(payload.items)[:payload.count], bool(payload.last)))
            if len(got) == len(want):
                break
        await ctx.tick()
        for _ in range(8):  # and nothing more
            ctx.set(queue.o.ready, 1)
            assert not ctx.get(queue.o.valid)
            await ctx.tick()

    sim = Simulator(queue)
    sim.add_clock(1e-6)
    sim.add_testbench(writer)
    sim.add_testbench(reader)
    sim.run()
    assert got == want


