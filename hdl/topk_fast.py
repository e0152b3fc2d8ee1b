"""Our top-k engine (``engine: fast``): filter while streaming, refine on survivors,
rows pipelined over three stages.

Sort key: the score as an order-preserving unsigned number u (sign bit flipped if
signed), re-coded as a small float g(u) = (bit length e of u, the bits below its
leading one, left-aligned): a bijection that keeps the order, so radix digits of g
give log-scaled bins (attention probabilities crowd near zero) and fine bins near the
top (uniform scores). Digits: the top min(6, G) bits of the G-bit key, then 6 bits at a
time.

Stage 1 (:class:`Filter`: ingest, one beat per cycle): a 64-bin histogram of the first
digit counts the row so far; the highest bin whose count plus the counts above it reach
k is a lower bound of the k-th largest value of the prefix, hence of the row (papers.md:
θ of a prefix never exceeds θ of the row). Lanes in lower bins are dropped at once; the
rest (survivors) are compacted, with their indices, into the row's region of the
survivor store. At the row's end the exact histogram gives θ's first digit and how many
of its bin are needed. One cycle later the row moves to stage 2 and the next row may
stream into the next region (``regions`` regions rotate, four by default: one row in
each of stages 1 and 2, two in the replay).

Stage 2 (:class:`Refine`): while the needed elements are not all of θ's bin, one pass
over the survivors histograms the next digit of those matching θ's digits so far
(rows + 7 cycles at P = 16, the next pass starting 2 cycles before the answer), fixing
one more digit.

Stage 3 (replay, :class:`hdl.topk.Replayer`): the survivors in order; a key whose
resolved digits exceed θ's is kept, and of those equal, the first ``need``; the next
row's replay starts right behind this one's last survivor row.
"""
from __future__ import annotations

import math

from amaranth import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.topk import TopkConfig

from .histogram import Histogram, ThresholdBin, histogram_latency
from .lanes import RowReader, address_groups, pick
from .pipeline_fast import Banks, Compactor, compactor_latency, delay, registered
from .topk import Ingest, Replayer, input_layout, order_key, stream_ports

DIGIT = 6


def key_width(width: int) -> int:
    """Bits of g(u) for ``width``-bit scores: the bit length (0..width), then width-1."""
    return width.bit_length() + width - 1


def digit_ends(width: int) -> list[int]:
    """Key bits resolved after each level (from the top): first min(6, G), then +6."""
    g = key_width(width)
    ends = [min(DIGIT, g)]
    while ends[-1] < g:
        ends.append(min(ends[-1] + DIGIT, g))
    return ends


def digit(key, level: int, width: int):
    """Bits of digit ``level`` (0-based) of the key of a ``width``-bit score."""
    kw, ends = key_width(width), digit_ends(width)
    return key[kw - ends[level]:kw - (ends[level - 1] if level else 0)]


def level_mask(level, width: int):
    """The key bits of the digits 0..``level``."""
    kw = key_width(width)
    return pick(level, [((1 << end) - 1) << (kw - end) for end in digit_ends(width)])


def region_rows(cfg: TopkConfig) -> int:
    return math.ceil(cfg.capacity / cfg.lanes)


def region_base(region, rows: int, regions: int):
    """The first store row of ``region`` (``regions`` regions of ``rows`` rows each)."""
    return Array(Const(r * rows) for r in range(regions))[region]


def next_region(region, regions: int):
    """The region after ``region`` (they rotate)."""
    return Mux(region == regions - 1, 0, region + 1)


def job_layout(cfg: TopkConfig) -> data.StructLayout:
    """A row between the stages: its survivor region and their extent (``rows``, ``tail``
    valid lanes in the final one), k_eff, θ with its digits 0..``level`` resolved (the
    rest 0), and ``need``, how many keys equal to θ in those digits to keep."""
    levels = len(digit_ends(cfg.width))
    return data.StructLayout({
        "region": range(cfg.regions), "rows": range(region_rows(cfg) + 1),
        "tail": range(cfg.lanes + 1), "k_eff": unsigned(cfg.k_width),
        "theta": unsigned(key_width(cfg.width)), "level": range(max(2, levels)),
        "need": unsigned(cfg.k_width)})


def filtered_layout(cfg: TopkConfig) -> data.StructLayout:
    """Stage 1's hand-off: the job at level 0, and whether θ is already ``resolved``."""
    return data.StructLayout({"job": job_layout(cfg), "resolved": unsigned(1)})


def stored_layout(cfg: TopkConfig) -> data.StructLayout:
    """A survivor in the store: its float key and its index (the key is a bijection of
    the score, which the replay rebuilds from it: :func:`score_steps`)."""
    return data.StructLayout({"key": unsigned(key_width(cfg.width)),
                              "index": unsigned(cfg.index_width)})


def score_steps(cfg: TopkConfig) -> tuple:
    """The score of a stored survivor from its float key g(u) (u: the order key,
    complemented for ``smallest``), in two steps for the replay's stages: the leading one
    restored and shifted left by the bit length's upper bits; then by its two low bits,
    which leaves u in the upper half, and u turned back into the score (bit flips)."""
    w = cfg.width

    def coarse(item):
        key = item.key ^ ((1 << key_width(w)) - 1) if cfg.smallest else item.key
        length = key[w - 1:]
        # the normalized u (its leading one on top) with three zeros below it, shifted
        # by 4 x length[2:]; the fine shift (0..3) then brings u to bits w+3 .. 2w+3
        padded = Cat(Const(0, 3), key[:w - 1], Const(1, 1), Const(0, w))
        return Cat((padded << (length[2:] << 2))[w:2 * w + 3], length[:2])

    def fine(part):
        u = (part[:w + 3] << part[w + 3:])[3:w + 3]
        return order_key(cfg, u)

    return coarse, fine


def store_rows(cfg: TopkConfig) -> int:
    """Rows of the survivor store's regions (no zero-width addresses)."""
    return max(2, cfg.regions * region_rows(cfg))


class FloatKey(wiring.Component):
    """g(u): the bit length of ``u``, then the bits below its leading one, left-aligned
    (``key``); ``top``: the key's first digit (its top ``min(6, G)`` bits) a cycle
    early, unregistered.

    Registered stages: the leading zeros of ``u`` (a balanced tree over halves), with
    ``u``; ``u`` shifted left by the leading zeros' upper bits; then by their two low
    bits, with the bit length. ``key`` follows ``u`` by ``latency`` = 3 cycles.
    """

    latency = 3

    def __init__(self, width: int):
        self.width = width
        super().__init__({"u": In(width), "key": Out(key_width(width)),
                          "top": Out(digit_ends(width)[0])})

    def elaborate(self, platform):
        m = Module()
        width = self.width
        u, zeros = registered(m, [self.u, leading_zeros(self.u)], "float")
        coarse, zeros = registered(m, [(u << (zeros[2:] << 2))[:width], zeros], "coarse")
        norm = (coarse << zeros[:2])[:width]
        key = Cat(norm[:width - 1], (width - zeros)[:len(self.key) - width + 1])
        m.d.sync += self.key.eq(key)
        m.d.comb += self.top.eq(digit(key, 0, width))
        return m


def leading_zeros(bits):
    """The count of zeros above the highest set bit of ``bits`` (all of them if none):
    a balanced tree, each node choosing between its halves."""
    def count(lo: int, hi: int):  # (any set, zeros) of bits[lo:hi]
        if hi - lo == 1:
            return bits[lo], ~bits[lo]
        mid = (lo + hi) // 2
        (low_any, low_zeros), (high_any, high_zeros) = count(lo, mid), count(mid, hi)
        return low_any | high_any, Mux(high_any, high_zeros, (hi - mid) + low_zeros)
    return count(0, len(bits))[1]


class S2(enum.Enum, shape=2):
    IDLE = 0
    PASS = 1
    HAND = 2


def filter_latency(lanes: int) -> int:
    """Cycles from a row's final beat to its job at the head of stage 1's queue: the
    beat's survivors are written (the threshold search on the full histogram is done
    before)."""
    return 4 + FloatKey.latency + histogram_latency(lanes) + compactor_latency(lanes)


class Filter(wiring.Component):
    """Stage 1: ingests rows from ``i`` into the survivor store (``en``, ``addr``,
    ``data``: writes of the current region ``region``) and offers their jobs on ``o``.

    One beat per cycle. A row's first beat pulses ``claim`` and is taken while the
    region is ``free`` (out of use downstream) and at most one job of stage 1 is not
    yet taken, so a row streams while its predecessor's job is found. A beat
    accepted in cycle t is filtered against the threshold bin for k of its row's
    beats accepted before it (bin 0 for its first beat): the highest bin of the first key digit whose count with the counts above
    reaches k. Lanes in lower bins are dropped, the rest written compacted from the
    region's first row. A row's job (θ's first digit and ``need`` from its full
    histogram; ``resolved``: θ's bin holds exactly the keys needed, or the key is one
    digit) is offered :func:`filter_latency` cycles after its final beat, through a
    queue of two; the region moves on with the final beat (``moving`` pulses).

    Registered stages of a beat: its lanes (position, order key); the float key (two, :class:`FloatKey`); the histogram's input
    (:class:`hdl.histogram.Histogram`), then the beat waits for the bound from the
    threshold search on the histogram (:class:`hdl.histogram.ThresholdBin`) of the
    beats before it; the survivors; the compaction (:class:`Compactor`).
    """

    def __init__(self, cfg: TopkConfig):
        self.cfg, lanes = cfg, cfg.lanes
        super().__init__({
            "i": In(stream.Signature(input_layout(cfg))),
            "o": Out(stream.Signature(filtered_layout(cfg))),
            "region": Out(range(cfg.regions)), "claim": Out(1), "moving": Out(1), "free": In(1),
            "en": Out(lanes), "addr": Out(data.ArrayLayout(range(store_rows(cfg)), lanes)),
            "data": Out(data.ArrayLayout(stored_layout(cfg), lanes))})

    def elaborate(self, platform):
        m = Module()
        cfg, lanes, rr = self.cfg, self.cfg.lanes, region_rows(self.cfg)
        kw, ends = key_width(cfg.width), digit_ends(cfg.width)
        nbins = 1 << ends[0]  # the widest digit is the first
        # accept: a row starts while its region is free and at most one job waits
        in_row, jobs = Signal(), Signal(range(3))
        accept, ended, taken = Signal(), Signal(), Signal()
        beat = self.i.payload
        m.d.comb += [self.i.ready.eq(in_row | (self.free & (jobs < 2))),
                     accept.eq(self.i.valid & self.i.ready), self.claim.eq(accept & ~in_row),
                     ended.eq(accept & beat.last), taken.eq(self.o.valid & self.o.ready),
                     self.moving.eq(ended)]
        m.d.sync += jobs.eq(jobs + ended - taken)
        with m.If(accept):
            m.d.sync += in_row.eq(~beat.last)
        with m.If(ended):
            m.d.sync += self.region.eq(next_region(self.region, cfg.regions))
        tag = data.StructLayout({"valid": 1, "first": 1, "last": 1, "bound": 1,
                                 "region": range(cfg.regions)})
        tag_in = Signal(tag)
        m.d.comb += tag_in.eq(Cat(accept, self.claim, beat.last, in_row, self.region))
        # the beat's lanes: the position counts the row's lanes so far
        m.submodules.ingest = ingest = Ingest(cfg, cfg.width)
        pos, k = Signal(range(cfg.capacity + 1)), Signal(cfg.k_width)
        m.d.comb += [ingest.beat.eq(beat), ingest.n.eq(Mux(in_row, pos, 0))]
        with m.If(accept):
            m.d.sync += pos.eq(ingest.n_next)
        with m.If(self.claim):
            m.d.sync += k.eq(beat.k)
        # the float key codes the order key (complemented after it for smallest)
        lanes_i = registered(m, [Cat(order_key(cfg, x.value), x.index) for x in ingest.items],
                             "lane")
        valid_i, tag_i, n_i = registered(m, [ingest.valid, tag_in, ingest.n_next], "ingest")
        tag_i = tag(tag_i)
        live_i = Cat(valid_i[j] & tag_i.valid for j in range(lanes))
        k_eff = registered(m, [Mux(k < n_i, k, n_i)], "k_eff")[0]
        keys = []
        for j, x in enumerate(lanes_i):
            m.submodules[f"key{j}"] = coder = FloatKey(cfg.width)
            m.d.comb += coder.u.eq(x[:cfg.width])
            keys.append(coder.key ^ ((1 << kw) - 1) if cfg.smallest else coder.key)
        late = FloatKey.latency
        live_k, tag_k = delay(m, live_i, late, "live"), tag(delay(m, tag_i, late, "tag"))
        rest = [delay(m, x[cfg.width:], late, f"rest{j}") for j, x in enumerate(lanes_i)]
        k_eff = delay(m, k_eff, late - 1, "k_eff")

        # the histogram of the first digit and the running bound
        m.submodules.histogram = hist = Histogram(lanes, nbins, cfg.capacity)
        m.submodules.threshold = tb = ThresholdBin(hist.at_least.shape(), cfg.k_width)
        # (the bin ids a cycle ahead of the keys, as the histogram takes them)
        m.d.comb += [hist.bin_ids[0][j].eq(m.submodules[f"key{j}"].top ^ (
            (1 << len(hist.bin_ids[0][j])) - 1 if cfg.smallest else 0)) for j in range(lanes)]
        m.d.comb += [hist.mask.eq(live_k),
                     hist.clear.eq(tag_k.valid & tag_k.first)]
        final = tag_k.valid & tag_k.last
        ask = delay(m, Cat(final, k_eff[:len(k)], tag_k.region), hist.latency, "ask")
        # a beat's bound is asked hist.latency + late - 1 cycles after its k shows: the
        # row's k then (a next row may have set its own since; a first beat asks nothing)
        m.d.comb += [tb.at_least.eq(hist.at_least),
                     tb.need.eq(Mux(ask[0], ask[1:1 + len(k)],
                                    delay(m, k, hist.latency + late - 1, "k")))]
        # the beat waits for the bound from the beats of its row before it
        wait = hist.latency + tb.latency - 1
        live_w, tag_w = delay(m, live_k, wait, "live_w"), tag(delay(m, tag_k, wait, "tag_w"))
        items = [delay(m, Cat(key, x), wait, f"item{j}_w") for j, (key, x) in enumerate(zip(keys, rest))]
        bound = Mux(tag_w.bound, tb.bin, 0)
        survive = Cat(live_w[j] & (digit(x[:kw], 0, cfg.width) >= bound) for j, x in enumerate(items))

        m.submodules.compactor = comp = Compactor(stored_layout(cfg), lanes, store_rows(cfg))
        (survive, items, tag_s) = registered(m, [survive, Cat(items), tag_w], "survive")
        tag_s = tag(tag_s)
        m.d.comb += [comp.items.eq(items), comp.mask.eq(survive),
                     comp.restart.eq(tag_s.valid & tag_s.first),
                     comp.base.eq(region_base(tag_s.region, rr, cfg.regions)),
                     self.en.eq(comp.en), self.addr.eq(comp.addr), self.data.eq(comp.data)]
        # the job is queued once the final beat's survivors are written (the answer for
        # it comes Compactor.latency - 1 cycles before, its extent later)
        answered = Cat(delay(m, ask, tb.latency, "asked"), tb.bin, tb.above, tb.exact)
        answer = delay(m, answered, comp.latency - 1, "answer")
        extent = comp.latency - 1 - comp.extent_latency
        rows, tail = delay(m, comp.rows, extent, "rows"), delay(m, comp.tail, extent, "tail")
        m.submodules.jobs = queue = fifo.SyncFIFO(width=len(self.o.payload.as_value()), depth=2)
        fields = data.StructLayout({"final": 1, "k_eff": len(k), "region": range(cfg.regions),
                                    "bin": len(tb.bin), "above": len(tb.above), "exact": 1})
        answer, job = fields(answer), Signal(filtered_layout(cfg))
        m.d.comb += [job.job.region.eq(answer.region), job.job.rows.eq(rows),
                     job.job.tail.eq(tail), job.job.k_eff.eq(answer.k_eff),
                     job.job.theta.eq(answer.bin << (kw - ends[0])), job.job.level.eq(0),
                     job.job.need.eq(answer.k_eff - answer.above),
                     job.resolved.eq(answer.exact | (len(ends) == 1)),
                     queue.w_data.eq(job), queue.w_en.eq(answer.final),
                     self.o.payload.eq(queue.r_data), self.o.valid.eq(queue.r_rdy),
                     queue.r_en.eq(self.o.ready)]
        return m


def refine_overhead(lanes: int) -> int:
    """Cycles of a refinement pass beyond one per survivor row (the last pass takes 2
    more)."""
    return 1 + histogram_latency(lanes) + ThresholdBin.latency


class Refine(wiring.Component):
    """Stage 2: takes a job on ``i`` (ready while idle, or as the last job is taken from
    ``o``) and resolves θ's further digits, then offers the job on ``o``.

    A resolved job is offered from the next cycle. Otherwise each pass reads the
    region's survivors in order (``r_row``; the row arrives on ``r_data`` one cycle
    later) and histograms the next digit of the keys equal to θ in its digits so far,
    after which θ has one digit more and ``need`` counts the keys equal to it still to
    keep. Passes end when the keys equal to θ are exactly those needed, or at the last
    digit. A pass takes rows + :func:`refine_overhead` cycles, the last 2 more (the job
    is offered from registers, in the cycle after its answer): the next pass starts
    reading two cycles before the answer of the last, which its rows meet when they are
    matched (they are ignored if it ends the passes).

    Registered stages of a row: its address; the read data; per lane, whether the key
    matches θ and its next digit; the histogram (:class:`hdl.histogram.Histogram`);
    after the pass's final row, the threshold search
    (:class:`hdl.histogram.ThresholdBin`); the job's next θ and ``need``.
    """

    def __init__(self, cfg: TopkConfig):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(filtered_layout(cfg))),
            "o": Out(stream.Signature(job_layout(cfg))),
            "r_row": Out(range(store_rows(cfg))),
            "r_data": In(data.ArrayLayout(stored_layout(cfg), cfg.lanes))})

    def elaborate(self, platform):
        m = Module()
        cfg, lanes, rr = self.cfg, self.cfg.lanes, region_rows(self.cfg)
        kw, ends = key_width(cfg.width), digit_ends(cfg.width)
        levels = len(ends)
        nbins = 1 << ends[0]
        state = Signal(S2)
        job = Signal(job_layout(cfg))
        m.submodules.reader = reader = RowReader(lanes, rr)
        m.d.comb += [reader.rows.eq(job.rows), reader.tail.eq(job.tail),
                     reader.go.eq(state == S2.PASS),
                     self.r_row.eq(region_base(job.region, rr, cfg.regions) + reader.row)]
        # the row read: registered, then matched and its next digit picked
        rows, live, first = registered(m, [self.r_data, reader.live, reader.first], "read")
        rows = self.r_data.shape()(rows)
        # (digit by digit, the level's digits, and the lane's liveness)
        next_level = [min(lv + 1, levels - 1) for lv in range(levels)]
        match = registered(m, [Cat((job.level < lv) | (digit(x.key, lv, cfg.width)
                                                       == digit(job.theta, lv, cfg.width))
                                   for lv in range(1, levels)).all()
                               & (digit(x.key, 0, cfg.width) == digit(job.theta, 0, cfg.width))
                               & live[j] for j, x in enumerate(rows)], "match")
        # (the histogram decodes each copy of a bin id into registers of its own, one
        # copy per group of its bins: one register per lane reaching all 64 bins'
        # decoders was the routed critical path, 8 to 19 ns of wire)
        copies = -(-nbins // Histogram.GROUP)
        m.submodules.histogram = hist = Histogram(lanes, nbins, cfg.capacity, copies)
        m.submodules.threshold = tb = ThresholdBin(hist.at_least.shape(), cfg.k_width)
        for j, x in enumerate(rows):
            bin_id = pick(job.level, [digit(x.key, lv, cfg.width) for lv in next_level])
            m.d.comb += [hist.bin_ids[c][j].eq(bin_id) for c in range(copies)]
        m.d.comb += [hist.mask.eq(Cat(match)),
                     hist.clear.eq(delay(m, first, 1, "clear")),
                     tb.at_least.eq(hist.at_least), tb.need.eq(job.need)]
        # the pass's final row (issued in the cycle the reader reaches its last row) is
        # answered `wait` cycles later; the next pass starts reading 2 cycles before
        wait = 3 + hist.latency + tb.latency
        final, finals = reader.issue & (reader.row + 1 == job.rows), Signal(wait)
        answer, ends_passes = finals[-1] & (state == S2.PASS), Signal()
        # (the next pass's reads are dropped when the passes end)
        m.d.sync += finals.eq(Mux(ends_passes, 0, Cat(final, finals[:-1])))
        m.d.comb += reader.clear.eq(ends_passes | (finals[-3] & (state == S2.PASS)))
        next_digit_shift = Signal(range(kw + 1))
        m.d.comb += next_digit_shift.eq(pick(job.level, [kw - ends[lv] for lv in next_level]))

        # the answer gives θ a digit more; the job leaves with the pass's answer when it
        # ends the passes (or waits for `o` in HAND); a job is taken while idle or as the
        # last one leaves
        # (whether the job's next digit is its last: a register, set with the job)
        refined, taken, last_digit = Signal.like(job), self.i.valid & self.i.ready, Signal()
        m.d.comb += [refined.eq(job), refined.theta.eq(job.theta | (tb.bin << next_digit_shift)),
                     refined.need.eq(job.need - tb.above), refined.level.eq(job.level + 1),
                     ends_passes.eq(answer & (tb.exact | last_digit))]
        m.d.comb += [self.o.valid.eq(state == S2.HAND), self.o.payload.eq(job),
                     self.i.ready.eq((state == S2.IDLE) | (self.o.valid & self.o.ready))]
        with m.Switch(state):
            with m.Case(S2.PASS):
                with m.If(answer):
                    m.d.sync += [job.eq(refined), last_digit.eq(refined.level + 2 == levels)]
                with m.If(ends_passes):
                    m.d.sync += state.eq(S2.HAND)
            with m.Case(S2.HAND):
                with m.If(self.o.ready):
                    m.d.sync += state.eq(S2.IDLE)
        with m.If(taken):
            m.d.sync += [job.eq(self.i.payload.job),
                         last_digit.eq(self.i.payload.job.level + 2 == levels),
                         state.eq(Mux(self.i.payload.resolved, S2.HAND, S2.PASS))]
        return m


class FastEngine(wiring.Component):
    """The fast engine on stream ports ``i`` and ``o``: :class:`Filter`, :class:`Refine`
    and the :class:`hdl.topk.Replayer` around a survivor store of ``cfg.regions`` regions,
    so as many rows are in flight (with four: one in each of stages 1 and 2, two in the
    replay; with two, half the store, for a user that sends one row at a time). A region is
    claimed by its row's first beat and freed in the cycle its replay ends (for
    k_eff = 0, the cycle it is handed over); stage 1 sees it free a cycle later.
    """

    def __init__(self, cfg: TopkConfig):
        self.cfg = cfg
        super().__init__(stream_ports(cfg))

    def elaborate(self, platform):
        m = Module()
        cfg, lanes, rr = self.cfg, self.cfg.lanes, region_rows(self.cfg)
        kw = key_width(cfg.width)
        groups = address_groups(lanes)
        m.submodules.store = store = Banks(stored_layout(cfg), lanes, store_rows(cfg), 2,
                                           groups)
        m.submodules.filter = stage1 = Filter(cfg)
        m.submodules.refine = stage2 = Refine(cfg)
        m.submodules.replay = replay = Replayer(cfg, kw, store_rows(cfg), groups,
                                                stored_layout(cfg), score_steps(cfg))
        wiring.connect(m, wiring.flipped(self.i), stage1.i)
        wiring.connect(m, stage1.o, stage2.i)
        wiring.connect(m, replay.o, wiring.flipped(self.o))
        m.d.comb += [getattr(store, p).eq(getattr(stage1, p)) for p in ("en", "addr", "data")]
        m.d.comb += [store.r_row[0].eq(stage2.r_row.replicate(groups)),
                     stage2.r_data.eq(store.r_data[0]),
                     store.r_row[1].eq(replay.r_row), store.r_en[1].eq(replay.r_en),
                     replay.r_data.eq(store.r_data[1])]

        job = stage2.o.payload
        m.d.comb += [replay.start.eq(stage2.o.valid), stage2.o.ready.eq(replay.ready),
                     replay.base.eq(region_base(job.region, rr, cfg.regions)),
                     replay.rows.eq(job.rows),
                     replay.tail.eq(job.tail), replay.k_eff.eq(job.k_eff),
                     replay.theta.eq(job.theta), replay.mask.eq(level_mask(job.level, cfg.width)),
                     replay.need.eq(job.need)]

        # regions: claimed by stage 1; freed when their replay ends (in the order the
        # jobs were handed over), a k_eff = 0 row's when it is handed over
        in_use = Signal(cfg.regions)
        replaying = Array(Signal(cfg.regions, name=f"replaying{j}") for j in range(2))  # one-hot
        put, get = Signal(), Signal()
        handed = stage2.o.valid & stage2.o.ready
        # (registered: whether the region stage 1 is at in the next cycle is out of use
        # in this one; a freed region is taken a cycle later, and claimed bits show in
        # time, since a region is claimed only while stage 1 is at it)
        # A region is ``released`` (one-hot) in the cycle after its replay ends or its
        # k_eff = 0 row's hand-over: out of in_use a cycle later than it would be from
        # the handshake or the replay's end itself, and seen free as early (either chained
        # into in_use was 5 or 6 LUTs deep).
        free, released = Signal(init=1), Signal(cfg.regions)
        ahead = Mux(stage1.moving, next_region(stage1.region, cfg.regions), stage1.region)
        m.d.sync += [free.eq(~(in_use & ~released).bit_select(ahead, 1)),
                     released.eq(Mux(handed & (job.k_eff == 0), 1 << job.region, 0)
                                 | Mux(replay.done, replaying[get], 0))]
        m.d.comb += stage1.free.eq(free)
        # (first: it writes every bit, the claim then sets one)
        m.d.sync += in_use.eq(in_use & ~released)
        with m.If(replay.done):
            m.d.sync += get.eq(~get)
        with m.If(stage1.claim):
            m.d.sync += in_use.bit_select(stage1.region, 1).eq(1)
        with m.If(handed & (job.k_eff != 0)):
            m.d.sync += [replaying[put].eq(1 << job.region), put.eq(~put)]
        return m
