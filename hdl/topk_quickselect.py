"""SpAtten's top-k engine (``engine: quickselect``): quick-select rounds, then replay.

One row at a time; every pass over its elements goes through one pipeline. Round 1 is
the ingest: each accepted beat is registered with its row view (:class:`hdl.topk.Ingest`)
and written to the row store. Each later round reads the side (G or L) holding the k-th
largest element, one store row per cycle. Either way the registered lanes then meet the
:class:`Pivot`, which draws the pass's pivot from its first row (two stages), and the
:class:`Partition`, which compares every row with it (one stage) and compacts the
greater and the less lanes into the G and L stores (registered writers: the side being
read is rewritten in place behind the reads, the other side overwritten) and counts
them. In the cycle the pass's last row has landed in the stores, the engine decides:
another round on the side of the k-th largest, or θ = the pivot and the replay pass
(:class:`hdl.topk.Replayer`) streams the row store in order (it holds the scores only,
in row order; each read rebuilds the keys and the indices).

Pivot lane: ``(r * c) >> b`` for the low b bits r of a 16-bit Galois LFSR (taps 0xB400,
seed 1, stepped once per pivot, never reset between rows) and c = valid lanes of the
row the pivot is drawn from, read from a table of constants (no multiplier). Cycles per
row: one per input beat, then 2 (the input and view registers) + ``drain`` (the pass's
last row through the pivot and partition stages and the stores' writers) to the
decision; each later round ``rows + 2 + drain`` (issue, read, the rows, drain); then the
replay (its ``lag`` plus one per row store row up to the row holding the k_eff-th kept
element, plus 1).
"""
from __future__ import annotations

import math

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.topk import TopkConfig

from .lanes import RowReader, address_groups, pick
from .pipeline import PrefixCount, StagedStore, delay, network_stages, stage
from .topk import Ingest, Replayer, item_layout, score_shape, sort_key, stream_ports

LFSR_TAPS = 0xB400


class State(enum.Enum, shape=2):
    INGEST = 0
    ROUND = 1
    DRAIN = 2
    REPLAY = 3


def lfsr_step(state):
    """One step of the 16-bit Galois LFSR."""
    return Mux(state[0], (state >> 1) ^ LFSR_TAPS, state >> 1)


def lane_bits(lanes: int) -> int:
    """b: the LFSR bits a pivot lane is drawn from."""
    return max(1, (lanes - 1).bit_length())


class Pivot(wiring.Component):
    """Pivot draws, two registered stages. ``draw`` (with the first row's ``keys`` and
    its valid lane count ``count``) registers lane ``(r * count) >> b`` of the low b
    bits r of the LFSR, from a table of constants indexed by r and count, with the
    keys, and steps the LFSR (never reset between rows); the next cycle registers that
    lane's key into ``pivot``, which holds it from the second cycle after the draw
    until the next draw's."""

    def __init__(self, key_width: int, lanes: int):
        self.lanes = lanes
        super().__init__({"keys": In(data.ArrayLayout(key_width, lanes)),
                          "count": In(range(lanes + 1)), "draw": In(1),
                          "pivot": Out(key_width)})

    def elaborate(self, platform):
        m = Module()
        lanes, bits = self.lanes, lane_bits(self.lanes)
        lfsr = Signal(16, init=1)
        table = [(r * c) >> bits for c in range(lanes + 1) for r in range(1 << bits)]
        lane = Signal(range(max(2, lanes)))
        keys = Signal(self.keys.shape())
        drawn = Signal()
        m.d.sync += drawn.eq(self.draw)
        with m.If(self.draw):
            m.d.sync += [lane.eq(pick(Cat(lfsr[:bits], self.count), table)),
                         keys.eq(self.keys), lfsr.eq(lfsr_step(lfsr))]
        with m.If(drawn):
            m.d.sync += self.pivot.eq(pick(lane, list(keys)))
        return m


class Partition(wiring.Component):
    """A quick-select pass over rows of ``keys`` (``live`` lanes; ``first`` on a pass's
    first row restarts the counts and both stores) against ``pivot``. Registered
    stages: classify (key greater than, equal to, less than the pivot), then the counts
    (:class:`hdl.pipeline.PrefixCount` totals accumulated into ``gt`` and ``ge``,
    greater or equal, shown ``count_latency`` cycles after the row) and the G and L
    :class:`hdl.pipeline.StagedStore` writers of the greater and the less keys (keys
    only: the replay reads the row store; written ``latency`` cycles after the row;
    ``g_rows``/``g_tail`` and ``l_rows``/``l_tail`` are their extents). The stores are
    block RAMs; reads share the address (``groups`` copies of it,
    :func:`hdl.lanes.read_ports`) and each store's read data is registered with no logic
    before it: row ``r_row`` of L if ``r_l`` (else G) arrives on ``r_data`` two cycles
    later, as a choice between the two registers.
    """

    def __init__(self, cfg: TopkConfig, rows: int, groups: int = 1):
        self.cfg, self.rows, self.groups, lanes = cfg, rows, groups, cfg.lanes
        self.latency = 1 + StagedStore.latency_of(lanes)
        self.count_latency = 2 + network_stages(lanes)
        row = data.ArrayLayout(cfg.width, lanes)
        super().__init__({
            "keys": In(row), "live": In(lanes), "first": In(1), "pivot": In(cfg.width),
            "gt": Out(cfg.k_width), "ge": Out(cfg.k_width),
            "g_rows": Out(range(rows + 1)), "g_tail": Out(range(lanes + 1)),
            "l_rows": Out(range(rows + 1)), "l_tail": Out(range(lanes + 1)),
            "r_row": In(data.ArrayLayout(range(max(2, rows)), groups)), "r_l": In(1),
            "r_data": Out(row)})

    def elaborate(self, platform):
        m = Module()
        cfg, lanes = self.cfg, self.cfg.lanes
        keys = list(self.keys)
        gt = stage(m, Cat(self.live[j] & (k > self.pivot) for j, k in enumerate(keys)), 1, "gt")
        lt = stage(m, Cat(self.live[j] & (k < self.pivot) for j, k in enumerate(keys)), 1, "lt")
        ge = stage(m, Cat(self.live[j] & (k >= self.pivot) for j, k in enumerate(keys)), 1, "ge")
        items = stage(m, self.keys.as_value(), 1, "keys")
        first = stage(m, self.first, 1, "first")
        for name, count, mask in (("gt", self.gt, gt), ("ge", self.ge, ge)):
            m.submodules[name] = counter = PrefixCount(lanes)
            m.d.comb += [counter.bits.eq(mask), counter.adv.eq(1)]
            restart = delay(m, first, counter.latency, 1, f"{name}_first")
            m.d.sync += count.eq(Mux(restart, 0, count) + counter.total)
        reads = []  # each store's read data, registered
        for name, mask, rows, tail in (("g", gt, self.g_rows, self.g_tail),
                                       ("l", lt, self.l_rows, self.l_tail)):
            m.submodules[f"{name}_store"] = store = StagedStore(cfg.width, lanes, self.rows, 1,
                                                                self.groups, block_ram=True)
            m.d.comb += [store.w_items.eq(items), store.w_mask.eq(mask),
                         store.w_restart.eq(first), rows.eq(store.w_rows), tail.eq(store.w_tail),
                         store.r_row[0].eq(self.r_row)]
            read = Signal(self.r_data.shape(), name=f"{name}_read", reset_less=True)  # pragma: no mutate
            m.d.sync += read.eq(store.r_data[0])
            reads.append(read)
        m.d.comb += self.r_data.eq(Mux(self.r_l, reads[1].as_value(), reads[0].as_value()))
        return m


class QuickSelectEngine(wiring.Component):
    """SpAtten's engine on stream ports ``i`` and ``o``: the row store (a
    :class:`hdl.pipeline.StagedStore`), the lanes register (an input beat's row view or
    a candidate row read), a :class:`Pivot` and a :class:`Partition` driven by the round
    schedule of the module docstring, then the :class:`hdl.topk.Replayer`. One row at a
    time: ``i`` is ready only while a row streams in. ``drain``: cycles from a pass's
    last row in the lanes register to the decision."""

    def __init__(self, cfg: TopkConfig):
        self.cfg = cfg
        self.rows = math.ceil(cfg.capacity / cfg.lanes)
        self.drain = 3 + StagedStore.latency_of(cfg.lanes)  # the pivot stages, then Partition's
        super().__init__(stream_ports(cfg))

    def elaborate(self, platform):
        m = Module()
        cfg, lanes, rows, i = self.cfg, self.cfg.lanes, self.rows, self.i
        kw = cfg.width
        item = item_layout(cfg, kw)
        groups = address_groups(lanes)
        # the row store (block RAM) keeps the scores only, in row order (an input beat's
        # valid lanes are a prefix): the replay's read gets each index from its
        # position, row * P + bank (the row address as of the read), and its key from
        # its score after the read data's register
        m.submodules.row_store = row_store = StagedStore(score_shape(cfg), lanes, rows, 1,
                                                         groups, prefix=True, block_ram=True)
        stored = data.StructLayout({"value": score_shape(cfg),
                                    "index": item.members["index"]})
        m.submodules.replay = replay = Replayer(cfg, kw, rows, groups, stored,
                                                key_of=lambda x: sort_key(cfg, x.value))
        wiring.connect(m, replay.o, wiring.flipped(self.o))
        m.d.comb += [row_store.r_row[0].eq(replay.r_row), row_store.r_en[0].eq(replay.r_en)]
        read_row = stage(m, replay.r_row[0], replay.r_en, "read_row")
        for b, (x, score) in enumerate(zip(replay.r_data, row_store.r_data[0])):
            m.d.comb += [x.value.eq(score), x.index.eq(read_row * lanes + b)]

        state = Signal(State)
        in_row = Signal()
        n = Signal(range(cfg.capacity + 1))  # the row's elements so far (0 between rows)
        k = Signal(cfg.k_width)
        k_eff = Signal(cfg.k_width)
        rank = Signal(cfg.k_width)
        src_l = Signal()            # current candidates: L (else G)
        src_rows = Signal(range(rows + 1))
        src_tail = Signal(range(lanes + 1))
        src_count = Signal(range(lanes + 1))  # valid lanes of its first row
        # candidate rows (G or L)
        m.submodules.reader = reader = RowReader(lanes, rows, groups)
        m.d.comb += [reader.rows.eq(src_rows), reader.tail.eq(src_tail),
                     reader.go.eq(state == State.ROUND)]
        m.submodules.partition = part = Partition(cfg, rows, groups)

        # ---- the input register: an accepted beat, and whether it starts its row
        m.d.comb += i.ready.eq(state == State.INGEST)
        beat = Signal(i.payload.shape())
        took, took_first = Signal(), Signal()
        m.d.sync += [took.eq(i.valid & i.ready), took_first.eq(~in_row)]
        with m.If(i.valid & i.ready):
            m.d.sync += [beat.eq(i.payload), in_row.eq(~i.payload.last)]
            with m.If(i.payload.last):
                m.d.sync += state.eq(State.DRAIN)
        m.submodules.ingest = ingest = Ingest(cfg, kw)
        m.d.comb += [ingest.beat.eq(beat), ingest.n.eq(n)]
        ended = Signal()  # the row's last beat was taken in: k_eff and rank, then n = 0
        m.d.sync += ended.eq(took & beat.last)
        with m.If(took):
            m.d.sync += n.eq(ingest.n_next)
            with m.If(took_first):
                m.d.sync += k.eq(beat.k)
        with m.If(ended):
            m.d.sync += [k_eff.eq(Mux(k < n, k, n)), rank.eq(Mux(k < n, k, n)), n.eq(0)]

        # ---- the view register: the taken beat's row view; then the lanes register:
        # that view (round 1) or a candidate row (its keys: the partition's read
        # registers)
        lanes_in = data.StructLayout({"items": data.ArrayLayout(item, lanes), "live": lanes,
                                      "first": 1, "last": 1, "count": range(lanes + 1),
                                      "ingest": 1})
        view, cur = Signal(lanes_in), Signal(lanes_in)
        m.d.sync += [view.items.eq(ingest.items),
                     view.live.eq(ingest.valid & took.replicate(lanes)),
                     view.first.eq(took & took_first), view.last.eq(took & beat.last),
                     view.count.eq(beat.count), view.ingest.eq(took)]
        arrived = reader.inflight & (reader.row == src_rows)  # the round's last row
        with m.If(view.ingest):
            m.d.sync += cur.eq(view)
        with m.Else():
            m.d.sync += [cur.live.eq(reader.live),
                         cur.first.eq(reader.first), cur.last.eq(arrived),
                         cur.count.eq(src_count), cur.ingest.eq(0)]
        m.d.comb += [row_store.w_items.eq(Cat(x.value for x in cur.items)),
                     row_store.w_mask.eq(cur.live & cur.ingest.replicate(lanes)),
                     row_store.w_restart.eq(cur.first & cur.ingest)]
        m.submodules.pivot = pivot = Pivot(kw, lanes)
        keys = Cat(Mux(cur.ingest, x.key, read) for x, read in zip(cur.items, part.r_data))
        m.d.comb += [pivot.keys.eq(keys), pivot.count.eq(cur.count), pivot.draw.eq(cur.first)]
        m.d.comb += [part.keys.eq(delay(m, keys, 2, 1, "keys")),
                     part.live.eq(delay(m, cur.live, 2, 1, "live")),
                     part.first.eq(delay(m, cur.first, 2, 1, "first")),
                     part.pivot.eq(pivot.pivot), part.r_l.eq(src_l)]
        m.d.comb += [part.r_row[g].eq(reader.row_copies[g]) for g in range(groups)]
        landed = delay(m, cur.last, self.drain, 1, "landed")

        # ---- the schedule
        m.d.comb += [replay.base.eq(0), replay.rows.eq(row_store.w_rows),
                     replay.tail.eq(row_store.w_tail), replay.k_eff.eq(k_eff),
                     replay.theta.eq(pivot.pivot), replay.mask.eq((1 << kw) - 1),
                     replay.need.eq(rank - part.gt)]

        def go_round(side_l):
            side = (part.l_rows, part.l_tail) if side_l else (part.g_rows, part.g_tail)
            m.d.comb += reader.clear.eq(1)
            m.d.sync += [src_l.eq(side_l), src_rows.eq(side[0]), src_tail.eq(side[1]),
                         src_count.eq(Mux(side[0] == 1, side[1], lanes)),
                         state.eq(State.ROUND)]

        # the decision's compares, registered (the counts are final cycles before landing)
        nothing, in_g, at_pivot = Signal(), Signal(), Signal()
        m.d.sync += [nothing.eq(k_eff == 0), in_g.eq(rank <= part.gt),
                     at_pivot.eq(rank <= part.ge)]
        with m.Switch(state):
            with m.Case(State.ROUND):
                with m.If(arrived):
                    m.d.sync += state.eq(State.DRAIN)
            with m.Case(State.DRAIN):
                with m.If(landed):  # decide: the pass's last row has landed
                    with m.If(nothing):
                        m.d.comb += replay.start.eq(1)
                        m.d.sync += state.eq(State.REPLAY)
                    with m.Elif(in_g):
                        go_round(False)
                    with m.Elif(at_pivot):
                        m.d.comb += replay.start.eq(1)
                        m.d.sync += state.eq(State.REPLAY)
                    with m.Else():
                        m.d.sync += rank.eq(rank - part.ge)
                        go_round(True)
            with m.Case(State.REPLAY):
                with m.If(~replay.busy):
                    m.d.sync += state.eq(State.INGEST)
        return m
