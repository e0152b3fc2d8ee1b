"""Lane-parallel building blocks: popcount, zero-elimination into banked stores, and a
slot queue that turns compacted lane groups back into P-wide stream beats.

Item positions: a store of P banks holds item q in bank q mod P, row q div P. A push of
the masked lanes of one beat at write pointer (row, off) compacts them (SpAtten's
zero-eliminator) and routes the j-th kept lane to position row*P + off + j, so every
bank is written at most once per cycle and rows can be read back P items at a time,
in order, with no rotation. ``lanes`` need not be a power of two.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out


def popcount(bits) -> Value:
    """Number of set bits, as a balanced adder tree."""
    terms = [Value.cast(b).as_unsigned() for b in bits] or [Const(0, 1)]
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]


def scan(items: list, combine, stage=None) -> list:
    """Inclusive prefix scan ``out[i]`` = items[0] o ... o items[i] for an associative
    ``combine(earlier, later)``: a Sklansky network (ceil(log2 n) levels, n/2 operators
    per level). ``stage(level, items)``, when given, returns the items after each level
    (a pipelined scan registers some of them)."""
    items, level = list(items), 0
    while (1 << level) < len(items):
        items = [combine(items[((i >> level) << level) - 1], items[i]) if (i >> level) & 1
                 else items[i] for i in range(len(items))]
        if stage is not None:
            items = stage(level, items)
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


def network_levels(lanes: int) -> int:
    """Levels of the zero-eliminator and of the rotator of :class:`Route` on P lanes."""
    return max(1, (lanes - 1).bit_length())


def eliminate_level(m: Module, lane: list, level: int) -> list:
    """One level of SpAtten's zero-eliminator on (kept, dropped lanes before it, item)
    per lane: a kept lane moves down by 2^level when that bit of its drop count is set."""
    lanes, step, nxt = len(lane), 1 << level, []
    width = len(lane[0][2])
    for p in range(lanes):
        stay_kept, stay_drop, stay_item = lane[p]
        stay = stay_kept & ~stay_drop[level] if level < len(stay_drop) else stay_kept
        if p + step < lanes:
            come_kept, come_drop, come_item = lane[p + step]
            come = come_kept & come_drop[level] if level < len(come_drop) else Const(0)
        else:
            come, come_drop, come_item = Const(0), stay_drop, stay_item
        kept = Signal(name=f"z{level}_k{p}")  # pragma: no mutate
        drop = Signal.like(stay_drop, name=f"z{level}_d{p}")  # pragma: no mutate
        item = Signal(width, name=f"z{level}_i{p}")  # pragma: no mutate
        m.d.comb += [kept.eq(come | stay), drop.eq(Mux(come, come_drop, stay_drop)),
                     item.eq(Mux(come, come_item, stay_item))]
        nxt.append((kept, drop, item))
    return nxt


def rotate_level(m: Module, packed: list, level: int, off) -> list:
    """One level of the barrel rotator on (kept, item) per lane: lane b takes lane
    b - 2^level (mod P) when that bit of ``off`` is set."""
    lanes, turned = len(packed), []
    step = (1 << level) % lanes
    width = len(packed[0][1])
    for b in range(lanes):
        kept, item = packed[b]
        from_kept, from_item = packed[(b - step) % lanes]
        k = Signal(name=f"r{level}_k{b}")  # pragma: no mutate
        d = Signal(width, name=f"r{level}_i{b}")  # pragma: no mutate
        bit = off[level] if level < len(off) else Const(0)
        m.d.comb += [k.eq(Mux(bit, from_kept, kept)), d.eq(Mux(bit, from_item, item))]
        turned.append((k, d))
    return turned


class Route(wiring.Component):
    """Where each lane of a masked push lands: per bank, its enable (``en``), item
    (``data``), and whether it lands in the pointer's next row (``wrap``, bank < ``off``);
    ``count`` = lanes kept. Combinational.

    Two log-depth networks (2 * ceil(log2 P) multiplexer levels, no P x P crossbar):
    SpAtten's zero-eliminator moves each kept lane down by the number of dropped lanes
    before it, one bit of that count per level, lowest bit first (two kept lanes never
    meet); a barrel rotator then turns compacted lane j into bank (off + j) mod P.
    """

    def __init__(self, item_shape, lanes: int):
        self.item_shape, self.lanes = item_shape, lanes
        super().__init__({"items": In(data.ArrayLayout(item_shape, lanes)), "mask": In(lanes),
                          "off": In(range(max(2, lanes))), "count": Out(range(lanes + 1)),
                          "en": Out(lanes), "data": Out(data.ArrayLayout(item_shape, lanes)),
                          "wrap": Out(lanes)})

    def elaborate(self, platform):
        m = Module()
        lanes, mask = self.lanes, self.mask
        m.d.comb += self.count.eq(popcount(mask))
        levels = network_levels(lanes)
        drops = prefix_counts(m, [~mask[i] for i in range(lanes)], "drop")
        lane = [(mask[i], drops[i], Value.cast(self.items[i])) for i in range(lanes)]
        for level in range(levels):
            lane = eliminate_level(m, lane, level)
        packed = [(kept, item) for kept, _, item in lane]
        for level in range(levels):
            packed = rotate_level(m, packed, level, self.off)
        m.d.comb += [self.en.eq(Cat(k for k, _ in packed)),
                     self.wrap.eq(Cat(b < self.off for b in range(lanes)))]
        m.d.comb += [self.data[b].eq(d) for b, (_, d) in enumerate(packed)]
        return m


def kept_copies(m: Module, value, count: int, name: str) -> list[Signal]:
    """``count`` registers of ``value`` (``name`` + index), marked ``keep`` so that
    synthesis does not merge them back: each drives a share of ``value``'s loads."""
    value = Value.cast(value)
    copies = [Signal(value.shape(), name=f"{name}{c}", attrs={"keep": 1})  # pragma: no mutate
              for c in range(count)]
    m.d.sync += [copy.eq(value) for copy in copies]
    return copies


def copied_register(m: Module, shape, count: int, name: str) -> tuple[Signal, list[Signal]]:
    """One register kept as ``count`` :func:`kept_copies` that load together: its next
    value (it holds unless a ``comb`` assignment drives another) and the copies, the
    first standing for the register itself."""
    next_value = Signal(shape, name=f"{name}_next")  # pragma: no mutate
    copies = kept_copies(m, next_value, count, name)
    m.d.comb += next_value.eq(copies[0])
    return next_value, copies


def address_groups(lanes: int) -> int:
    """Copies of a read address that a P-bank reader drives, one per four banks: each
    copy is a register near its banks, so no address net crosses the whole device."""
    return max(1, lanes // 4)


def read_ports(item_shape, lanes: int, rows: int, readers: int, groups: int = 1) -> dict:
    """A P-bank store's read ports: row ``r_row[j]`` arrives on ``r_data[j]`` one cycle
    later; a port whose ``r_en[j]`` is low (all are high if not driven) holds the row it
    read last. ``r_row[j]`` holds ``groups`` copies of the address, copy g addressing
    banks g P / groups onwards (:func:`bank_row`): a reader with one address gives
    each copy the same value."""
    return {"r_row": In(data.ArrayLayout(data.ArrayLayout(range(rows), groups), readers)),
            "r_en": In(readers, init=(1 << readers) - 1),
            "r_data": Out(data.ArrayLayout(data.ArrayLayout(item_shape, lanes), readers))}


def bank_row(store, j: int, b: int) -> Value:
    """The copy of read port ``j``'s address that bank ``b`` of ``store`` reads."""
    return store.r_row[j][b * store.groups // store.lanes]


class BankedStore(wiring.Component):
    """P memories of ``rows`` rows each; one compacting write port and ``readers`` read
    ports that return a whole row (P items, in position order) one cycle after its
    address (:func:`read_ports`, in ``groups`` copies).

    Write: set ``w_row``/``w_off`` (the pointer), ``w_items`` and ``w_mask``; the kept
    lanes are written in the same cycle (through a :class:`Route`) and ``w_count`` says
    how many.
    """

    def __init__(self, item_shape, lanes: int, rows: int, readers: int, groups: int = 1):
        rows = max(2, rows)  # no zero-width addresses in the Verilog
        self.item_shape, self.lanes, self.rows, self.readers = item_shape, lanes, rows, readers
        self.groups = groups
        super().__init__({
            "w_row": In(range(rows + 1)), "w_off": In(range(max(2, lanes))),
            "w_items": In(data.ArrayLayout(item_shape, lanes)), "w_mask": In(lanes),
            "w_count": Out(range(lanes + 1)),
            **read_ports(item_shape, lanes, rows, readers, groups)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.route = route = Route(self.item_shape, self.lanes)
        m.d.comb += [route.items.eq(self.w_items), route.mask.eq(self.w_mask),
                     route.off.eq(self.w_off), self.w_count.eq(route.count)]
        write_banks(m, self, self.w_row, route)
        return m


def bank_memory(shape, depth: int, *, block_ram: bool = False,
                no_rw_check: bool = False) -> memory.Memory:
    """One bank of a P-bank store. ``block_ram``: marked for block RAM (``ram_style``),
    which synthesis otherwise skips for small memories (their LUT RAM costs LUTs and a
    read multiplexer). ``no_rw_check``: the owner never uses a row read in the cycle it
    is written, so synthesis adds no collision logic after the read (synth/flow.py's
    ``NO_RW_CHECK``)."""
    attrs = {**({"ram_style": "block"} if block_ram else {}),
             **({"no_rw_check": 1} if no_rw_check else {})}
    return memory.Memory(shape=shape, depth=depth, init=[], attrs=attrs or None)


def write_banks(m: Module, store, w_row, route, block_ram: bool = False):
    """The P memories of ``store`` (a store component with ``item_shape``, ``lanes``,
    ``rows``, ``readers`` and :func:`read_ports`): bank b writes ``route.data[b]`` at row
    ``w_row`` (the next row where ``route.wrap[b]``) when ``route.en[b]``; each read port
    returns its row one cycle after its address, and holds it while its ``r_en`` is
    low. ``block_ram``: the banks are block RAM whose owner never uses a row read in the
    cycle it is written (:func:`bank_memory`'s ``block_ram`` and ``no_rw_check``)."""
    for b in range(store.lanes):
        mem = bank_memory(store.item_shape, store.rows, block_ram=block_ram,
                          no_rw_check=block_ram)
        m.submodules[f"bank{b}"] = mem
        wp = mem.write_port()
        m.d.comb += [wp.addr.eq(w_row + route.wrap[b]), wp.data.eq(route.data[b]),
                     wp.en.eq(route.en[b])]
        for j in range(store.readers):
            rp = mem.read_port(transparent_for=())
            m.d.comb += [rp.addr.eq(bank_row(store, j, b)), rp.en.eq(store.r_en[j]),
                         store.r_data[j][b].eq(rp.data)]


class RowReader(wiring.Component):
    """Reads rows 0 .. ``rows``-1 of a store in order, one per cycle while ``go`` is high.

    ``row`` is the row to address now (``issue`` when it is read); its data arrives the
    next cycle, when ``live`` marks the lanes holding items (P, or ``tail`` in the final
    row) and ``first`` is set for row 0. ``finished``: every row read, none in flight.
    ``clear`` restarts at row 0 and drops the row in flight. ``row_copies``: ``groups``
    registers equal to ``row``, for a store's address groups (:func:`read_ports`).
    """

    def __init__(self, lanes: int, rows: int, groups: int = 1):
        self.lanes, self.groups = lanes, groups
        super().__init__({"rows": In(range(rows + 1)), "tail": In(range(lanes + 1)),
                          "go": In(1), "clear": In(1), "row": Out(range(rows + 1)),
                          "row_copies": Out(data.ArrayLayout(range(rows + 1), groups)),
                          "issue": Out(1), "inflight": Out(1), "first": Out(1),
                          "live": Out(lanes), "finished": Out(1)})

    def elaborate(self, platform):
        m = Module()
        lanes = self.lanes
        inflight_lanes = Signal(range(lanes + 1))
        m.d.comb += [self.issue.eq(self.go & (self.row < self.rows)),
                     self.finished.eq(~self.inflight & (self.row == self.rows))]
        m.d.comb += [self.live[j].eq(self.inflight & (j < inflight_lanes)) for j in range(lanes)]
        m.d.sync += [self.inflight.eq(self.issue), self.first.eq(self.issue & (self.row == 0))]
        next_row, copies = copied_register(m, self.row.shape(), self.groups, "row_g")
        with m.If(self.issue):
            m.d.comb += next_row.eq(self.row + 1)
            m.d.sync += inflight_lanes.eq(Mux(self.row + 1 == self.rows, self.tail, lanes))
        with m.If(self.clear):
            m.d.comb += next_row.eq(0)
            m.d.sync += [self.inflight.eq(0), self.first.eq(0)]
        m.d.comb += [self.row.eq(copies[0]), self.row_copies.eq(Cat(copies))]
        return m


class SlotQueue(wiring.Component):
    """A small queue of P-item slots between a compacting writer and a P-lane output
    stream. Each group of rows is padded to a slot boundary, so an output beat never
    mixes two rows; the final slot of a row carries ``last`` and its item count.

    Writer: ``room`` is high when at most one slot is occupied beyond the one being
    filled, so a push issued now and one already in flight both fit. ``push_mask``
    selects lanes of ``push_items``, written where ``push`` is high (it is if not
    driven: a writer whose items and mask are registers and whose decision to push is
    late gives it apart); ``push_final`` closes the row after this push (a final push
    of no items at a slot boundary adds a slot of count 0 with ``last``).
    Reader: the stream ``o`` of the owner's beat layout ``beat`` (its array of items in
    the field ``items``, and ``count`` and ``last``): the head slot, stable until taken.
    """

    SLOTS = 4

    def __init__(self, beat: data.StructLayout, items: str):
        self.beat, self.items_field = beat, items
        self.item_shape = beat.members[items].elem_shape
        self.lanes = lanes = beat.members[items].length
        super().__init__({"push_items": In(data.ArrayLayout(self.item_shape, lanes)),
                          "push_mask": In(lanes), "push": In(1, init=1), "push_final": In(1),
                          "room": Out(1),
                          "o": Out(stream.Signature(beat))})

    def elaborate(self, platform):
        m = Module()
        n, lanes = self.SLOTS, self.lanes
        ptr = range(2 * n)
        wrow, rrow = Signal(ptr), Signal(ptr)
        off = Signal(range(max(2, lanes)))
        slots = Slots(self.item_shape, lanes, n)
        m.d.comb += self.room.eq(slots.used(wrow, rrow) <= 1)

        m.submodules.route = route = Route(self.item_shape, lanes)
        m.d.comb += [route.items.eq(self.push_items), route.mask.eq(self.push_mask),
                     route.off.eq(off)]
        head = wrow[:-1]  # slot index (SLOTS is a power of two; the top bit tells full/empty)
        slots.fill(m, head, route.en & self.push.replicate(lanes), route.wrap, route.data)
        count = Mux(self.push, route.count, 0)

        filled = Signal(range(2 * lanes))
        m.d.comb += filled.eq(off + count)
        new_row = Signal(ptr)
        new_off = Signal(range(max(2, lanes)))
        crossed = filled >= lanes
        m.d.comb += [new_row.eq(Mux(crossed, slots.wrapped(wrow + 1), wrow)),
                     new_off.eq(Mux(crossed, filled - lanes, filled))]
        with m.If(crossed):
            slots.close(m, head, lanes, 0)
        # a final push of no items at a slot boundary closes the row with an empty
        # slot (count 0, last): the previous slot may already be read
        ends_full = (new_off == 0) & (count != 0)
        with m.If(self.push_final):
            # close the row: the slot holding its final item gets last and its count
            fin = Mux(ends_full, slots.wrapped(new_row + 2 * n - 1), new_row)[:len(head)]
            slots.close(m, fin, Mux(ends_full, lanes, new_off), 1)
            m.d.sync += [wrow.eq(Mux(ends_full, new_row, slots.wrapped(new_row + 1))), off.eq(0)]
        with m.Else():
            m.d.sync += [wrow.eq(new_row), off.eq(new_off)]
        slots.serve(m, self.o, self.items_field, rrow != wrow, rrow)
        return m


class Slots:
    """The slot registers of a queue of ``n`` (a power of two) P-item slots, addressed
    by pointers of range 2n (the top bit tells full from empty), and their read side."""

    def __init__(self, item_shape, lanes: int, n: int):
        self.n, self.lanes = n, lanes
        self.items = [[Signal(item_shape, name=f"s{s}_item{i}", reset_less=True)  # pragma: no mutate
                       for i in range(lanes)] for s in range(n)]
        self.count = [Signal(range(lanes + 1), name=f"s{s}_count", reset_less=True)  # pragma: no mutate
                      for s in range(n)]
        self.last = [Signal(name=f"s{s}_last", reset_less=True) for s in range(n)]  # pragma: no mutate

    def wrapped(self, x):
        """A pointer sum back in range 2n."""
        return Mux(x >= 2 * self.n, x - 2 * self.n, x)

    def used(self, wrow, rrow):
        """Slots written and not yet read."""
        return self.wrapped(wrow + 2 * self.n - rrow)

    def fill(self, m: Module, head, en, wrap, items):
        """Writes bank b's item of a routed push (enable ``en``) into slot ``head``, or
        the next slot where ``wrap``."""
        nxt = (head + 1)[:len(head)]
        for s in range(self.n):
            for b in range(self.lanes):
                with m.If(en[b] & (Mux(wrap[b], nxt, head) == s)):
                    m.d.sync += self.items[s][b].eq(items[b])

    def close(self, m: Module, slot, count, last):
        """Sets slot ``slot``'s item count and last flag."""
        for s in range(self.n):
            with m.If(slot == s):
                m.d.sync += [self.count[s].eq(count), self.last[s].eq(last)]

    def serve(self, m: Module, o, field: str, valid, rrow):
        """Stream ``o``: the slot at ``rrow`` while ``valid`` (slots are written and
        not read), stable until taken; ``rrow`` steps when it is."""
        rhead = rrow[:len(rrow) - 1]
        m.d.comb += o.valid.eq(valid)
        m.d.comb += [o.payload.count.eq(pick(rhead, self.count)),
                     o.payload.last.eq(pick(rhead, self.last))]
        m.d.comb += [o.payload[field][i].eq(pick(rhead, [self.items[s][i] for s in range(self.n)]))
                     for i in range(self.lanes)]
        with m.If(o.valid & o.ready):
            m.d.sync += rrow.eq(self.wrapped(rrow + 1))


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
