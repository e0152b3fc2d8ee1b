"""Lane-parallel building blocks: popcount, zero-elimination into banked stores, and a
slot queue that turns compacted lane groups back into P-wide stream beats.

Item positions: a store of P banks holds item q in bank q mod P, row q div P. A push of
the masked lanes of one beat at write pointer (row, off) compacts them (SpAtten's
zero-eliminator) and routes the j-th kept lane to position row*P + off + j, so every
bank is written at most once per cycle and rows can be read back P items at a time,
in order, with no rotation. ``lanes`` need not be a power of two.
"""
from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, Value
from amaranth.lib import memory


def popcount(bits) -> Value:
    """Number of set bits, as a balanced adder tree."""
    terms = [Value.cast(b).as_unsigned() for b in bits] or [Const(0, 1)]
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]


def scan(items: list, combine) -> list:
    """Inclusive prefix scan ``out[i]`` = items[0] o ... o items[i] for an associative
    ``combine(earlier, later)``: a Sklansky network (ceil(log2 n) levels, n/2 operators
    per level)."""
    items, level = list(items), 0
    while (1 << level) < len(items):
        items = [combine(items[((i >> level) << level) - 1], items[i]) if (i >> level) & 1
                 else items[i] for i in range(len(items))]
        level += 1
    return items


def inclusive_sums(values, width: int) -> list[Value]:
    """``out[i]`` = values[0] + ... + values[i], truncated to ``width`` bits."""
    return scan([Value.cast(v).as_unsigned() for v in values],
                lambda a, b: (a + b)[:width])


def prefix_counts(m: Module, bits, name: str) -> list[Signal]:
    """``out[i]`` = set bits among ``bits[:i]`` (combinational, log-depth)."""
    lanes = len(bits)
    sums = inclusive_sums(bits, lanes.bit_length())
    out = [Signal(range(lanes + 1), name=f"{name}_pre{i}") for i in range(lanes)]
    m.d.comb += [out[0].eq(0)] + [out[i].eq(sums[i - 1]) for i in range(1, lanes)]
    return out


class Route:
    """Where each lane of a masked push lands: per bank, its enable, data, and whether it
    lands in the pointer's next row (``wrap``); ``count`` = lanes kept.

    Two log-depth networks (2 * ceil(log2 P) multiplexer levels, no P x P crossbar):
    SpAtten's zero-eliminator moves each kept lane down by the number of dropped lanes
    before it, one bit of that count per level, lowest bit first (two kept lanes never
    meet); a barrel rotator then turns compacted lane j into bank (off + j) mod P.
    """

    def __init__(self, m: Module, items, mask, off: Value, lanes: int, name: str):
        self.count = Signal(range(lanes + 1), name=f"{name}_count")
        m.d.comb += self.count.eq(popcount(mask))
        levels = max(1, (lanes - 1).bit_length())
        width = len(Value.cast(items[0]))
        # per lane: (kept, dropped lanes before it, item)
        drops = prefix_counts(m, [~mask[i] for i in range(lanes)], f"{name}_drop")
        lane = [(mask[i], drops[i], Value.cast(items[i])) for i in range(lanes)]
        for level in range(levels):
            step, nxt = 1 << level, []
            for p in range(lanes):
                stay_kept, stay_drop, stay_item = lane[p]
                stay = stay_kept & ~stay_drop[level] if level < len(stay_drop) else stay_kept
                if p + step < lanes:
                    come_kept, come_drop, come_item = lane[p + step]
                    come = come_kept & come_drop[level] if level < len(come_drop) else Const(0)
                else:
                    come, come_drop, come_item = Const(0), stay_drop, stay_item
                kept = Signal(name=f"{name}_z{level}_k{p}")
                drop = Signal.like(drops[0], name=f"{name}_z{level}_d{p}")
                item = Signal(width, name=f"{name}_z{level}_i{p}")
                m.d.comb += [kept.eq(come | stay), drop.eq(Mux(come, come_drop, stay_drop)),
                             item.eq(Mux(come, come_item, stay_item))]
                nxt.append((kept, drop, item))
            lane = nxt
        packed = [(kept, item) for kept, _, item in lane]
        for level in range(levels):
            step = (1 << level) % lanes
            turned = []
            for b in range(lanes):
                kept, item = packed[b]
                from_kept, from_item = packed[(b - step) % lanes]
                k = Signal(name=f"{name}_r{level}_k{b}")
                d = Signal(width, name=f"{name}_r{level}_i{b}")
                bit = off[level] if level < len(off) else Const(0)
                m.d.comb += [k.eq(Mux(bit, from_kept, kept)), d.eq(Mux(bit, from_item, item))]
                turned.append((k, d))
            packed = turned
        self.en = [k for k, _ in packed]
        self.data = [d for _, d in packed]
        self.wrap = [b < off for b in range(lanes)]


class BankedStore:
    """P memories of ``rows`` rows each; one compacting write port and ``readers`` read
    ports that return a whole row (P items, in position order) one cycle after its
    address.

    Write: set ``w_row``/``w_off`` (the pointer), ``w_items`` and ``w_mask``; the kept
    lanes are written in the same cycle and ``w_count`` says how many.
    """

    def __init__(self, item_shape, lanes: int, rows: int, readers: int, name: str):
        rows = max(2, rows)  # no zero-width addresses in the Verilog
        self.item_shape, self.lanes, self.rows, self.name = item_shape, lanes, rows, name
        self.w_row = Signal(range(rows + 1), name=f"{name}_w_row")
        self.w_off = Signal(range(max(2, lanes)), name=f"{name}_w_off")
        self.w_items = [Signal(item_shape, name=f"{name}_w_item{i}") for i in range(lanes)]
        self.w_mask = Signal(lanes, name=f"{name}_w_mask")
        self.w_count = Signal(range(lanes + 1), name=f"{name}_w_count")
        self.r_row = [Signal(range(rows), name=f"{name}_r{j}_row") for j in range(readers)]
        self.r_data = [[Signal(item_shape, name=f"{name}_r{j}_item{i}") for i in range(lanes)]
                       for j in range(readers)]

    def elaborate(self, m: Module) -> None:
        """Add the memories and routing to ``m`` (a store is part of its owner's module)."""
        route = Route(m, self.w_items, self.w_mask, self.w_off, self.lanes, f"{self.name}_wr")
        m.d.comb += self.w_count.eq(route.count)
        for b in range(self.lanes):
            mem = memory.Memory(shape=self.item_shape, depth=self.rows, init=[])
            m.submodules[f"{self.name}_bank{b}"] = mem
            wp = mem.write_port()
            m.d.comb += [wp.addr.eq(self.w_row + route.wrap[b]), wp.data.eq(route.data[b]),
                         wp.en.eq(route.en[b])]
            for j, row in enumerate(self.r_row):
                rp = mem.read_port(transparent_for=())
                m.d.comb += [rp.addr.eq(row), self.r_data[j][b].eq(rp.data)]


class RowReader:
    """Reads rows 0 .. ``rows``-1 of a store in order, one per cycle while ``go`` is high.

    ``row`` is the row to address now (``issue`` when it is read); its data arrives the
    next cycle, when ``live`` marks the lanes holding items (P, or ``tail`` in the final
    row) and ``first`` is set for row 0. ``finished``: every row read, none in flight.
    ``clear`` restarts at row 0 and drops the row in flight.
    """

    def __init__(self, lanes: int, rows: int, name: str):
        self.lanes, self.name = lanes, name
        self.rows = Signal(range(rows + 1), name=f"{name}_rows")
        self.tail = Signal(range(lanes + 1), name=f"{name}_tail")
        self.go = Signal(name=f"{name}_go")
        self.clear = Signal(name=f"{name}_clear")
        self.row = Signal(range(rows + 1), name=f"{name}_row")
        self.issue = Signal(name=f"{name}_issue")
        self.inflight = Signal(name=f"{name}_inflight")
        self.first = Signal(name=f"{name}_first")
        self.live = Signal(lanes, name=f"{name}_live")
        self.finished = Signal(name=f"{name}_finished")

    def elaborate(self, m: Module) -> None:
        lanes = self.lanes
        inflight_lanes = Signal(range(lanes + 1), name=f"{self.name}_inflight_lanes")
        m.d.comb += [self.issue.eq(self.go & (self.row < self.rows)),
                     self.finished.eq(~self.inflight & (self.row == self.rows))]
        m.d.comb += [self.live[j].eq(self.inflight & (j < inflight_lanes)) for j in range(lanes)]
        m.d.sync += [self.inflight.eq(self.issue), self.first.eq(self.issue & (self.row == 0))]
        with m.If(self.issue):
            m.d.sync += [self.row.eq(self.row + 1),
                         inflight_lanes.eq(Mux(self.row + 1 == self.rows, self.tail, lanes))]
        with m.If(self.clear):
            m.d.sync += [self.row.eq(0), self.inflight.eq(0), self.first.eq(0)]


class SlotQueue:
    """A small queue of P-item slots between a compacting writer and a P-lane output
    stream. Each group of rows is padded to a slot boundary, so an output beat never
    mixes two rows; the final slot of a row carries ``last`` and its item count.

    Writer: ``room`` is high when at most one slot is occupied beyond the one being
    filled, so a push issued now and one already in flight both fit. ``push_mask``
    selects lanes of ``push_items``; ``push_final`` closes the row after this push (a
    final push of no items at a slot boundary adds a slot of count 0 with ``last``).
    Reader: ``valid``/``ready``; ``items``, ``count``, ``last`` describe the head slot
    and stay stable until it is taken.
    """

    SLOTS = 4

    def __init__(self, item_shape, lanes: int, name: str = "q"):
        self.item_shape, self.lanes, self.name = item_shape, lanes, name
        self.push_items = [Signal(item_shape, name=f"{name}_push_item{i}") for i in range(lanes)]
        self.push_mask = Signal(lanes, name=f"{name}_push_mask")
        self.push_final = Signal(name=f"{name}_push_final")
        self.room = Signal(name=f"{name}_room")
        self.valid = Signal(name=f"{name}_valid")
        self.ready = Signal(name=f"{name}_ready")
        self.items = [Signal(item_shape, name=f"{name}_item{i}") for i in range(lanes)]
        self.count = Signal(range(lanes + 1), name=f"{name}_count")
        self.last = Signal(name=f"{name}_last")

    def elaborate(self, m: Module) -> None:
        n, lanes, name = self.SLOTS, self.lanes, self.name
        ptr = range(2 * n)
        wrow, rrow = Signal(ptr, name=f"{name}_wrow"), Signal(ptr, name=f"{name}_rrow")
        off = Signal(range(max(2, lanes)), name=f"{name}_off")
        slot_items = [[Signal(self.item_shape, name=f"{name}_s{s}_item{i}", reset_less=True)
                       for i in range(lanes)] for s in range(n)]
        slot_count = [Signal(range(lanes + 1), name=f"{name}_s{s}_count", reset_less=True)
                      for s in range(n)]
        slot_last = [Signal(name=f"{name}_s{s}_last", reset_less=True) for s in range(n)]

        def wrapped(x):
            return Mux(x >= 2 * n, x - 2 * n, x)

        used = Signal(range(2 * n + 1), name=f"{name}_used")
        m.d.comb += [used.eq(wrapped(wrow + 2 * n - rrow)), self.room.eq(used <= 1)]

        route = Route(m, self.push_items, self.push_mask, off, lanes, f"{name}_wr")
        head = wrow[:-1]  # slot index (SLOTS is a power of two; the top bit tells full/empty)
        nxt = (wrow + 1)[:len(head)]
        for s in range(n):
            for b in range(lanes):
                slot = Mux(route.wrap[b], nxt, head)
                with m.If(route.en[b] & (slot == s)):
                    m.d.sync += slot_items[s][b].eq(route.data[b])

        filled = Signal(range(2 * lanes), name=f"{name}_filled")
        m.d.comb += filled.eq(off + route.count)
        new_row = Signal(ptr, name=f"{name}_new_row")
        new_off = Signal(range(max(2, lanes)), name=f"{name}_new_off")
        crossed = filled >= lanes
        m.d.comb += [new_row.eq(Mux(crossed, wrapped(wrow + 1), wrow)),
                     new_off.eq(Mux(crossed, filled - lanes, filled))]
        with m.If(crossed):
            for s in range(n):
                with m.If(head == s):
                    m.d.sync += [slot_count[s].eq(lanes), slot_last[s].eq(0)]
        # a final push of no items at a slot boundary closes the row with an empty
        # slot (count 0, last): the previous slot may already be read
        ends_full = (new_off == 0) & (route.count != 0)
        with m.If(self.push_final):
            # close the row: the slot holding its final item gets last and its count
            fin = Mux(ends_full, wrapped(new_row + 2 * n - 1), new_row)[:len(head)]
            for s in range(n):
                with m.If(fin == s):
                    m.d.sync += [slot_count[s].eq(Mux(ends_full, lanes, new_off)),
                                 slot_last[s].eq(1)]
            m.d.sync += [wrow.eq(Mux(ends_full, new_row, wrapped(new_row + 1))), off.eq(0)]
        with m.Else():
            m.d.sync += [wrow.eq(new_row), off.eq(new_off)]

        rhead = rrow[:len(head)]
        m.d.comb += self.valid.eq(rrow != wrow)
        m.d.comb += [self.count.eq(pick(rhead, slot_count)), self.last.eq(pick(rhead, slot_last))]
        m.d.comb += [self.items[i].eq(pick(rhead, [slot_items[s][i] for s in range(n)]))
                     for i in range(lanes)]
        with m.If(self.valid & self.ready):
            m.d.sync += rrow.eq(wrapped(rrow + 1))


def advance(row, off, count, lanes: int):
    """The write pointer (row, off) moved on by ``count`` <= P items."""
    filled = off + count
    crossed = filled >= lanes
    return Mux(crossed, row + 1, row), Mux(crossed, filled - lanes, filled)


def pick(index, values) -> Value:
    """``values[index]`` as a balanced tree of multiplexers on the bits of ``index``
    (a continuous assignment, so it has a value from time zero even in simulators that
    never start an idle ``always @*``)."""
    index, level, bit = Value.cast(index), [Value.cast(v) for v in values], 0
    while len(level) > 1 and bit < len(index):
        if len(level) % 2:
            level.append(level[-1])
        level = [Mux(index[bit], level[i + 1], level[i]) for i in range(0, len(level), 2)]
        bit += 1
    return level[0]


def onehot_select(onehot, values) -> Value:
    """The value whose select bit is set (at most one is), as a balanced OR tree."""
    terms = [Mux(sel, value, 0) for sel, value in zip(onehot, values)]
    while len(terms) > 1:
        terms = [terms[i] | terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]
