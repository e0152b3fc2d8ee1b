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
stream into the next region (three regions rotate).

Stage 2 (:class:`Refine`): while the needed elements are not all of θ's bin, one pass
over the survivors histograms the next digit of those matching θ's digits so far
(rows + 2 cycles), fixing one more digit.

Stage 3 (replay, :class:`hdl.topk.Replayer`): the survivors in order; a key whose
resolved digits exceed θ's is kept, and of those equal, the first ``need``.
"""
from __future__ import annotations

import math

from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.topk import TopkConfig

from .histogram import Histogram, ThresholdBin
from .lanes import BankedStore, RowReader, pick
from .topk import Ingest, Replayer, append, input_layout, item_layout, stream_ports

DIGIT = 6
REGIONS = 3


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


def region_base(region, rows: int):
    """The first store row of ``region`` (regions of ``rows`` rows each)."""
    return Mux(region == 0, 0, Mux(region == 1, rows, 2 * rows))


def job_layout(cfg: TopkConfig) -> data.StructLayout:
    """A row between the stages: its survivor region and their extent (``rows``, ``tail``
    valid lanes in the final one), k_eff, θ with its digits 0..``level`` resolved (the
    rest 0), and ``need``, how many keys equal to θ in those digits to keep."""
    levels = len(digit_ends(cfg.width))
    return data.StructLayout({
        "region": range(REGIONS), "rows": range(region_rows(cfg) + 1),
        "tail": range(cfg.lanes + 1), "k_eff": unsigned(cfg.k_width),
        "theta": unsigned(key_width(cfg.width)), "level": range(max(2, levels)),
        "need": unsigned(cfg.k_width)})


def filtered_layout(cfg: TopkConfig) -> data.StructLayout:
    """Stage 1's hand-off: the job at level 0, and whether θ is already ``resolved``."""
    return data.StructLayout({"job": job_layout(cfg), "resolved": unsigned(1)})


def store_rows(cfg: TopkConfig) -> int:
    """Rows of the survivor store's three regions (no zero-width addresses)."""
    return max(2, REGIONS * region_rows(cfg))


class FloatKey(wiring.Component):
    """g(u): the bit length of ``u``, then the bits below its leading one, left-aligned
    (``key``). Combinational."""

    def __init__(self, width: int):
        self.width = width
        super().__init__({"u": In(width), "key": Out(key_width(width))})

    def elaborate(self, platform):
        m = Module()
        width = self.width
        length = Signal(range(width + 1))
        found = Const(0, range(width + 1))
        for b in range(width):
            found = Mux(self.u[b], b + 1, found)
        m.d.comb += length.eq(found)
        shift = Signal(range(width + 1))
        norm = Signal(width)
        m.d.comb += [shift.eq(width - length), norm.eq(self.u << shift),
                     self.key.eq(Cat(norm[:width - 1], length))]
        return m


class S1(enum.Enum, shape=1):
    STREAM = 0
    FINAL = 1


class S2(enum.Enum, shape=2):
    IDLE = 0
    PASS = 1
    HAND = 2


class Filter(wiring.Component):
    """Stage 1: ingests a row from ``i`` into region ``region`` of the survivor store and
    offers its job on ``o``.

    One beat per cycle. A row's first beat pulses ``claim`` and waits for ``free`` (the
    region is out of use downstream). A histogram of the first key digit counts the row;
    each beat is filtered against the bound of the row's beats accepted two or more
    cycles before it (the highest bin whose count with the counts above reaches k; bin 0
    for the row's first two beats). Lanes in lower bins are dropped, the rest written
    compacted through the store write port (``w_*``) from the region's first row. From
    the cycle after the final beat, ``o`` holds θ's first digit and ``need`` from the
    row's full histogram (``resolved``: θ's bin holds exactly the keys needed, or the
    key is one digit); when it is taken the next region is used and a row may stream.
    """

    def __init__(self, cfg: TopkConfig):
        self.cfg, lanes = cfg, cfg.lanes
        super().__init__({
            "i": In(stream.Signature(input_layout(cfg))),
            "o": Out(stream.Signature(filtered_layout(cfg))),
            "region": Out(range(REGIONS)), "claim": Out(1), "free": In(1),
            "w_row": Out(range(store_rows(cfg) + 1)), "w_off": Out(range(max(2, lanes))),
            "w_items": Out(data.ArrayLayout(item_layout(cfg, key_width(cfg.width)), lanes)),
            "w_mask": Out(lanes), "w_count": In(range(lanes + 1))})

    def elaborate(self, platform):
        m = Module()
        cfg, lanes, rr = self.cfg, self.cfg.lanes, region_rows(self.cfg)
        kw, ends = key_width(cfg.width), digit_ends(cfg.width)
        state = Signal(S1)
        in_row = Signal()
        n = Signal(range(cfg.capacity + 1))
        k = Signal(cfg.k_width)
        nbins = 1 << ends[0]  # the widest digit is the first
        bound = Signal(range(max(2, nbins)))
        first = ~in_row
        accept = Signal()
        m.d.comb += [self.i.ready.eq((state == S1.STREAM) & (in_row | self.free)),
                     accept.eq(self.i.valid & self.i.ready), self.claim.eq(accept & first)]
        m.submodules.ingest = ingest = Ingest(cfg, kw, lambda: FloatKey(cfg.width))
        m.d.comb += [ingest.beat.eq(self.i.payload), ingest.n.eq(Mux(first, 0, n))]
        m.submodules.histogram = hist = Histogram(lanes, nbins, cfg.capacity)
        live = ingest.valid & accept.replicate(lanes)
        survive = Signal(lanes)
        for j, item in enumerate(ingest.items):
            b = digit(item.key, 0, cfg.width)
            m.d.comb += [hist.bin_ids[j].eq(b), survive[j].eq(live[j] & (b >= bound))]
        m.d.comb += [hist.mask.eq(live), hist.clear.eq(self.claim)]
        m.submodules.threshold = tb = ThresholdBin(hist.counts.shape(), cfg.k_width)
        k_eff = Signal(cfg.k_width)
        m.d.comb += [tb.counts.eq(hist.counts), k_eff.eq(Mux(k < n, k, n)),
                     tb.need.eq(Mux(state == S1.FINAL, k_eff, k))]
        m.d.sync += bound.eq(Mux(in_row, tb.bin, 0))
        rows, tail = append(m, self, ingest.items, survive, self.claim, rr,
                            base=region_base(self.region, rr))

        need = Signal(cfg.k_width)
        job = self.o.payload.job
        m.d.comb += [need.eq(k_eff - tb.above), self.o.valid.eq(state == S1.FINAL),
                     job.region.eq(self.region), job.rows.eq(rows), job.tail.eq(tail),
                     job.k_eff.eq(k_eff), job.theta.eq(tb.bin << (kw - ends[0])),
                     job.level.eq(0), job.need.eq(need),
                     self.o.payload.resolved.eq((tb.inside == need) | (len(ends) == 1))]
        with m.Switch(state):
            with m.Case(S1.STREAM):
                with m.If(accept):
                    m.d.sync += [n.eq(ingest.n_next), in_row.eq(~self.i.payload.last)]
                    with m.If(first):
                        m.d.sync += k.eq(self.i.payload.k)
                    with m.If(self.i.payload.last):
                        m.d.sync += state.eq(S1.FINAL)
            with m.Case(S1.FINAL):
                with m.If(self.o.ready):
                    last_region = self.region == REGIONS - 1
                    m.d.sync += [self.region.eq(Mux(last_region, 0, self.region + 1)),
                                 state.eq(S1.STREAM)]
        return m


class Refine(wiring.Component):
    """Stage 2: takes a job on ``i`` (ready while idle) and resolves θ's further digits,
    then offers the job on ``o``.

    A resolved job is offered from the next cycle. Otherwise each pass reads the
    region's survivors in order (``r_row``; the row arrives on ``r_data`` one cycle
    later) and histograms the next digit of the keys equal to θ in its digits so far:
    rows + 2 cycles, after which θ has one digit more and ``need`` counts the keys
    equal to it still to keep. Passes end when the keys equal to θ are exactly those
    needed, or at the last digit.
    """

    def __init__(self, cfg: TopkConfig):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(filtered_layout(cfg))),
            "o": Out(stream.Signature(job_layout(cfg))),
            "r_row": Out(range(store_rows(cfg))),
            "r_data": In(data.ArrayLayout(item_layout(cfg, key_width(cfg.width)), cfg.lanes))})

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
                     reader.go.eq(state == S2.PASS)]
        m.submodules.histogram = hist = Histogram(lanes, nbins, cfg.capacity)
        m.submodules.threshold = tb = ThresholdBin(hist.counts.shape(), cfg.k_width)
        m.d.comb += [tb.counts.eq(hist.counts), tb.need.eq(job.need),
                     self.r_row.eq(region_base(job.region, rr) + reader.row),
                     hist.clear.eq(reader.first)]
        mask = Signal(kw)
        next_digit_shift = Signal(range(kw + 1))
        next_level = [min(lv + 1, levels - 1) for lv in range(levels)]
        m.d.comb += [mask.eq(level_mask(job.level, cfg.width)),
                     next_digit_shift.eq(pick(job.level, [kw - ends[lv] for lv in next_level]))]
        for j, x in enumerate(self.r_data):
            m.d.comb += [hist.mask[j].eq(reader.live[j] & ((x.key & mask) == job.theta)),
                         hist.bin_ids[j].eq(pick(job.level, [digit(x.key, lv, cfg.width)
                                                             for lv in next_level]))]

        m.d.comb += [self.i.ready.eq(state == S2.IDLE), self.o.valid.eq(state == S2.HAND),
                     self.o.payload.eq(job)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [job.eq(self.i.payload.job),
                         state.eq(Mux(self.i.payload.resolved, S2.HAND, S2.PASS))]
        with m.Switch(state):
            with m.Case(S2.PASS):
                with m.If(reader.finished):
                    need_next = job.need - tb.above
                    m.d.comb += reader.clear.eq(1)
                    m.d.sync += [job.theta.eq(job.theta | (tb.bin << next_digit_shift)),
                                 job.need.eq(need_next), job.level.eq(job.level + 1)]
                    with m.If((tb.inside == need_next) | (job.level + 2 == levels)):
                        m.d.sync += state.eq(S2.HAND)
            with m.Case(S2.HAND):
                with m.If(self.o.ready):
                    m.d.sync += state.eq(S2.IDLE)
        return m


class FastEngine(wiring.Component):
    """The fast engine on stream ports ``i`` and ``o``: :class:`Filter`, :class:`Refine`
    and the :class:`hdl.topk.Replayer` around a survivor store of three regions, so
    three rows are in flight (one per stage). A region is claimed by its row's first
    beat and freed in the cycle its replay ends (for k_eff = 0, the cycle it starts).
    """

    def __init__(self, cfg: TopkConfig):
        self.cfg = cfg
        super().__init__(stream_ports(cfg))

    def elaborate(self, platform):
        m = Module()
        cfg, lanes, rr = self.cfg, self.cfg.lanes, region_rows(self.cfg)
        kw = key_width(cfg.width)
        m.submodules.store = store = BankedStore(item_layout(cfg, kw), lanes, REGIONS * rr, 2)
        m.submodules.filter = stage1 = Filter(cfg)
        m.submodules.refine = stage2 = Refine(cfg)
        m.submodules.replay = replay = Replayer(cfg, kw, REGIONS * rr)
        wiring.connect(m, wiring.flipped(self.i), stage1.i)
        wiring.connect(m, stage1.o, stage2.i)
        wiring.connect(m, replay.o, wiring.flipped(self.o))
        m.d.comb += [getattr(store, p).eq(getattr(stage1, p))
                     for p in ("w_row", "w_off", "w_items", "w_mask")]
        m.d.comb += [stage1.w_count.eq(store.w_count),
                     store.r_row[0].eq(stage2.r_row), stage2.r_data.eq(store.r_data[0]),
                     store.r_row[1].eq(replay.r_row), replay.r_data.eq(store.r_data[1])]

        job = stage2.o.payload
        m.d.comb += [replay.start.eq(stage2.o.valid), stage2.o.ready.eq(~replay.busy),
                     replay.base.eq(region_base(job.region, rr)), replay.rows.eq(job.rows),
                     replay.tail.eq(job.tail), replay.k_eff.eq(job.k_eff),
                     replay.theta.eq(job.theta), replay.mask.eq(level_mask(job.level, cfg.width)),
                     replay.need.eq(job.need)]

        in_use = Signal(REGIONS)
        replaying = Signal(range(REGIONS))
        handed = stage2.o.valid & stage2.o.ready
        m.d.comb += stage1.free.eq(~in_use.bit_select(stage1.region, 1))
        with m.If(replay.done):  # a k_eff = 0 replay ends in the cycle it is handed over
            m.d.sync += in_use.bit_select(Mux(handed, job.region, replaying), 1).eq(0)
        with m.If(handed):
            m.d.sync += replaying.eq(job.region)
        with m.If(stage1.claim):
            m.d.sync += in_use.bit_select(stage1.region, 1).eq(1)
        return m
