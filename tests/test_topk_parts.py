"""The top-k engines' parts alone on the Amaranth simulator, each against a plain
Python model written here: the replay stage (hdl/topk.py ``Replayer``), the ingest view
and the float-key coder, the fast engine's stages (``Filter``, ``Refine``) and their
pipelined parts (histogram, threshold search, compactor), the quick-select engine's
``Pivot`` and ``Partition``, and both engines as components, under random valid/ready
stalls where a part has streams."""
import heapq
import math
import random

import pytest
from amaranth import Elaboratable, Module, Signal, unsigned
from amaranth.lib import data, memory
from amaranth.sim import Simulator

from accelgen.hdl.histogram import Histogram, ThresholdBin
from accelgen.hdl.lanes import BankedStore
from accelgen.hdl.pipeline_fast import Banks, Compactor
from accelgen.hdl.topk import Ingest, Replayer, item_layout
from accelgen.hdl.topk_fast import (FastEngine, FloatKey, Filter, Refine, digit_ends,
                                    key_width, refine_overhead, region_rows, score_steps,
                                    store_rows, stored_layout)
from accelgen.hdl.topk_quickselect import Partition, Pivot, QuickSelectEngine
from accelgen.params import TopkConfig

#: the fast subset that mutation testing runs (pyproject [tool.mutmut])
pytestmark = pytest.mark.mutation
KEY_WIDTH = 6


class _ReadsMemory(Elaboratable):
    """A part whose ``r_row`` reads a one-cycle-read memory of rows onto its ``r_data``
    (holding the row while the part's ``r_en``, if it has one, is low)."""

    def __init__(self, part, init):
        self.part, self.init = part, init

    def elaborate(self, platform):
        m = Module()
        m.submodules.part = part = self.part
        m.submodules.mem = mem = memory.Memory(shape=part.r_data.shape(), depth=len(self.init),
                                               init=self.init)
        port = mem.read_port(transparent_for=())
        m.d.comb += [port.addr.eq(part.r_row), port.en.eq(getattr(part, "r_en", 1)),
                     part.r_data.eq(port.data)]
        return m


def simulate(top, *benches, clock=True):
    sim = Simulator(top)
    if clock:
        sim.add_clock(1e-6)
    for bench in benches:
        sim.add_testbench(bench)
    sim.run()


def stored_rows(items, lanes, value=True):
    """(key, value, index) items as memory rows of item records (without the value: the
    fast engine's survivors)."""
    return [[{"key": k, "value": v, "index": i} if value else {"key": k, "index": i}
             for k, v, i in items[r:r + lanes]] for r in range(0, len(items), lanes)]


def _job(rng, items, lanes, rows_total):
    """A replay job on a random span of rows, with θ, mask and need picked from its keys;
    returns its parameters and the (index, value) pairs to send."""
    base = rng.randrange(rows_total)
    rows = rng.randrange(1, rows_total - base + 1)
    tail = rng.randrange(1, lanes + 1)
    span = [items[r * lanes + j] for r in range(base, base + rows)
            for j in range(lanes if r + 1 < base + rows else tail)]
    mask = rng.choice([(1 << KEY_WIDTH) - 1, 0b111000])
    theta = rng.choice(span)[0] & mask
    equal = [x for x in span if x[0] & mask == theta]
    need = rng.randrange(len(equal) + 1)
    kept, seen = [], 0
    for key, value, index in span:
        if key & mask > theta or (key & mask == theta and (seen := seen + 1) <= need):
            kept.append((index, value))
    # the engines hand over k_eff = (keys above θ) + need, so the job ends on its last keep
    return dict(base=base, rows=rows, tail=tail, k_eff=len(kept), theta=theta, mask=mask,
                need=need), kept


@pytest.mark.parametrize("lanes", (1, 3, 4))
def test_replayer_keeps_the_first_k_eff_qualifying_items_in_order(lanes):
    rng, rows_total = random.Random(lanes), 6
    cfg = TopkConfig(lanes=lanes, width=8, capacity=lanes * rows_total)
    items = [(rng.randrange(1 << KEY_WIDTH), rng.randrange(256), i)
             for i in range(lanes * rows_total)]
    replay = Replayer(cfg, KEY_WIDTH, rows_total)

    async def bench(ctx):
        for _ in range(40):
            params, want = _job(rng, items, lanes, rows_total)
            for name, value in params.items():
                ctx.set(getattr(replay, name), value)
            while ctx.get(replay.busy):
                await ctx.tick()
            ctx.set(replay.start, 1)
            await ctx.tick()
            ctx.set(replay.start, 0)
            got, last, cycles = [], False, 0
            while want and not last:
                ready = rng.random() < 0.5
                ctx.set(replay.o.ready, ready)
                beat = ctx.get(replay.o.payload)
                if ctx.get(replay.o.valid) and ready:
                    got += [(p.index, p.value) for p in list(beat.pairs)[:beat.count]]
                    last = bool(beat.last)
                await ctx.tick()
                cycles += 1
                assert cycles < 200, params
            ctx.set(replay.o.ready, 0)
            assert got == want, params
            for _ in range(3):  # nothing more for this job
                assert not ctx.get(replay.o.valid)
                await ctx.tick()

    simulate(_ReadsMemory(replay, stored_rows(items, lanes)), bench)


@pytest.mark.parametrize("lanes", (1, 4))
def test_replayer_overlaps_two_jobs(lanes):
    """Jobs started whenever ``ready`` (random gaps), the output taken under random
    stalls: every job's items, in job order, each job ending on ``last``; a second job
    is taken while the first is still in flight, and ``done`` comes once per job."""
    rng, rows_total = random.Random(10 + lanes), 6
    cfg = TopkConfig(lanes=lanes, width=8, capacity=lanes * rows_total)
    items = [(rng.randrange(1 << KEY_WIDTH), rng.randrange(256), i)
             for i in range(lanes * rows_total)]
    replay = Replayer(cfg, KEY_WIDTH, rows_total)
    jobs = [_job(rng, items, lanes, rows_total) for _ in range(60)]
    wanted = [want for params, want in jobs if params["k_eff"]]
    seen = {"overlapped": 0, "done": 0}

    async def producer(ctx):
        for params, _ in jobs:
            for name, value in params.items():
                ctx.set(getattr(replay, name), value)
            while rng.random() < 0.3:
                await ctx.tick()
            ctx.set(replay.start, 1)
            while not ctx.get(replay.ready):
                await ctx.tick()
            seen["overlapped"] += ctx.get(replay.busy)
            await ctx.tick()
            ctx.set(replay.start, 0)

    async def consumer(ctx):
        got, current = [], []
        for _ in range(3000):
            ready = rng.random() < 0.6
            ctx.set(replay.o.ready, ready)
            seen["done"] += ctx.get(replay.done)
            beat = ctx.get(replay.o.payload)
            if ctx.get(replay.o.valid) and ready:
                current += [(p.index, p.value) for p in list(beat.pairs)[:beat.count]]
                if beat.last:
                    got.append(current)
                    current = []
            await ctx.tick()
        assert got == wanted and not current
        assert not ctx.get(replay.busy) and seen["done"] == len(wanted)
        assert seen["overlapped"] > len(jobs) // 4

    simulate(_ReadsMemory(replay, stored_rows(items, lanes)), producer, consumer)


# ------------------------------------------------------------------ plain models
def float_key(u, width):
    """g(u): the bit length of u, then the bits below its leading one, left-aligned."""
    length = u.bit_length()
    return (length << (width - 1)) | ((u << (width - length)) & ((1 << (width - 1)) - 1))


def sort_key(cfg, score, floats):
    """The key an engine sorts ``score`` by: order key, g() for the fast engine,
    complemented for ``smallest``."""
    u = score + (1 << (cfg.width - 1)) if cfg.signed else score
    key, width = (float_key(u, cfg.width), key_width(cfg.width)) if floats else (u, cfg.width)
    return key ^ ((1 << width) - 1) if cfg.smallest else key


def beats(cfg, row, k):
    """A row as input beats of up to P scores."""
    chunks = [row[j:j + cfg.lanes] for j in range(0, len(row), cfg.lanes)]
    return [{"scores": chunk + [0] * (cfg.lanes - len(chunk)), "count": len(chunk), "k": k,
             "last": j + 1 == len(chunks)} for j, chunk in enumerate(chunks)]


def threshold_bin(hist, need):
    """The highest bin whose count with the counts above reaches ``need``, else 0."""
    total = 0
    for b in reversed(range(len(hist))):
        total += hist[b]
        if total >= need:
            return b
    return 0


def extent(count, lanes):
    """(rows, tail) of ``count`` items compacted P per row."""
    return math.ceil(count / lanes), count % lanes or lanes


def random_rows(cfg, rng, count):
    """Rows of 1 .. capacity + 3 scores (n not a multiple of P, and past capacity): random,
    all equal, two values; k = 0, 1, n, beyond n (as far as the k field holds), or
    random."""
    lo = -(1 << cfg.width - 1) if cfg.signed else 0
    hi = lo + (1 << cfg.width) - 1
    rows = []
    for r in range(count):
        n = rng.randint(1, cfg.capacity + 3)
        kind = r % 3
        values = ([lo, hi], [rng.randint(lo, hi)], range(lo, hi + 1))[2 - kind]
        row = [rng.choice(values) for _ in range(n)]
        k = rng.choice([0, 1, n, n + 3, rng.randint(1, n)])
        rows.append((row, min(k, (1 << cfg.k_width) - 1)))
    return rows


# ------------------------------------------------------------ combinational parts
@pytest.mark.parametrize("signed, smallest", [
    (False, False), (True, False), (True, True), (False, True)])
def test_ingest_marks_the_row_lanes_and_builds_their_items(signed, smallest):
    cfg = TopkConfig(lanes=3, width=5, capacity=10, signed=signed, smallest=smallest)
    dut = Ingest(cfg, 5)
    rng = random.Random(int(signed) + 2 * smallest)

    async def bench(ctx):
        for _ in range(300):
            beat = rng.choice(beats(cfg, [rng.randint(-16, 15) if signed else rng.randint(0, 31)
                                          for _ in range(rng.randint(1, 9))], 0))
            n = rng.randint(0, 10)
            ctx.set(dut.beat, beat)
            ctx.set(dut.n, n)
            assert ctx.get(dut.n_next) == min(n + beat["count"], 10)
            valid = ctx.get(dut.valid)
            for j, score in enumerate(beat["scores"]):
                assert (valid >> j) & 1 == (j < beat["count"] and n + j < 10)
                if j < beat["count"] and n + j < 10:
                    item = ctx.get(dut.items[j])
                    assert (item.key, item.value, item.index) == \
                        (sort_key(cfg, score, False), score, n + j)

    simulate(dut, bench, clock=False)


# ----------------------------------------------------------- quick-select parts
@pytest.mark.parametrize("lanes", (1, 4, 5))
def test_pivot_draws_a_lane_below_count_and_steps_its_lfsr_on_each_draw(lanes):
    """The drawn key shows from the second cycle after the draw until the next one's."""
    dut, rng = Pivot(8, lanes), random.Random(lanes)
    bits = max(1, (lanes - 1).bit_length())

    async def bench(ctx):
        lfsr, shown = 1, [0, 0]  # the pivot shown now and in the next cycle
        for _ in range(300):
            keys = [rng.randrange(256) for _ in range(lanes)]
            count, draw = rng.randint(1, lanes), rng.random() < 0.5
            ctx.set(dut.keys, keys)
            ctx.set(dut.count, count)
            ctx.set(dut.draw, draw)
            assert ctx.get(dut.pivot) == shown[0]
            await ctx.tick()
            lane = ((lfsr & ((1 << bits) - 1)) * count) >> bits
            assert lane < count
            shown = [shown[1], keys[lane] if draw else shown[1]]
            if draw:
                lfsr = (lfsr >> 1) ^ (0xB400 if lfsr & 1 else 0)

    simulate(dut, bench)


@pytest.mark.parametrize("lanes", (1, 3, 4, 8))
def test_partition_compacts_greater_and_less_lanes_in_order_and_counts(lanes):
    """Passes of random rows (each restarting G, L and the counts), then idle cycles:
    the counts show ``count_latency`` cycles after a row, the stores hold the greater
    and the less keys in order ``latency`` cycles after it."""
    rows = 5
    cfg = TopkConfig(lanes=lanes, width=3, capacity=lanes * rows)
    dut, rng = Partition(cfg, rows, groups=lanes), random.Random(lanes)

    async def bench(ctx):
        for _ in range(8):
            sides, counts, shown = ([], []), [0, 0], []
            pivot = rng.randrange(8)
            ctx.set(dut.pivot, pivot)
            for cycle in range(rng.randint(1, rows) + dut.latency):
                streaming = len(shown) < rows and cycle < rows and rng.random() < 0.8
                keys = [rng.randrange(8) for _ in range(lanes)]
                live = rng.randrange(1 << lanes) if streaming else 0
                ctx.set(dut.keys, keys)
                ctx.set(dut.live, live)
                ctx.set(dut.first, cycle == 0)
                for j, key in enumerate(keys):
                    if live >> j & 1:
                        counts[0] += key > pivot
                        counts[1] += key >= pivot
                        if key != pivot:
                            sides[key < pivot].append(key)
                shown.append(list(counts))
                if len(shown) > dut.count_latency:
                    assert [ctx.get(dut.gt), ctx.get(dut.ge)] == shown[-dut.count_latency - 1]
                await ctx.tick()
            ctx.set(dut.live, 0)
            ctx.set(dut.first, 0)
            for _ in range(dut.latency):
                await ctx.tick()
            assert [ctx.get(dut.gt), ctx.get(dut.ge)] == counts
            for side, want in enumerate(sides):
                ctx.set(dut.r_l, side)
                shown = (dut.l_rows, dut.l_tail) if side else (dut.g_rows, dut.g_tail)
                assert tuple(ctx.get(x) for x in shown) == extent(len(want), lanes)
                for r in range(math.ceil(len(want) / lanes)):
                    ctx.set(dut.r_row, [r] * lanes)
                    await ctx.tick().repeat(2)  # the read, then its register
                    got = list(ctx.get(dut.r_data))
                    assert got[:len(want) - r * lanes] == want[r * lanes:(r + 1) * lanes]

    simulate(dut, bench)


# ------------------------------------------------------------- fast engine stages
# ------------------------------------------------------------------- the engines
def selected(cfg, row, k):
    """The (index, value) pairs an engine returns: the k largest (``smallest``: k
    smallest) of the row's first ``capacity`` scores, ties to the lower index, in order."""
    row = row[:cfg.capacity]
    pick = heapq.nsmallest if cfg.smallest else heapq.nlargest
    sign = 1 if cfg.smallest else -1
    chosen = pick(k, range(len(row)), key=lambda i: (row[i], sign * i))
    return [(i, row[i]) for i in sorted(chosen)]


@pytest.mark.parametrize("engine", (FastEngine, QuickSelectEngine))
@pytest.mark.parametrize("signed, smallest", [(False, False), (True, True)])
def test_engine_streams_each_rows_selection_under_stalls(engine, signed, smallest):
    """Rows back to back on random valid/ready stalls; a row with k = 0 sends nothing.
    The fast engine runs signed rows with two survivor regions."""
    cfg = TopkConfig(lanes=3, width=8, capacity=10, signed=signed, smallest=smallest,
                     regions=2 if signed else 4)
    dut, rng = engine(cfg), random.Random(signed)
    rows = random_rows(cfg, rng, 20)
    want = [selected(cfg, row, k) for row, k in rows]

    async def source(ctx):
        for row, k in rows:
            for beat in beats(cfg, row, k):
                while rng.random() < 0.3:
                    await ctx.tick()
                ctx.set(dut.i.payload, beat)
                ctx.set(dut.i.valid, 1)
                await ctx.tick().until(dut.i.ready)
                ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        got, pairs = [], []
        for _ in range(3000):
            if len(got) == sum(map(bool, want)):
                break
            ready = rng.random() < 0.5
            ctx.set(dut.o.ready, ready)
            _, _, valid, beat = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                pairs += [(p.index, p.value) for p in list(beat.pairs)[:beat.count]]
                if beat.last:
                    got.append(pairs)
                    pairs = []
        assert got == [w for w in want if w]

    simulate(dut, source, sink)


# ======================================================= pipelined fast-engine parts
# (hdl/histogram.py, hdl/topk_fast.py rebuilt for timing: each registered stage a few
# LUT levels deep; the benches check their latencies cycle by cycle)
@pytest.mark.parametrize("lanes, bins, copies", ((1, 2, 1), (4, 16, 1), (5, 8, 1), (16, 64, 8),
                                                (3, 5, 2), (33, 32, 4)))
def test_histogram_suffix_counts_masked_lanes_latency_cycles_later(lanes, bins, copies):
    """at_least[b]: the masked lanes in bins b and above since the last clear, the bin
    ids a cycle ahead of their mask and clear (each copy of the bin ids carries the same
    ids; bins need not be a power of two)."""
    rng, hist = random.Random(bins), Histogram(lanes, bins, max_count=5000, copies=copies)
    assert hist.latency == {1: 2, 3: 2, 4: 2, 5: 3, 16: 3, 33: 4}[lanes]
    cycles = 150
    ids = [[rng.randrange(bins) for _ in range(lanes)] for _ in range(cycles + 1)]

    async def bench(ctx):
        counts, shown = [0] * bins, []
        ctx.set(hist.bin_ids, [ids[0]] * copies)
        await ctx.tick()
        for cycle in range(cycles):
            keep = [rng.random() < 0.6 for _ in range(lanes)]
            clear = rng.random() < 0.1
            ctx.set(hist.bin_ids, [ids[cycle + 1]] * copies)
            ctx.set(hist.mask, sum(k << i for i, k in enumerate(keep)))
            ctx.set(hist.clear, clear)
            counts = [0 if clear else c for c in counts]
            for ident, k in zip(ids[cycle], keep):
                counts[ident] += k
            shown.append([sum(counts[b:]) for b in range(bins)])
            await ctx.tick()
            if cycle + 1 >= hist.latency:
                assert list(ctx.get(hist.at_least)) == shown[cycle + 1 - hist.latency], cycle

    simulate(hist, bench)


@pytest.mark.parametrize("bins", (2, 5, 16, 64))
def test_threshold_bin_answers_each_cycles_query_latency_cycles_later(bins):
    rng = random.Random(bins)
    tb = ThresholdBin(data.ArrayLayout(unsigned(8), bins), need_width=9)
    assert tb.latency == 3

    async def bench(ctx):
        asked = []
        for cycle in range(300):
            # the counts of one row: their total fits a count
            counts = [rng.choice([0, 0, rng.randrange(1, 255 // bins + 1)]) for _ in range(bins)]
            need = rng.randrange(0, sum(counts) + 3)
            suffix = [sum(counts[b:]) for b in range(bins + 1)]
            ctx.set(tb.at_least, suffix[:bins])
            ctx.set(tb.need, need)
            answer = threshold_bin(counts, need)
            asked.append((answer, suffix[answer + 1], int(suffix[answer] == need)))
            await ctx.tick()
            if cycle + 1 >= tb.latency:
                got = (ctx.get(tb.bin), ctx.get(tb.above), ctx.get(tb.exact))
                assert got == asked[cycle + 1 - tb.latency], cycle

    simulate(tb, bench)


@pytest.mark.parametrize("width", (1, 2, 5, 8))
def test_float_key_codes_each_cycles_score_latency_cycles_later(width):
    dut = FloatKey(width)

    async def bench(ctx):
        sent = list(range(1 << width)) + [random.Random(width).randrange(1 << width)
                                           for _ in range(50)]
        for cycle, u in enumerate(sent):
            ctx.set(dut.u, u)
            await ctx.tick()
            if cycle + 1 >= FloatKey.latency:
                want = sent[cycle + 1 - FloatKey.latency]
                assert ctx.get(dut.key) == float_key(want, width), want

    simulate(dut, bench)


@pytest.mark.parametrize("width, signed, smallest", [
    (1, False, False), (2, True, False), (5, False, True), (8, True, True), (16, True, False)])
def test_score_steps_rebuild_every_score_from_its_stored_key(width, signed, smallest):
    """The fast engine stores a survivor's float key, not its score: the replay's two
    steps give the score back (every score; 2,000 random ones at 16 bits)."""
    cfg = TopkConfig(lanes=2, width=width, capacity=4, signed=signed, smallest=smallest)
    item, score = Signal(stored_layout(cfg)), Signal(width)
    coarse, fine = score_steps(cfg)
    m = Module()
    m.d.comb += score.eq(fine(coarse(item)))
    low = -(1 << (width - 1)) if signed else 0
    scores = list(range(low, low + (1 << width)))
    if width > 8:
        scores = random.Random(width).sample(scores, 2000)

    async def bench(ctx):
        for s in scores:
            ctx.set(item.key, sort_key(cfg, s, True))
            assert ctx.get(score) == s & ((1 << width) - 1), s

    simulate(m, bench, clock=False)


@pytest.mark.parametrize("lanes", (1, 3, 4, 5, 16))
def test_compactor_writes_kept_lanes_in_order_across_banks(lanes):
    """Random masks (none in some cycles) and restarts: every write lands at the
    pointer's next positions (bank q mod P, row base + q div P), latency cycles after
    its group; the extent shows three cycles after."""
    rng, rows = random.Random(lanes), 8
    dut = Compactor(unsigned(8), lanes, rows * 2)

    async def bench(ctx):
        pending, extents, count, base = [], [], 0, 0
        banks = {}
        for cycle in range(300):
            idle = rng.random() < 0.3
            restart = rng.random() < 0.1 or count > (rows - 1) * lanes  # stay in the region
            items = [rng.randrange(256) for _ in range(lanes)]
            keep = [rng.random() < 0.5 and not idle for _ in range(lanes)]
            if restart:
                count, base = 0, rng.randrange(rows)
            ctx.set(dut.items, items)
            ctx.set(dut.mask, sum(k << j for j, k in enumerate(keep)))
            ctx.set(dut.restart, restart)
            ctx.set(dut.base, base)
            writes = {}
            for item in [x for x, k in zip(items, keep) if k]:
                writes[count % lanes] = (base + count // lanes, item)
                count += 1
            pending.append(writes)
            extents.append((math.ceil(count / lanes), count % lanes or lanes))
            await ctx.tick()
            done = cycle + 1 - dut.latency
            if done >= 0:
                en = ctx.get(dut.en)
                got = {b: (ctx.get(dut.addr[b]), ctx.get(dut.data[b]))
                       for b in range(lanes) if en >> b & 1}
                assert got == pending[done], cycle
            if cycle + 1 >= dut.extent_latency:
                assert (ctx.get(dut.rows), ctx.get(dut.tail)) == \
                    extents[cycle + 1 - dut.extent_latency], cycle

    simulate(dut, bench)


class _FilterAndStore(Elaboratable):
    """Stage 1 writing a survivor store that the bench reads."""

    def __init__(self, cfg):
        self.filter = Filter(cfg)
        self.store = Banks(stored_layout(cfg), cfg.lanes, store_rows(cfg), 1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.filter, m.submodules.store = stage, store = self.filter, self.store
        m.d.comb += [getattr(store, p).eq(getattr(stage, p)) for p in ("en", "addr", "data")]
        return m


def filtered(cfg, row, k):
    """Stage 1's survivors of ``row`` and job: a beat
    is filtered against the threshold bin for k of the row's beats before it (bin 0 for
    its first beat); θ's first digit and ``need`` come from the whole row."""
    kw, ends = key_width(cfg.width), digit_ends(cfg.width)
    items = [(sort_key(cfg, s, True), s, i) for i, s in enumerate(row[:cfg.capacity])]
    lanes, hist, survivors = cfg.lanes, [0] * (1 << ends[0]), []
    for b in range(math.ceil(len(items) / lanes)):
        early = items[:b * lanes]
        counts = [0] * len(hist)
        for key, _, _ in early:
            counts[key >> (kw - ends[0])] += 1
        bound = threshold_bin(counts, k) if b else 0
        survivors += [x for x in items[b * lanes:(b + 1) * lanes]
                      if x[0] >> (kw - ends[0]) >= bound]
    for key, _, _ in items:
        hist[key >> (kw - ends[0])] += 1
    k_eff = min(k, len(items))
    theta = threshold_bin(hist, k_eff)
    need = k_eff - sum(hist[theta + 1:])
    rows, tail = extent(len(survivors), lanes)
    job = dict(rows=rows, tail=tail, k_eff=k_eff, theta=theta << (kw - ends[0]), level=0,
               need=need % (1 << cfg.k_width))
    return survivors, job, hist[theta] == need or len(ends) == 1


@pytest.mark.parametrize("width, signed, smallest, regions", [
    (8, False, False, 4), (8, True, True, 2), (4, False, False, 3)])
def test_filter_writes_the_lagging_bound_survivors_and_queues_the_rows_first_digit(
        width, signed, smallest, regions):
    """Random stalls on both streams and on the region's ``free``; the bench frees a
    region once it has read the row's survivors back (4-bit scores: one-digit keys).
    A row starts only while at most one job waits."""
    cfg = TopkConfig(lanes=3, width=width, capacity=10, signed=signed, smallest=smallest,
                     regions=regions)
    top, rng = _FilterAndStore(cfg), random.Random(width + signed)
    dut, store, rr = top.filter, top.store, region_rows(cfg)
    rows = random_rows(cfg, rng, 24)
    sequence = [(r, b, beat) for r, (row, k) in enumerate(rows)
                for b, beat in enumerate(beats(cfg, row, k))]

    async def bench(ctx):
        cycles, in_use, reads, taken, cycle = [[] for _ in rows], [False] * regions, [], 0, 0
        while taken < len(rows) or reads:
            assert cycle < 2000
            pending = sequence[len(sum(cycles, [])):][:1]
            valid, ready = bool(pending) and rng.random() < 0.7, rng.random() < 0.6
            if pending:
                ctx.set(dut.i.payload, pending[0][2])
            ctx.set(dut.i.valid, valid)
            ctx.set(dut.o.ready, ready)
            region = ctx.get(dut.region)
            free = not in_use[region] and rng.random() < 0.8
            ctx.set(dut.free, free)
            read = reads.pop(0) if reads else None
            if read:
                ctx.set(store.r_row[0], [read[0]])
            accept = valid and ctx.get(dut.i.ready)
            starts = accept and pending[0][1] == 0
            assert ctx.get(dut.claim) == starts
            assert free or not (pending and pending[0][1] == 0 and ctx.get(dut.i.ready))
            if starts:
                in_use[region] = True
            if accept:
                cycles[pending[0][0]].append(cycle)
            if ctx.get(dut.o.valid) and ready:
                got = ctx.get(dut.o.payload)
                survivors, job, resolved = filtered(cfg, *rows[taken])
                assert {f: getattr(got.job, f) for f in job} == job, taken
                assert (got.job.region, got.resolved) == (taken % regions, resolved), taken
                base = (taken % regions) * rr
                reads += [(base + r, taken % regions, survivors[r * cfg.lanes:(r + 1) * cfg.lanes],
                           r + 1 == job["rows"]) for r in range(job["rows"] if survivors else 0)]
                in_use[taken % regions] = bool(survivors)
                taken += 1
            await ctx.tick()
            cycle += 1
            if read:
                got = [(x.key, x.index) for x in ctx.get(store.r_data[0])]
                assert got[:len(read[2])] == [(key, index) for key, _, index in read[2]]
                in_use[read[1]] = not read[3]

    simulate(top, bench)


def refined(keys, k_eff, width):
    """Per level: θ (the k_eff-th largest key in the level's digits), how many keys equal
    to it to keep, and how many there are."""
    kw, kth = key_width(width), sorted(keys, reverse=True)[k_eff - 1]
    levels = []
    for end in digit_ends(width):
        mask = ((1 << end) - 1) << (kw - end)
        theta = kth & mask
        levels.append((theta, k_eff - sum(key & mask > theta for key in keys),
                       sum(key & mask == theta for key in keys)))
    return levels


@pytest.mark.parametrize("stalls", (False, True))
def test_refine_resolves_theta_one_digit_per_pipelined_pass_over_the_survivors(stalls):
    """20-bit keys sharing 0 .. 18 top bits (every level is reached); without stalls the
    job is offered 1 + passes * (rows + refine_overhead) (+ 2 after any pass) cycles
    after it is taken."""
    cfg = TopkConfig(lanes=3, width=16, capacity=12)
    lanes, rr, kw = cfg.lanes, region_rows(cfg), key_width(cfg.width)
    rng = random.Random(stalls)
    items = []
    for _ in range(cfg.regions):  # the regions
        span = 1 << rng.choice([2, 7, 13, 20])
        start = rng.randrange((1 << kw) - span + 1)
        items += [(start + rng.randrange(span), rng.randrange(1 << 16), i)
                  for i in range(rr * lanes)]
    dut = Refine(cfg)

    async def bench(ctx):
        for _ in range(30):
            region, rows, tail = rng.randrange(cfg.regions), rng.randint(1, rr), rng.randint(1, lanes)
            first = region * rr * lanes
            keys = [key for key, _, _ in items[first:first + (rows - 1) * lanes + tail]]
            k_eff = rng.randint(1, len(keys))
            levels = refined(keys, k_eff, cfg.width)
            theta, need, inside = levels[0]
            resolved = inside == need
            level = 0 if resolved else next(lv for lv, (_, need_, inside_) in enumerate(levels)
                                            if lv and (inside_ == need_ or lv + 1 == len(levels)))
            job = dict(region=region, rows=rows, tail=tail, k_eff=k_eff, theta=theta, level=0,
                       need=need)
            while stalls and rng.random() < 0.5:
                await ctx.tick()
            ctx.set(dut.i.payload, {"job": job, "resolved": resolved})
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            latency = 1
            while True:
                ready = not stalls or rng.random() < 0.4
                ctx.set(dut.o.ready, ready)
                if ctx.get(dut.o.valid) and ready:
                    break
                assert not ctx.get(dut.i.ready)
                latency += 1
                await ctx.tick()
            got = ctx.get(dut.o.payload)
            want = dict(job, theta=levels[level][0], level=level, need=levels[level][1])
            assert {f: getattr(got, f) for f in want} == want
            if not stalls:
                assert latency == 1 + level * (rows + refine_overhead(lanes)) + 2 * (level > 0)
            await ctx.tick()
            ctx.set(dut.o.ready, 0)

    simulate(_ReadsMemory(dut, stored_rows(items, lanes, value=False)), bench)
