"""The mapping unit's own parts (hdl/mapping_parts.py), each alone on the Amaranth
simulator against a plain Python model: the run reader's beats under back-pressure, the
row sorter, the frame closer's frames, the distance lanes and merge feeds under random
stalls, the sort buffers' writer, the match detector, the map table, the kernel offsets,
ball query's hits and FPS's lane."""
import random

import pytest
from amaranth import ClockDomain, Elaboratable, Module, Value, unsigned
from amaranth.lib import data, memory
from amaranth.sim import Simulator
from mapping_refs import offsets

from accelgen.hdl.mapping_parts import (BallHits, BufferWriter, DistanceLanes, FpsLane,
                                        FrameCloser, KernelOffsets, MapTable, MatchDetector,
                                        MergeFeed, RowSorter, RunReader)
from accelgen.params.mapping import MappingConfig

#: the fast subset that mutation testing runs (pyproject [tool.mutmut])
pytestmark = pytest.mark.mutation
ENTRY = data.StructLayout({"key": unsigned(5), "value": unsigned(8)})
#: 4 lanes of 3-bit coordinates, 16 points (4 rows); CFG1 one lane
CFG, CFG1 = MappingConfig(lanes=4, coord_width=3, capacity=16), \
    MappingConfig(lanes=1, coord_width=3, capacity=4)


def _run(dut, *benches):
    top = Module()  # a clock even for a combinational part
    top.submodules.dut = dut
    top.domains.sync = ClockDomain()
    sim = Simulator(top)
    sim.add_clock(1e-6)
    for bench in benches:
        sim.add_testbench(bench)
    sim.run()


class _StoreAndReader(Elaboratable):
    """A run reader on a one-cycle-read memory whose row r holds the value r + 1."""

    def __init__(self, lanes, rows):
        self.reader = RunReader(lanes, rows, data_shape=8)
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


def _send(port, beats, rng):
    """A testbench that offers ``beats`` (payload values) on ``port`` with random gaps."""
    async def bench(ctx):
        for beat in beats:
            while rng.random() < 0.4:
                ctx.set(port.valid, 0)
                await ctx.tick()
            ctx.set(port.payload, beat)
            ctx.set(port.valid, 1)
            await ctx.tick().until(port.ready)
        ctx.set(port.valid, 0)
    return bench


def _take(port, got, count, rng):
    """A testbench that takes ``count`` beats from ``port`` (random ready) into ``got``."""
    layout = port.payload.shape()

    async def bench(ctx):
        while len(got) < count:
            ctx.set(port.ready, rng.random() < 0.5)
            _, _, valid, ready, raw = await ctx.tick().sample(port.valid, port.ready,
                                                              Value.cast(port.payload))
            if valid and ready:
                got.append(layout.from_bits(raw))
    return bench


def _point_beats(cfg, rng, count):
    lanes, top = cfg.lanes, (1 << cfg.coord_width) - 1
    corner = [{"x": c, "y": c, "z": c} for c in (0, top)]
    return [{"data": {"points": [rng.choice(corner + [{f: rng.randrange(top + 1) for f in "xyz"}])
                                 for _ in range(lanes)],
                      "minima": [rng.randrange(cfg.max_dist2 + 1) for _ in range(lanes)]},
             "count": rng.randrange(lanes + 1), "last": rng.randrange(2),
             "row": rng.randrange(cfg.rows)} for _ in range(count)]


@pytest.mark.parametrize("cfg", (CFG, CFG1), ids=("4 lanes", "1 lane"))
def test_distance_lanes_pass_beats_on_with_squared_distances(cfg):
    rng, dut = random.Random(cfg.lanes), DistanceLanes(cfg)
    top = (1 << cfg.coord_width) - 1
    beats, got = _point_beats(cfg, rng, 40), []
    query = {"x": top, "y": 0, "z": rng.randrange(top + 1)}

    async def hold_query(ctx):
        ctx.set(dut.query, query)

    _run(dut, hold_query, _send(dut.i, beats, rng), _take(dut.o, got, len(beats), rng))
    for beat, out in zip(beats, got, strict=True):
        want = [sum((p[f] - query[f]) ** 2 for f in "xyz") for p in beat["data"]["points"]]
        assert list(out.data.d2) == want
        assert list(out.data.minima) == beat["data"]["minima"]
        assert (out.count, out.last, out.row) == (beat["count"], beat["last"], beat["row"])


def _merge_key(cfg, key, side, kmap, stride2, delta):
    """The reference merge key of a sort key (module docstring of hdl/mapping.py)."""
    if not kmap:
        return key << 1
    w, fw = cfg.coord_width, cfg.field_width
    x, y, z = key >> 2 * w, (key >> w) & ((1 << w) - 1), key & ((1 << w) - 1)
    fields = [c * (2 if side == 0 and stride2 else 1) + (d if side == 0 else 0) + 1
              for c, d in zip((x, y, z), delta)]
    assert all(0 <= f < 1 << fw for f in fields)  # no wrap at 0 or at the maximum
    return side | fields[2] << 1 | fields[1] << 1 + fw | fields[0] << 1 + 2 * fw


@pytest.mark.parametrize("side", (0, 1))
def test_merge_feed_forms_merge_keys_and_routes_beats(side):
    """Beats go to the merge node while ``merging`` is high, else (side 0) to ``rows``; the
    keys of a kernel map's outputs (side 0) are shifted by the offset and scaled by the
    stride, and at stride 2 their values are positions; coordinates 0 and 7 with offsets
    -1 and +1 (no wrap)."""
    cfg, rng = CFG, random.Random(side)
    lanes, kw = cfg.lanes, 3 * cfg.coord_width
    dut = MergeFeed(cfg, side)
    beats = [{"data": [{"key": rng.choice([0, (1 << kw) - 1, rng.randrange(1 << kw)]),
                        "value": rng.randrange(1 << cfg.index_width)} for _ in range(lanes)],
              "count": rng.randrange(lanes + 1), "last": rng.randrange(2),
              "row": rng.randrange(cfg.rows)} for _ in range(60)]
    modes = [(rng.randrange(2) if side == 0 else 1, rng.randrange(2), rng.randrange(2),
              [rng.choice((-1, 0, 1)) for _ in range(3)]) for _ in beats]
    merged, rows = [], []

    async def source(ctx):  # the mode of a beat holds until it is taken
        for beat, (merge, kmap, stride2, delta) in zip(beats, modes):
            ctx.set(dut.merging, merge)
            ctx.set(dut.kmap, kmap)
            if side == 0:
                ctx.set(dut.stride2, stride2)
                ctx.set(dut.delta, delta)
            ctx.set(dut.i.payload, beat)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            await ctx.tick()

    benches = [source, _take(dut.o, merged, sum(m[0] for m in modes), rng)]
    if side == 0:
        benches.append(_take(dut.rows, rows, sum(1 - m[0] for m in modes), rng))
    _run(dut, *benches)
    merged, rows = iter(merged), iter(rows)
    for beat, (merge, kmap, stride2, delta) in zip(beats, modes):
        if not merge:
            out = next(rows)
            assert (list(out.data), out.count, out.last, out.row) == \
                tuple(beat[f] for f in ("data", "count", "last", "row"))
            continue
        out = next(merged)
        assert (out.count, out.last) == (beat["count"], beat["last"])
        for j, (e, got) in enumerate(zip(beat["data"], out.entries)):
            assert got.key == _merge_key(cfg, e["key"], side, kmap, stride2, delta)
            positioned = side == 0 and kmap and stride2
            assert got.value == (beat["row"] * lanes + j if positioned else e["value"])


async def _pulse(ctx, port, value=1):
    """One cycle with ``port`` at ``value``, then back to 0."""
    ctx.set(port, value)
    await ctx.tick()
    ctx.set(port, 0)


def _merge_beat(entries, lanes, last=0):
    return {"entries": entries + [{"key": 0, "value": 0}] * (lanes - len(entries)),
            "count": len(entries), "last": last}


@pytest.mark.parametrize("cfg", (CFG, CFG1), ids=("4 lanes", "1 lane"))
def test_buffer_writer_loads_rows_and_writes_passes_deduplicated(cfg):
    """Row-sorter rows to consecutive rows of the load buffer; merge output compacted at
    the pass writer's pointer, in a deduplicating pass without the entries whose key
    equals the one before (within a beat and across beats); ``total`` counts them."""
    rng, lanes = random.Random(cfg.lanes), cfg.lanes
    dut = BufferWriter(cfg, 3)

    async def bench(ctx):
        def write():
            mask = ctx.get(dut.w_mask)
            return ctx.get(dut.w_buf), ctx.get(dut.w_row), ctx.get(dut.w_off), \
                [(e.key, e.value) for j, e in enumerate(ctx.get(dut.w_items)) if mask >> j & 1]
        ctx.set(dut.load_buf, 2)
        await _pulse(ctx, dut.load_start)
        for row in range(cfg.rows):
            count = rng.randrange(lanes + 1)
            items = [{"key": rng.randrange(64), "value": rng.randrange(1 << cfg.index_width)}
                     for _ in range(lanes)]
            ctx.set(dut.rows, items)
            ctx.set(dut.rows_count, count)
            ctx.set(dut.rows_valid, 1)
            assert write() == (2, row, 0, [(e["key"], e["value"]) for e in items[:count]])
            await ctx.tick()
        ctx.set(dut.rows_valid, 0)
        assert ctx.get(dut.w_mask) == 0
        for dedupe in (0, 1, 1, 1, 1):  # the pointer and the key before start afresh
            ctx.set(dut.pass_buf, dedupe)
            ctx.set(dut.dedupe, dedupe)
            await _pulse(ctx, dut.pass_start)
            stored, kept, prev = {}, [], None
            for _ in range(16):
                count = rng.randrange(lanes + 1)
                entries = sorted(({"key": rng.randrange(3) << 1 | rng.randrange(2),
                                   "value": rng.randrange(1 << cfg.index_width)}
                                  for _ in range(count)),
                                 key=lambda e: e["key"] >> 1)
                ctx.set(dut.merged, _merge_beat(entries, lanes))
                take = rng.randrange(4) != 0  # else an idle cycle: nothing written
                ctx.set(dut.take, take)
                if not take:
                    assert ctx.get(dut.w_mask) == 0
                    await ctx.tick()
                    continue
                for e in entries:
                    if not (dedupe and e["key"] >> 1 == prev):
                        kept.append((e["key"] >> 1, e["value"]))
                    prev = e["key"] >> 1
                if not entries:  # an empty beat (a run's end): the next key is not compared
                    prev = None
                buf, row, off, items = write()
                assert buf == dedupe and ctx.get(dut.total) == len(kept)
                stored.update((row * lanes + off + k, item) for k, item in enumerate(items))
                await ctx.tick()
            ctx.set(dut.take, 0)
            assert [stored[q] for q in range(len(stored))] == kept
    _run(dut, bench)


@pytest.mark.parametrize("cfg", (CFG, CFG1), ids=("4 lanes", "1 lane"))
def test_match_detector_pairs_outputs_with_the_inputs_right_behind(cfg):
    """Runs of merge output (side bit under the key): an output entry directly followed
    by an input entry of the same key is a map, within a beat and across beats (not
    across a run's end or an empty beat); beats not taken are not carried."""
    rng, lanes, iw = random.Random(cfg.lanes), cfg.lanes, cfg.index_width
    dut = MatchDetector(cfg)

    async def bench(ctx):
        for _ in range(30):
            before = None  # (side, key, index) of the entry before, in this run
            beats = rng.randrange(1, 6)
            for b in range(beats):
                count, last = rng.randrange(lanes + 1), b == beats - 1
                entries = [{"key": rng.randrange(2) << 1 | rng.randrange(2),  # any order
                            "value": rng.randrange(1 << iw)} for _ in range(count)]
                ctx.set(dut.beat, _merge_beat(entries, lanes, last))
                want = []
                for e in entries:
                    side, key = e["key"] & 1, e["key"] >> 1
                    if before and side and not before[0] and before[1] == key:
                        want.append((e["value"], before[2]))
                    before = (side, key, e["value"])
                matches = ctx.get(dut.matches)
                assert [(p.in_idx, p.out_idx) for j, p in enumerate(matches.pairs)
                        if matches.mask >> j & 1] == want
                if rng.randrange(3) == 0:  # a cycle without a take: nothing carried
                    await ctx.tick()
                await _pulse(ctx, dut.take)
                if last or not entries:
                    before = None
    _run(dut, bench)


@pytest.mark.parametrize("cfg", (CFG, CFG1), ids=("4 lanes", "1 lane"))
def test_map_table_scatters_maps_and_scans_them_in_output_order(cfg):
    """Maps scattered through the FIFO under random stalls, read back by output index
    under a random ``scan``, rows zeroed behind (the next round starts empty); a wipe
    clears maps never scanned; ``n_out`` not a multiple of P."""
    rng, lanes, iw = random.Random(cfg.lanes), cfg.lanes, cfg.index_width
    dut = MapTable(cfg)
    n_out = cfg.capacity - 1
    rows, tail = -(-n_out // lanes), (n_out - 1) % lanes + 1

    def scatter_beats(maps):
        beats, left = [], list(maps.items())
        while left:
            mask = rng.randrange(1 << lanes)
            pairs = [{"in_idx": rng.randrange(1 << iw), "out_idx": rng.randrange(n_out)}
                     for _ in range(lanes)]
            for j in range(lanes):
                if mask >> j & 1:
                    if left:
                        out_idx, in_idx = left.pop()
                        pairs[j] = {"in_idx": in_idx, "out_idx": out_idx}
                    else:
                        mask &= ~(1 << j)
            beats.append({"mask": mask, "pairs": pairs})
        return beats

    async def idle(ctx):
        while not ctx.get(dut.idle):
            await ctx.tick()

    async def scan(ctx):
        found = []
        await _pulse(ctx, dut.restart)
        while not ctx.get(dut.finished):
            ctx.set(dut.scan, rng.randrange(2))
            mask, maps = ctx.get(dut.found), ctx.get(dut.maps)
            found += [(p.out_idx, p.in_idx) for j, p in enumerate(maps) if mask >> j & 1]
            await ctx.tick()
        ctx.set(dut.scan, 0)
        return found

    async def bench(ctx):
        ctx.set(dut.rows, rows)
        ctx.set(dut.tail, tail)
        for round_ in range(4):
            maps = {o: rng.randrange(1 << iw) for o in rng.sample(range(n_out),
                                                                  rng.randrange(n_out + 1))}
            await _send(dut.i, scatter_beats(maps), rng)(ctx)
            await idle(ctx)
            if round_ == 2:  # wiped: nothing to find
                await _pulse(ctx, dut.restart)
                ctx.set(dut.wipe, 1)
                for row in range(rows):
                    assert ctx.get(dut.wiping_last) == (row == rows - 1)
                    await ctx.tick()
                ctx.set(dut.wipe, 0)
                maps = {}
            assert await scan(ctx) == sorted(maps.items())
    _run(dut, bench)


@pytest.mark.parametrize("size", (3, 2))
def test_kernel_offsets_follow_torchsparse_order(size):
    dut = KernelOffsets()
    want = offsets(size)

    async def bench(ctx):
        ctx.set(dut.kernel3, size == 3)
        for stop in (5, len(want)):  # a restart part-way
            await _pulse(ctx, dut.restart)
            for o in range(stop):
                assert ctx.get(dut.offset) == o and tuple(ctx.get(dut.delta)) == want[o]
                assert ctx.get(dut.final) == (o == len(want) - 1)
                await _pulse(ctx, dut.step)
    _run(dut, bench)


@pytest.mark.parametrize("cfg", (CFG, CFG1), ids=("4 lanes", "1 lane"))
def test_fps_lane_keeps_running_minima_and_their_argmax(cfg):
    """Passes of distance rows (the stored minima fed back as the store would): the first
    pass takes the distances, later ones the smaller; the argmax goes to the lowest index
    on ties (values from a small range, so ties are common); idle cycles change nothing;
    ``seed`` names point 0."""
    rng, lanes, n = random.Random(cfg.lanes), cfg.lanes, cfg.capacity
    dut = FpsLane(cfg)

    async def bench(ctx):
        await _pulse(ctx, dut.seed)
        assert (ctx.get(dut.row), ctx.get(dut.lane)) == (0, 0)
        minima = [0] * n
        for p in range(4):
            ctx.set(dut.first, p == 0)
            await _pulse(ctx, dut.start)
            ctx.set(dut.first, 0)
            d2 = [rng.randrange(4) for _ in range(n)]
            for row in range(cfg.rows):
                count = min(lanes, n - row * lanes)
                ctx.set(dut.beat, {"data": {"d2": d2[row * lanes:][:lanes] + [0] * (lanes - count),
                                            "minima": minima[row * lanes:][:lanes]
                                            + [0] * (lanes - count)},
                                   "count": count, "row": row, "last": row == cfg.rows - 1})
                if rng.randrange(3) == 0:
                    await ctx.tick()  # not valid
                ctx.set(dut.valid, 1)
                new = list(ctx.get(dut.minima))[:count]
                await ctx.tick()
                ctx.set(dut.valid, 0)
                minima[row * lanes:row * lanes + count] = new
            minima_want = d2 if p == 0 else [min(a, b) for a, b in zip(d2, want_minima)]
            assert minima == minima_want
            want_minima = minima_want
            best = max(range(n), key=lambda i: (minima[i], -i))
            assert ctx.get(dut.row) * lanes + ctx.get(dut.lane) == best
    _run(dut, bench)


@pytest.mark.parametrize("cfg", (CFG, CFG1), ids=("4 lanes", "1 lane"))
def test_ball_hits_take_the_first_k_and_pad_with_the_first(cfg):
    """Per query: the hits (d2 < radius2) in index order until the k-th (``reached``),
    idle cycles counting nothing; then padding to k with the first hit (0 without one);
    k = 1, k = n, no hit at all, radius2 0 and above every distance."""
    rng, lanes, n = random.Random(cfg.lanes), cfg.lanes, cfg.capacity
    dut = BallHits(cfg)
    cases = [(1, 5), (n, 5), (n, 0), (3, cfg.max_dist2 + 1)] + \
        [(rng.randrange(1, n + 1), rng.randrange(cfg.max_dist2 + 2)) for _ in range(12)]

    async def bench(ctx):
        for k, radius2 in cases:
            ctx.set(dut.k, k)
            ctx.set(dut.radius2, radius2)
            await _pulse(ctx, dut.restart)
            d2 = [rng.randrange(12) for _ in range(n)]
            hits = [i for i in range(n) if d2[i] < radius2][:k]
            got = []
            for row in range(cfg.rows):
                ctx.set(dut.beat, {"data": {"d2": d2[row * lanes:][:lanes], "minima": [0] * lanes},
                                   "count": lanes, "row": row, "last": row == cfg.rows - 1})
                if rng.randrange(3) == 0:
                    await ctx.tick()  # not valid
                got += [row * lanes + j for j in range(lanes) if ctx.get(dut.take) >> j & 1]
                reached = ctx.get(dut.reached)
                assert reached == (len(got) >= k)
                await _pulse(ctx, dut.valid)
                if reached:
                    break
            assert got == hits
            while not ctx.get(dut.full):
                more = ctx.get(dut.more)
                assert more == (1 << min(lanes, k - len(got))) - 1
                got += [ctx.get(dut.fill)] * bin(more).count("1")
                await _pulse(ctx, dut.pad)
            assert got == hits + [hits[0] if hits else 0] * (k - len(hits))
    _run(dut, bench)
