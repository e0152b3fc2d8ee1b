"""Our top-k engine (``engine: fast``): filter while streaming, refine on survivors,
rows pipelined over three stages.

Sort key: the score as an order-preserving unsigned number u (sign bit flipped if
signed), re-coded as a small float g(u) = (bit length e of u, the bits below its
leading one, left-aligned): a bijection that keeps the order, so radix digits of g
give log-scaled bins (attention probabilities crowd near zero) and fine bins near the
top (uniform scores). Digits: the top min(6, G) bits of the G-bit key, then 6 bits at a
time.

Stage 1 (ingest, one beat per cycle): a 64-bin histogram of the first digit counts the
row so far; the highest bin whose count plus the counts above it reach k is a lower
bound of the k-th largest value of the prefix, hence of the row (papers.md: θ of a
prefix never exceeds θ of the row). Lanes in lower bins are dropped at once; the rest
(survivors) are compacted, with their indices, into the row's region of the survivor
store. At the row's end the exact histogram gives θ's first digit and how many of its
bin are needed. One cycle later the row moves to stage 2 and the next row may stream
into the next region (three regions rotate).

Stage 2 (refine): while the needed elements are not all of θ's bin, one pass over the
survivors histograms the next digit of those matching θ's digits so far (rows + 2
cycles), fixing one more digit.

Stage 3 (replay, :class:`hdl.topk.Replayer`): the survivors in order; a key whose
resolved digits exceed θ's is kept, and of those equal, the first ``need``.
"""
from __future__ import annotations

import math

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import enum, wiring

from accelgen.params.topk import TopkConfig

from .histogram import Histogram, ThresholdBin
from .lanes import BankedStore, RowReader, advance, pick
from .topk import Ingest, Replayer, item_layout, pointer_extent

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


def float_key(m: Module, u, width: int, name: str) -> Signal:
    """g(u): bit length of u, then the bits below its leading one, left-aligned."""
    length = Signal(range(width + 1), name=f"{name}_len")
    found = Const(0, range(width + 1))
    for b in range(width):
        found = Mux(u[b], b + 1, found)
    m.d.comb += length.eq(found)
    shift = Signal(range(width + 1), name=f"{name}_shift")
    norm = Signal(width, name=f"{name}_norm")
    key = Signal(key_width(width), name=f"{name}_key")
    m.d.comb += [shift.eq(width - length), norm.eq(u << shift),
                 key.eq(Cat(norm[:width - 1], length))]
    return key


class S1(enum.Enum, shape=1):
    STREAM = 0
    FINAL = 1


class S2(enum.Enum, shape=2):
    IDLE = 0
    PASS = 1
    HAND = 2


class FastEngine:
    def __init__(self, cfg: TopkConfig):
        self.cfg = cfg
        self.region_rows = math.ceil(cfg.capacity / cfg.lanes)

    def build(self, m: Module, i, o) -> None:
        cfg, lanes, rr = self.cfg, self.cfg.lanes, self.region_rows
        kw = key_width(cfg.width)
        ends = digit_ends(cfg.width)
        levels = len(ends)
        item = item_layout(cfg, kw)
        m.submodules.store = store = BankedStore(item, lanes, REGIONS * rr, 2)
        m.submodules.replay = replay = Replayer(cfg, kw, REGIONS * rr)
        wiring.connect(m, replay.o, wiring.flipped(o))
        m.d.comb += [store.r_row[1].eq(replay.r_row), replay.r_data.eq(store.r_data[1])]

        def base(region):
            return Mux(region == 0, 0, Mux(region == 1, rr, 2 * rr))

        def digit(key, level):
            """Bits of digit ``level`` (0-based) of ``key``."""
            lo = kw - ends[level]
            hi = kw - (ends[level - 1] if level else 0)
            return key[lo:hi]

        masks = [((1 << ends[lv]) - 1) << (kw - ends[lv]) for lv in range(levels)]
        region_busy = Signal(REGIONS, name="f_region_busy")

        # ------------------------------------------------------------ stage 1: ingest
        s1 = Signal(S1, name="f1_state")
        r1 = Signal(range(REGIONS), name="f1_region")
        in_row = Signal(name="f1_in_row")
        n = Signal(range(cfg.capacity + 1), name="f1_n")
        k = Signal(cfg.k_width, name="f1_k")
        nbins = 1 << ends[0]  # the widest digit is the first
        bound = Signal(range(max(2, nbins)), name="f1_bound")
        wrow = Signal(range(rr + 1), name="f1_wrow")
        woff = Signal(range(max(2, lanes)), name="f1_woff")
        first = ~in_row
        accept = Signal(name="f1_accept")
        m.d.comb += [i.ready.eq((s1 == S1.STREAM) & (in_row | ~region_busy.bit_select(r1, 1))),
                     accept.eq(i.valid & i.ready)]
        ingest = Ingest(m, cfg, i.payload, Mux(first, 0, n),
                        lambda u: float_key(m, u, cfg.width, "f1_g"), kw)
        m.submodules.hist1 = hist1 = Histogram(lanes, nbins, cfg.capacity)
        bins = [digit(x.key, 0) for x in ingest.items]
        live = ingest.valid & accept.replicate(lanes)
        survive = Signal(lanes, name="f1_survive")
        for j, b in enumerate(bins):
            m.d.comb += [hist1.bin_ids[j].eq(b), survive[j].eq(live[j] & (b >= bound))]
        m.d.comb += [hist1.mask.eq(live), hist1.clear.eq(accept & first)]
        m.submodules.threshold1 = tb1 = ThresholdBin(hist1.counts.shape(), cfg.k_width)
        m.d.comb += tb1.counts.eq(hist1.counts)
        k_eff = Signal(cfg.k_width, name="f1_k_eff")
        m.d.comb += [k_eff.eq(Mux(k < n, k, n)), tb1.need.eq(Mux(s1 == S1.FINAL, k_eff, k))]
        with m.If(accept & first):
            m.d.sync += bound.eq(0)
        with m.Elif(in_row):
            m.d.sync += bound.eq(tb1.bin)
        with m.Else():
            m.d.sync += bound.eq(0)

        w_row = Mux(accept & first, 0, wrow)
        w_off = Mux(accept & first, 0, woff)
        m.d.comb += [store.w_row.eq(base(r1) + w_row), store.w_off.eq(w_off),
                     store.w_mask.eq(survive)]
        m.d.comb += [w.eq(x) for w, x in zip(store.w_items, ingest.items)]
        new_row, new_off = advance(w_row, w_off, store.w_count, lanes)

        # ------------------------------------------------------------ stage 2: refine
        s2 = Signal(S2, name="f2_state")
        job = {"region": Signal(range(REGIONS), name="f2_region"),
               "rows": Signal(range(rr + 1), name="f2_rows"),
               "tail": Signal(range(lanes + 1), name="f2_tail"),
               "k_eff": Signal(cfg.k_width, name="f2_k_eff"),
               "theta": Signal(kw, name="f2_theta"),
               "level": Signal(range(max(2, levels)), name="f2_level"),
               "need": Signal(cfg.k_width, name="f2_need")}
        m.submodules.reader = reader = RowReader(lanes, rr)
        m.d.comb += [reader.rows.eq(job["rows"]), reader.tail.eq(job["tail"]),
                     reader.go.eq(s2 == S2.PASS)]
        m.submodules.hist2 = hist2 = Histogram(lanes, nbins, cfg.capacity)
        m.submodules.threshold2 = tb2 = ThresholdBin(hist2.counts.shape(), cfg.k_width)
        m.d.comb += tb2.counts.eq(hist2.counts)
        m.d.comb += [tb2.need.eq(job["need"]), store.r_row[0].eq(base(job["region"]) + reader.row),
                     hist2.clear.eq(reader.first)]
        level_mask = Signal(kw, name="f2_mask")
        next_digit_shift = Signal(range(kw + 1), name="f2_shift")
        m.d.comb += [level_mask.eq(pick(job["level"], masks)),
                     next_digit_shift.eq(pick(job["level"], [kw - ends[min(lv + 1, levels - 1)]
                                                             for lv in range(levels)]))]
        for j, x in enumerate(store.r_data[0]):
            match = reader.live[j] & ((x.key & level_mask) == job["theta"])
            m.d.comb += [hist2.mask[j].eq(match),
                         hist2.bin_ids[j].eq(pick(job["level"], [digit(x.key, min(lv + 1, levels - 1))
                                                                 for lv in range(levels)]))]

        # replay hand-off
        m.d.comb += [replay.base.eq(base(job["region"])), replay.rows.eq(job["rows"]),
                     replay.tail.eq(job["tail"]), replay.k_eff.eq(job["k_eff"]),
                     replay.theta.eq(job["theta"]), replay.need.eq(job["need"])]
        m.d.comb += replay.mask.eq(level_mask)
        replay_region = Signal(range(REGIONS), name="f3_region")
        with m.If(replay.done):
            m.d.sync += region_busy.bit_select(replay_region, 1).eq(0)
        with m.If(replay.start & ~replay.busy):
            m.d.sync += replay_region.eq(job["region"])

        with m.Switch(s2):
            with m.Case(S2.PASS):
                with m.If(reader.finished):
                    need_next = job["need"] - tb2.above
                    m.d.comb += reader.clear.eq(1)
                    m.d.sync += [job["theta"].eq(job["theta"] | (tb2.bin << next_digit_shift)),
                                 job["need"].eq(need_next), job["level"].eq(job["level"] + 1)]
                    with m.If((tb2.inside == need_next) | (job["level"] + 2 == levels)):
                        m.d.sync += s2.eq(S2.HAND)
            with m.Case(S2.HAND):
                with m.If(~replay.busy):
                    m.d.comb += replay.start.eq(1)
                    m.d.sync += s2.eq(S2.IDLE)

        # ------------------------------------------------------------ stage 1 schedule
        rows1, tail1 = pointer_extent(wrow, woff, lanes)
        need1 = Signal(cfg.k_width, name="f1_need")
        m.d.comb += need1.eq(k_eff - tb1.above)
        with m.Switch(s1):
            with m.Case(S1.STREAM):
                with m.If(accept):
                    m.d.sync += [n.eq(ingest.n_next), in_row.eq(~i.payload.last),
                                 wrow.eq(new_row), woff.eq(new_off)]
                    with m.If(first):
                        m.d.sync += [k.eq(i.payload.k),
                                     region_busy.bit_select(r1, 1).eq(1)]
                    with m.If(i.payload.last):
                        m.d.sync += s1.eq(S1.FINAL)
            with m.Case(S1.FINAL):
                with m.If(s2 == S2.IDLE):
                    done = (tb1.inside == need1) | (levels == 1)
                    m.d.sync += [job["region"].eq(r1), job["rows"].eq(rows1),
                                 job["tail"].eq(tail1), job["k_eff"].eq(k_eff),
                                 job["theta"].eq(tb1.bin << (kw - ends[0])), job["level"].eq(0),
                                 job["need"].eq(need1),
                                 s2.eq(Mux(done, S2.HAND, S2.PASS)),
                                 r1.eq(Mux(r1 == REGIONS - 1, 0, r1 + 1)), s1.eq(S1.STREAM)]
