"""SpAtten's top-k engine (``engine: quickselect``): quick-select rounds, then replay.

One row at a time. Each round is a :class:`Partition` pass with a pivot from
:class:`Pivot`. Round 1 is the ingest: each accepted beat is written to the row
store and compared, P lanes at once, with a pivot drawn from the row's first beat;
zero-eliminators compact the greater and the less lanes into the G and L stores and
the equal ones are counted. Each later round reads the side holding the k-th largest
element (G or L, rewritten in place, the other side overwritten), after drawing its
pivot from the first row of that side. When the pivot is the k-th largest, θ is known,
and the replay pass (:class:`hdl.topk.Replayer`) streams the row store in order.

Pivot lane: ``(r * c) >> b`` for the low b bits r of a 16-bit Galois LFSR (taps 0xB400,
seed 1, stepped once per pivot, never reset between rows) and c = valid lanes of the
row the pivot is drawn from. Cycles per row: one per input beat, 1 to decide, for each
later round ``rows + 3`` (pivot read, pivot latch, one per row, decide), then the replay
(one per row store row up to the row holding the k_eff-th kept element, plus 1).
"""
from __future__ import annotations

import math

from amaranth import Module, Mux, Signal
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.topk import TopkConfig

from .lanes import BankedStore, RowReader, pick, popcount
from .topk import Ingest, Replayer, append, item_layout, stream_ports

LFSR_TAPS = 0xB400


class State(enum.Enum, shape=3):
    INGEST = 0
    DECIDE = 1
    PIVOT_READ = 2
    PIVOT_LATCH = 3
    ROUND = 4
    REPLAY = 5


def lfsr_step(state):
    """One step of the 16-bit Galois LFSR."""
    return Mux(state[0], (state >> 1) ^ LFSR_TAPS, state >> 1)


def pivot_lane(lfsr, count, lanes: int):
    """A pseudo-random lane below ``count``."""
    bits = max(1, (lanes - 1).bit_length())
    return (lfsr[:bits] * count) >> bits


class Pivot(wiring.Component):
    """Pivot draws: ``drawn`` is ``keys[(r * count) >> b]`` for the low b bits r of the
    LFSR (combinational); ``draw`` latches it into ``pivot`` and steps the LFSR, which
    is never reset between rows."""

    def __init__(self, key_width: int, lanes: int):
        self.lanes = lanes
        super().__init__({"keys": In(data.ArrayLayout(key_width, lanes)),
                          "count": In(range(lanes + 1)), "draw": In(1),
                          "drawn": Out(key_width), "pivot": Out(key_width)})

    def elaborate(self, platform):
        m = Module()
        lfsr = Signal(16, init=1)
        m.d.comb += self.drawn.eq(pick(pivot_lane(lfsr, self.count, self.lanes), list(self.keys)))
        with m.If(self.draw):
            m.d.sync += [self.pivot.eq(self.drawn), lfsr.eq(lfsr_step(lfsr))]
        return m


class Partition(wiring.Component):
    """One cycle of a quick-select round: of the ``live`` lanes of ``items``, those with
    keys greater and less than ``pivot`` are written compacted to the G and L stores in
    the same cycle (from row 0 with ``restart``), and ``gt``, ``eq`` and ``lt`` count
    them (registered: they show the next cycle, restarted with ``restart``). ``g_rows``
    and ``g_tail`` (``l_rows``, ``l_tail``): the extent of G (L). Reads share the
    address: row ``r_row`` of L if ``r_l`` (else G) arrives on ``r_data`` one cycle
    later.
    """

    def __init__(self, cfg: TopkConfig, rows: int):
        self.cfg, self.rows, lanes = cfg, rows, cfg.lanes
        row = data.ArrayLayout(item_layout(cfg, cfg.width), lanes)
        super().__init__({
            "items": In(row), "live": In(lanes), "pivot": In(cfg.width), "restart": In(1),
            "gt": Out(cfg.k_width), "eq": Out(cfg.k_width), "lt": Out(cfg.k_width),
            "g_rows": Out(range(rows + 1)), "g_tail": Out(range(lanes + 1)),
            "l_rows": Out(range(rows + 1)), "l_tail": Out(range(lanes + 1)),
            "r_row": In(range(max(2, rows))), "r_l": In(1), "r_data": Out(row)})

    def elaborate(self, platform):
        m = Module()
        cfg, lanes = self.cfg, self.cfg.lanes
        item = item_layout(cfg, cfg.width)
        gt, eq, lt = Signal(lanes), Signal(lanes), Signal(lanes)
        for j, x in enumerate(self.items):
            m.d.comb += [gt[j].eq(self.live[j] & (x.key > self.pivot)),
                         lt[j].eq(self.live[j] & (x.key < self.pivot)),
                         eq[j].eq(self.live[j] & (x.key == self.pivot))]
        for count, mask in ((self.gt, gt), (self.eq, eq), (self.lt, lt)):
            m.d.sync += count.eq(Mux(self.restart, 0, count) + popcount(mask))
        m.submodules.g_store = g_store = BankedStore(item, lanes, self.rows, 1)
        m.submodules.l_store = l_store = BankedStore(item, lanes, self.rows, 1)
        for store, mask, rows, tail in ((g_store, gt, self.g_rows, self.g_tail),
                                        (l_store, lt, self.l_rows, self.l_tail)):
            extent = append(m, store, self.items, mask, self.restart, self.rows)
            m.d.comb += [rows.eq(extent[0]), tail.eq(extent[1]), store.r_row[0].eq(self.r_row)]
        m.d.comb += self.r_data.eq(Mux(self.r_l, l_store.r_data[0].as_value(),
                                       g_store.r_data[0].as_value()))
        return m


class QuickSelectEngine(wiring.Component):
    """SpAtten's engine on stream ports ``i`` and ``o``: the row store, a
    :class:`Partition` and a :class:`Pivot` driven by the round schedule of the module
    docstring, then the :class:`hdl.topk.Replayer`. One row at a time: ``i`` is ready
    only while a row streams in."""

    def __init__(self, cfg: TopkConfig):
        self.cfg = cfg
        self.rows = math.ceil(cfg.capacity / cfg.lanes)
        super().__init__(stream_ports(cfg))

    def elaborate(self, platform):
        m = Module()
        cfg, lanes, rows, i = self.cfg, self.cfg.lanes, self.rows, self.i
        kw = cfg.width
        m.submodules.row_store = row_store = BankedStore(item_layout(cfg, kw), lanes, rows, 1)
        m.submodules.replay = replay = Replayer(cfg, kw, rows)
        wiring.connect(m, replay.o, wiring.flipped(self.o))
        m.d.comb += [row_store.r_row[0].eq(replay.r_row), replay.r_data.eq(row_store.r_data[0])]

        state = Signal(State)
        in_row = Signal()
        n = Signal(range(cfg.capacity + 1))
        k = Signal(cfg.k_width)
        rank = Signal(cfg.k_width)
        src_l = Signal()            # current candidates: L (else G)
        src_rows = Signal(range(rows + 1))
        src_tail = Signal(range(lanes + 1))
        m.submodules.reader = reader = RowReader(lanes, rows)  # candidate rows (G or L)
        m.d.comb += [reader.rows.eq(src_rows), reader.tail.eq(src_tail)]

        # ---- the lanes being classified: an input beat (round 1) or a candidate row
        first = ~in_row
        m.submodules.ingest = ingest = Ingest(cfg, kw)
        accept = Signal()
        m.d.comb += [ingest.beat.eq(i.payload), ingest.n.eq(Mux(first, 0, n)),
                     i.ready.eq(state == State.INGEST), accept.eq(i.valid & i.ready)]
        m.submodules.partition = part = Partition(cfg, rows)
        m.submodules.pivot = pivot = Pivot(kw, lanes)
        in_round = state == State.ROUND
        latch = state == State.PIVOT_LATCH
        restart = accept & first | latch
        for j, (c, x) in enumerate(zip(part.r_data, ingest.items)):
            m.d.comb += [part.items[j].eq(Mux(in_round, c.as_value(), x.as_value())),
                         pivot.keys[j].eq(Mux(latch, c.key, x.key))]
        row_lanes = ingest.valid & accept.replicate(lanes)
        m.d.comb += [part.live.eq(Mux(in_round, reader.live, row_lanes)),
                     part.pivot.eq(Mux(accept & first, pivot.drawn, pivot.pivot)),
                     part.restart.eq(restart), part.r_row.eq(reader.row), part.r_l.eq(src_l),
                     pivot.draw.eq(restart),
                     pivot.count.eq(Mux(latch, Mux(src_rows == 1, src_tail, lanes),
                                        i.payload.count)),
                     reader.go.eq(latch | in_round)]
        row_rows, row_tail = append(m, row_store, ingest.items, row_lanes, accept & first, rows)

        # ---- the schedule
        k_eff = Signal(cfg.k_width)
        m.d.comb += k_eff.eq(Mux(k < n, k, n))
        below = part.gt + part.eq
        m.d.comb += [replay.base.eq(0), replay.rows.eq(row_rows), replay.tail.eq(row_tail),
                     replay.k_eff.eq(k_eff), replay.theta.eq(pivot.pivot),
                     replay.mask.eq((1 << kw) - 1), replay.need.eq(rank - part.gt)]

        def go_round(side_l):
            side = (part.l_rows, part.l_tail) if side_l else (part.g_rows, part.g_tail)
            m.d.comb += reader.clear.eq(1)
            m.d.sync += [src_l.eq(side_l), src_rows.eq(side[0]), src_tail.eq(side[1]),
                         state.eq(State.PIVOT_READ)]

        with m.Switch(state):
            with m.Case(State.INGEST):
                with m.If(accept):
                    m.d.sync += [n.eq(ingest.n_next), in_row.eq(~i.payload.last)]
                    with m.If(first):
                        m.d.sync += k.eq(i.payload.k)
                    with m.If(i.payload.last):
                        k_now = Mux(first, i.payload.k, k)
                        m.d.sync += [state.eq(State.DECIDE),
                                     rank.eq(Mux(k_now < ingest.n_next, k_now, ingest.n_next))]
            with m.Case(State.DECIDE):
                with m.If(k_eff == 0):
                    m.d.comb += replay.start.eq(1)
                    m.d.sync += state.eq(State.REPLAY)
                with m.Elif(rank <= part.gt):
                    go_round(False)
                with m.Elif(rank <= below):
                    m.d.comb += replay.start.eq(1)
                    m.d.sync += state.eq(State.REPLAY)
                with m.Else():
                    m.d.sync += rank.eq(rank - below)
                    go_round(True)
            with m.Case(State.PIVOT_READ):
                m.d.sync += state.eq(State.PIVOT_LATCH)
            with m.Case(State.PIVOT_LATCH):
                m.d.sync += state.eq(State.ROUND)
            with m.Case(State.ROUND):
                with m.If(reader.row == src_rows):  # the final row's data is counted now
                    m.d.sync += state.eq(State.DECIDE)
            with m.Case(State.REPLAY):
                with m.If(~replay.busy):
                    m.d.sync += state.eq(State.INGEST)
        return m
