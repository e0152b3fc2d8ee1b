"""The mapping unit's own parts (hdl/mapping_parts.py), each alone on the Amaranth
simulator against a plain Python model: the run reader's beats under back-pressure, the
row sorter, and the frame closer's frames."""
import random

import pytest
from amaranth import Elaboratable, Module, unsigned
from amaranth.lib import data, memory
from amaranth.sim import Simulator

from accelgen.hdl.mapping_parts import FrameCloser, RowSorter, RunReader

#: the fast subset that mutation testing runs (pyproject [tool.mutmut])
pytestmark = pytest.mark.mutation
ENTRY = data.StructLayout({"key": unsigned(5), "value": unsigned(8)})


def _run(dut, *benches):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for bench in benches:
        sim.add_testbench(bench)
    sim.run()


class _StoreAndReader(Elaboratable):
    """A run reader on a one-cycle-read memory whose row r holds the value r + 1."""

    def __init__(self, lanes, rows):
        self.reader = RunReader(lanes, rows, data_width=8)
        self.rows = rows

    def elaborate(self, platform):
        m = Module()
        m.submodules.reader = reader = self.reader
        m.submodules.mem = mem = memory.Memory(shape=8, depth=2 * self.rows + 1,
                                               init=[r + 1 for r in range(2 * self.rows + 1)])
        port = mem.read_port(transparent_for=())
        m.d.comb += [port.addr.eq(reader.addr), reader.data.eq(port.data)]
        return m


def _runs(first, step, length, pairs, rows, tail, lanes):
    """(data, count, last, row) of every beat the reader must send."""
    beats = []
    for p in range(pairs):
        start = first + p * step
        end = min(start + length, rows)
        if start >= end:
            beats.append((None, 0, 1, None))
        for r in range(start, end):
            beats.append((r + 1, tail if r + 1 == rows else lanes, int(r + 1 == end), r))
    return beats


@pytest.mark.parametrize("lanes", (1, 4))
def test_run_reader_streams_runs_of_rows_under_back_pressure(lanes):
    rng, rows = random.Random(lanes), 7
    top = _StoreAndReader(lanes, rows)
    reader = top.reader
    jobs = [(0, 0, rows, 1, rows, lanes), (0, 2, 1, 4, rows, 1), (1, 4, 2, 2, rows, lanes),
            (0, 3, 3, 3, rows, min(2, lanes)), (5, 0, 0, 1, rows, lanes),
            (0, 0, 4, 0, rows, lanes)]

    async def bench(ctx):
        for first, step, length, pairs, rows_, tail in jobs:
            for name, value in zip(RunReader.FIELDS, (first, step, length, pairs, rows_)):
                ctx.set(reader.cfg[name], value)
            ctx.set(reader.tail, tail)
            ctx.set(reader.start, 1)
            await ctx.tick()
            ctx.set(reader.start, 0)
            want, got, cycles = _runs(first, step, length, pairs, rows_, tail, lanes), [], 0
            while ctx.get(reader.busy) or cycles == 0:
                ready = rng.random() < 0.25  # long stalls fill the FIFO
                ctx.set(reader.o.ready, ready)
                beat = ctx.get(reader.o.payload)
                if ctx.get(reader.o.valid) and ready:
                    got.append((beat.data, beat.count, beat.last, beat.row))
                await ctx.tick()
                cycles += 1
                assert cycles < 200
            ctx.set(reader.o.ready, 0)
            assert [(d, c, last, r) if c else (None, 0, last, None) for d, c, last, r in got] == \
                want, (first, step, length, pairs)
    _run(top, bench)


@pytest.mark.parametrize("lanes", (1, 3, 4))
def test_row_sorter_sorts_the_valid_entries_stably(lanes):
    rng, sorter = random.Random(lanes), RowSorter(ENTRY, lanes)

    async def bench(ctx):
        for _ in range(100):
            count = rng.randrange(lanes + 1)
            entries = [(rng.randrange(4), rng.randrange(256)) for _ in range(lanes)]
            for j, (key, value) in enumerate(entries):
                ctx.set(sorter.entries[j], {"key": key, "value": value})
            ctx.set(sorter.count, count)
            ctx.set(sorter.valid, 1)
            await ctx.tick()
            ctx.set(sorter.valid, 0)
            got = [(ctx.get(sorter.out[j]).key, ctx.get(sorter.out[j]).value)
                   for j in range(count)]
            assert ctx.get(sorter.out_valid) and ctx.get(sorter.out_count) == count
            assert got == sorted(entries[:count], key=lambda e: e[0])  # stable: ties in order
            await ctx.tick()
            assert not ctx.get(sorter.out_valid)
    _run(sorter, bench)


@pytest.mark.parametrize("lanes", (1, 4))
def test_frame_closer_ends_frames_of_any_length(lanes):
    rng = random.Random(lanes)
    beat = data.StructLayout({"items": data.ArrayLayout(unsigned(8), lanes),
                              "count": unsigned(lanes.bit_length()), "last": unsigned(1)})
    closer = FrameCloser(beat, "items")
    frames = [[rng.randrange(256) for _ in range(rng.choice([0, 1, lanes, 2 * lanes + 1, 5]))]
              for _ in range(25)]
    want = [(frame[i:i + lanes], i + lanes >= len(frame))
            for frame in frames for i in range(0, max(1, len(frame)), lanes)]
    got = []

    async def writer(ctx):
        for frame in frames:
            pos = 0
            while pos <= len(frame):
                while rng.random() < 0.3 or not ctx.get(closer.room):
                    ctx.set(closer.mask, 0)
                    ctx.set(closer.close, 0)
                    await ctx.tick()
                take = min(len(frame) - pos, rng.randrange(1, lanes + 1))
                if take:  # a push of some items on random lanes
                    used = sorted(rng.sample(range(lanes), take))
                    for lane, item in zip(used, frame[pos:pos + take]):
                        ctx.set(closer.items[lane], item)
                    ctx.set(closer.mask, sum(1 << lane for lane in used))
                    ctx.set(closer.close, 0)
                    pos += take
                else:  # every item pushed: close the frame in a cycle without a push
                    ctx.set(closer.mask, 0)
                    ctx.set(closer.close, 1)
                    pos += 1
                await ctx.tick()
        ctx.set(closer.mask, 0)
        ctx.set(closer.close, 0)

    async def reader(ctx):
        while len(got) < len(want):
            ctx.set(closer.o.ready, rng.random() < 0.5)
            payload = ctx.get(closer.o.payload)
            if ctx.get(closer.o.valid) and ctx.get(closer.o.ready):
                got.append((list(payload.items)[:payload.count], bool(payload.last)))
            await ctx.tick()

    _run(closer, writer, reader)
    assert got == want
