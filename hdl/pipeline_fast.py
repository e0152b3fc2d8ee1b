"""Registered building blocks of the fast top-k engine's pipelines: delay lines,
log-depth reductions and a compacting bank writer with a register every two of their
layers, so each stage is a few LUT levels deep (docs/timing.md)."""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from . import pipeline
from .lanes import advance, bank_memory, bank_row, inclusive_sums, popcount, read_ports


def delay(m: Module, value, cycles: int, name: str) -> Value:
    """``value`` as it was ``cycles`` cycles ago (:func:`hdl.pipeline.delay`, always
    advancing)."""
    return pipeline.delay(m, value, cycles, 1, name)


def registered(m: Module, values: list, name: str) -> list[Signal]:
    """Each of ``values`` through one register (:func:`hdl.pipeline.stage`, always
    advancing)."""
    return [pipeline.stage(m, v, 1, f"{name}{i}") for i, v in enumerate(values)]


def staged_reduce(m: Module, items: list, combine, name: str,
                  last: int = 1) -> tuple[list[Value], int]:
    """``items`` combined in balanced trees, four per registered stage (two layers),
    until at most ``last`` are left; returns them and the number of stages."""
    items, stages = [Value.cast(v) for v in items], 0
    while len(items) > last:
        groups = [items[i:i + 4] for i in range(0, len(items), 4)]
        sums = []
        for group in groups:
            while len(group) > 1:
                group = [combine(group[i], group[i + 1]) if i + 1 < len(group) else group[i]
                         for i in range(0, len(group), 2)]
            sums.append(group[0])
        items, stages = registered(m, sums, f"{name}{stages}_"), stages + 1
    return items, stages


def compactor_latency(lanes: int) -> int:
    """Cycles from a push to its writes in :class:`Compactor`."""
    return 3 + 2 * -(-max(1, (lanes - 1).bit_length()) // 2)


class Compactor(wiring.Component):
    """Writes the ``mask`` lanes of a group of P items compacted, in order, at a write
    pointer it keeps (restarting at row 0 with ``restart``) into P banks: position q of
    the group's row region goes to bank q mod P, row ``base`` + q div P (SpAtten's
    zero-eliminator, then a rotator by the pointer's offset).

    Registered stages: per four lanes, the kept and dropped lanes and the dropped lanes
    before each; the dropped lanes of the fours before each four, and the kept lanes of
    each half; the count of the kept lanes and of the dropped lanes before each lane; the pointer (``rows``, ``tail``: its extent,
    from the next cycle) and the first two zero-elimination layers; further layers two
    per stage, then the rotation two layers per stage, with each bank's row. A group
    presented in cycle t is written (``en``, ``addr``, ``data``) in cycle t +
    ``latency`` (:func:`compactor_latency`); its extent shows from cycle t +
    ``extent_latency`` (4).
    """

    extent_latency = 4

    def __init__(self, item_shape, lanes: int, rows: int):
        self.item_shape, self.lanes = item_shape, lanes
        self.layers = max(1, (lanes - 1).bit_length())
        self.latency = compactor_latency(lanes)
        super().__init__({
            "items": In(data.ArrayLayout(item_shape, lanes)), "mask": In(lanes),
            "restart": In(1), "base": In(range(rows)),
            "en": Out(lanes), "addr": Out(data.ArrayLayout(range(rows), lanes)),
            "data": Out(data.ArrayLayout(item_shape, lanes)),
            "rows": Out(range(rows + 1)), "tail": Out(range(lanes + 1))})

    def elaborate(self, platform):
        m = Module()
        lanes, layers = self.lanes, self.layers
        # the dropped lanes before each lane: within its four, then the fours before
        quads = [range(q, min(q + 4, lanes)) for q in range(0, lanes, 4)]
        mask = self.mask
        width = lanes.bit_length()
        local = registered(m, [popcount([~mask[j] for j in quads[i // 4] if j < i])
                                for i in range(lanes)], "local")
        dropped = registered(m, [popcount([~mask[j] for j in quad]) for quad in quads], "dropped")
        kept_in = registered(m, [popcount([mask[j] for j in quad]) for quad in quads], "kept_in")
        # the dropped lanes of the fours before each four; the kept lanes of each half
        before = [Const(0)] + registered(m, inclusive_sums(dropped, width)[:-1], "before")
        half = (len(kept_in) + 1) // 2
        halves = registered(m, [sum(kept_in[:half]), sum(kept_in[half:])], "halves")
        local = [delay(m, x, 1, f"local{i}_d") for i, x in enumerate(local)]
        drops = registered(m, [(local[i] + before[i // 4])[:width] for i in range(lanes)], "drops")
        count = registered(m, [(halves[0] + halves[1])[:width]], "count")[0]
        kept = registered(m, list(delay(m, mask, 2, "mask")), "kept")
        items = [delay(m, Value.cast(x), 3, f"item{i}") for i, x in enumerate(self.items)]
        restart, base = delay(m, self.restart, 3, "restart"), delay(m, self.base, 3, "base")
        # the pointer: where this group starts, and after it
        row, off = Signal.like(self.rows), Signal(range(max(2, lanes)))
        start_row, start_off = Mux(restart, 0, row), Mux(restart, 0, off)
        new_row, new_off = advance(start_row, start_off, count, lanes)
        m.d.sync += [row.eq(new_row), off.eq(new_off)]
        m.d.comb += [self.rows.eq(row + (off != 0)), self.tail.eq(Mux(off != 0, off, lanes))]
        lane = list(zip(kept, drops, items))
        first_row = base + start_row
        for level in range(layers):
            lane = [_eliminated(lane, p, level) for p in range(lanes)]
            if level % 2 or level + 1 == layers:
                lane = [registered(m, list(x), f"z{level}_{p}_") for p, x in enumerate(lane)]
                first_row, start_off = registered(m, [first_row, start_off], f"z{level}_start")
        packed = [(k, d) for k, _, d in lane]
        for level in range(layers):
            packed = [_rotated(packed, b, level, start_off) for b in range(lanes)]
            if level % 2 or level + 1 == layers:
                if level + 1 == layers:  # the last stage addresses the banks
                    m.d.sync += [self.addr[b].eq(first_row + (b < start_off)) for b in range(lanes)]
                packed = [registered(m, list(x), f"r{level}_{b}_") for b, x in enumerate(packed)]
                first_row, start_off = registered(m, [first_row, start_off], f"r{level}_start")
        m.d.comb += [self.en.eq(Cat(k for k, _ in packed))]
        m.d.comb += [self.data[b].eq(d) for b, (_, d) in enumerate(packed)]
        return m


def _eliminated(lane: list, p: int, level: int) -> tuple:
    """Zero-elimination layer ``level`` at lane ``p``: a kept lane moves down by bit
    ``level`` of the count of dropped lanes before it (two kept lanes never meet)."""
    stay_kept, stay_drop, stay_item = lane[p]
    stay = stay_kept & ~stay_drop[level] if level < len(stay_drop) else stay_kept
    step = 1 << level
    if p + step >= len(lane):
        return stay, stay_drop, stay_item
    come_kept, come_drop, come_item = lane[p + step]
    come = come_kept & come_drop[level] if level < len(come_drop) else Const(0)
    return come | stay, Mux(come, come_drop, stay_drop), Mux(come, come_item, stay_item)


def _rotated(packed: list, b: int, level: int, off) -> tuple:
    """Rotation layer ``level`` at bank ``b``: lanes move up by bit ``level`` of ``off``
    (mod P)."""
    kept, item = packed[b]
    from_kept, from_item = packed[(b - (1 << level)) % len(packed)]
    bit = off[level] if level < len(off) else Const(0)
    return Mux(bit, from_kept, kept), Mux(bit, from_item, item)


class Banks(wiring.Component):
    """P memories of ``rows`` rows: one write per bank per cycle (``en``, ``addr``,
    ``data``, as :class:`Compactor` drives them) and ``readers`` ports that return a
    whole row one cycle after its address (:func:`hdl.lanes.read_ports`, ``groups``
    copies of it; unregistered: the reader registers it). Marked ``no_rw_check``
    (:func:`hdl.lanes.bank_memory`): the owner never uses a row read in the cycle it is
    written."""

    def __init__(self, item_shape, lanes: int, rows: int, readers: int, groups: int = 1):
        self.item_shape, self.lanes, self.rows, self.readers = item_shape, lanes, rows, readers
        self.groups = groups
        super().__init__({
            "en": In(lanes), "addr": In(data.ArrayLayout(range(rows), lanes)),
            "data": In(data.ArrayLayout(item_shape, lanes)),
            **read_ports(item_shape, lanes, rows, readers, groups)})

    def elaborate(self, platform):
        m = Module()
        for b in range(self.lanes):
            mem = bank_memory(self.item_shape, self.rows, no_rw_check=True)
            m.submodules[f"bank{b}"] = mem
            wp = mem.write_port()
            m.d.comb += [wp.addr.eq(self.addr[b]), wp.data.eq(self.data[b]), wp.en.eq(self.en[b])]
            for j in range(self.readers):
                rp = mem.read_port(transparent_for=())
                m.d.comb += [rp.addr.eq(bank_row(self, j, b)), rp.en.eq(self.r_en[j]),
                             self.r_data[j][b].eq(rp.data)]
        return m
