"""Registered (pipelined) versions of the lane networks of hdl/lanes.py, for timing
closure: a register every ``per_stage`` layers of a log-depth network (SpAtten's
released TopK registers its PrefixSum and ZeroEliminator stages the same way).

Every part here is a stall-all pipeline: all of its registers load in the cycles its
``adv`` input is high and hold otherwise, so a value entering with ``adv`` high leaves
``latency`` advancing cycles later.
"""
from __future__ import annotations

import math

from amaranth import Cat, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .lanes import (Slots, advance, eliminate_level, network_levels, read_ports, rotate_level,
                    scan, write_banks)


def stage(m: Module, value, adv, name: str, clear=None) -> Signal:
    """``value`` registered: loaded when ``adv``; zeroed by ``clear`` (which wins)."""
    value = Value.cast(value)
    reg = Signal(value.shape(), name=name)  # pragma: no mutate
    with m.If(adv):
        m.d.sync += reg.eq(value)
    if clear is not None:
        with m.If(clear):
            m.d.sync += reg.eq(0)
    return reg


def delay(m: Module, value, cycles: int, adv, name: str, clear=None) -> Value:
    """``value`` through ``cycles`` registers of :func:`stage`."""
    for j in range(cycles):
        value = stage(m, value, adv, f"{name}_d{j}", clear)
    return value


def stages(layers: int, per_stage: int) -> int:
    """Registers of a network of ``layers`` layers registered every ``per_stage`` of
    them and at its end (at least one)."""
    return max(1, math.ceil(layers / per_stage))


def network_stages(lanes: int, per_stage: int = 2) -> int:
    """Registers of one of the log-depth networks here on P lanes (a scan's
    ceil(log2 P) layers, or :func:`hdl.lanes.network_levels`)."""
    return stages(network_levels(lanes), per_stage)


def _registered_layers(m: Module, layers: int, per_stage: int, adv, name: str):
    """A ``stage(level, values)`` hook for a network of ``layers`` layers: registers the
    values after every ``per_stage`` layers but the last (the caller registers its end)."""
    def hook(level, values):
        if (level + 1) % per_stage or level + 1 == layers:
            return values
        return [stage(m, v, adv, f"{name}{level}_{j}") for j, v in enumerate(values)]
    return hook


class PrefixCount(wiring.Component):
    """Registered prefix counts of ``bits``: ``before[i]`` = set bits among
    ``bits[:i]`` and ``total`` = all of them, ``latency`` = max(1, ceil(ceil(log2 P) /
    per_stage)) advancing cycles after ``bits`` (a Sklansky scan with a register after
    every ``per_stage`` layers and at its end)."""

    def __init__(self, lanes: int, per_stage: int = 2):
        self.lanes, self.per_stage = lanes, per_stage
        self.layers = (lanes - 1).bit_length()
        self.latency = network_stages(lanes, per_stage)
        super().__init__({"bits": In(lanes), "adv": In(1),
                          "before": Out(data.ArrayLayout(range(lanes + 1), lanes)),
                          "total": Out(range(lanes + 1))})

    def elaborate(self, platform):
        m = Module()
        lanes, width = self.lanes, self.lanes.bit_length()
        hook = _registered_layers(m, self.layers, self.per_stage, self.adv, "sum")
        sums = scan([self.bits[i].as_unsigned() for i in range(lanes)],
                    lambda a, b: (a + b)[:width], hook)
        sums = [stage(m, v, self.adv, f"sum_out{j}") for j, v in enumerate(sums)]
        m.d.comb += [self.before[0].eq(0), self.total.eq(sums[-1])]
        m.d.comb += [self.before[i].eq(sums[i - 1]) for i in range(1, lanes)]
        return m


class Eliminate(wiring.Component):
    """SpAtten's zero-eliminator, registered: the ``mask`` lanes of ``items`` moved to
    lanes 0 .. count-1 in order (``kept`` marks them, ``count`` counts them), ``latency``
    advancing cycles later: a :class:`PrefixCount` of the dropped lanes, then the
    ceil(log2 P) shift levels with a register after every ``per_stage`` of them and at
    their end. ``prefix``: every mask is a prefix of the lanes (its lanes are in place
    already), so the shift levels are left out and only their registers stay (the same
    latency)."""

    def __init__(self, item_shape, lanes: int, per_stage: int = 2, prefix: bool = False):
        self.lanes, self.per_stage, self.levels = lanes, per_stage, network_levels(lanes)
        self.prefix = prefix
        self.latency = 2 * network_stages(lanes, per_stage)
        super().__init__({"items": In(data.ArrayLayout(item_shape, lanes)), "mask": In(lanes),
                          "adv": In(1), "kept": Out(lanes), "count": Out(range(lanes + 1)),
                          "data": Out(data.ArrayLayout(item_shape, lanes))})

    def elaborate(self, platform):
        m = Module()
        lanes, adv = self.lanes, self.adv
        m.submodules.drops = drops = PrefixCount(lanes, self.per_stage)
        m.d.comb += [drops.bits.eq(~self.mask), drops.adv.eq(adv)]
        mask = delay(m, self.mask, drops.latency, adv, "mask")
        items = delay(m, self.items.as_value(), drops.latency, adv, "items")
        width = len(items) // lanes
        lane = [(mask[i], drops.before[i], items[i * width:(i + 1) * width])
                for i in range(lanes)]
        count = lanes - drops.total
        for level in range(self.levels):
            if not self.prefix:
                lane = eliminate_level(m, lane, level)
            if (level + 1) % self.per_stage == 0 or level + 1 == self.levels:
                lane = [tuple(stage(m, v, adv, f"z{level}_{i}_{j}") for j, v in enumerate(x))
                        for i, x in enumerate(lane)]
                count = stage(m, count, adv, f"count{level}")
        # (lane 0 is kept whenever any lane is: after reset, the stages hold no lanes)
        m.d.comb += [self.kept.eq(Cat(k for k, _, _ in lane)),
                     self.count.eq(Mux(lane[0][0], count, 0))]
        m.d.comb += [self.data[i].eq(item) for i, (_, _, item) in enumerate(lane)]
        return m


class Rotate(wiring.Component):
    """The barrel rotator, registered: compacted lane j of ``items`` (``kept``) goes to
    bank (``off`` + j) mod P; per bank its enable (``en``), item (``data``) and whether
    it wraps past bank P-1 (``wrap``: bank < off), ``latency`` = max(1, ceil(ceil(log2 P)
    / per_stage)) advancing cycles later."""

    def __init__(self, item_shape, lanes: int, per_stage: int = 2):
        self.lanes, self.per_stage, self.levels = lanes, per_stage, network_levels(lanes)
        self.latency = network_stages(lanes, per_stage)
        super().__init__({"items": In(data.ArrayLayout(item_shape, lanes)), "kept": In(lanes),
                          "off": In(range(max(2, lanes))), "adv": In(1), "en": Out(lanes),
                          "data": Out(data.ArrayLayout(item_shape, lanes)),
                          "wrap": Out(lanes)})

    def elaborate(self, platform):
        m = Module()
        lanes, adv = self.lanes, self.adv
        packed = [(self.kept[b], Value.cast(self.items[b])) for b in range(lanes)]
        off = self.off
        for level in range(self.levels):
            packed = rotate_level(m, packed, level, off)
            if (level + 1) % self.per_stage == 0 or level + 1 == self.levels:
                packed = [(stage(m, k, adv, f"r{level}_k{b}"), stage(m, d, adv, f"r{level}_i{b}"))
                          for b, (k, d) in enumerate(packed)]
                off = stage(m, off, adv, f"off{level}")
        m.d.comb += [self.en.eq(Cat(k for k, _ in packed)),
                     self.wrap.eq(Cat(b < off for b in range(lanes)))]
        m.d.comb += [self.data[b].eq(d) for b, (_, d) in enumerate(packed)]
        return m


class StagedQueue(wiring.Component):
    """:class:`hdl.lanes.SlotQueue` with a registered writer: a push (``push_items``,
    ``push_mask``, ``push_final``) is taken in every cycle ``room`` is high (the writer
    holds it otherwise) and lands in the slots ``latency`` cycles later, in the cycle
    it pulses ``landed_final`` if it was final. Stages, all advancing with ``room``:
    the :class:`Eliminate` stages, one pointer stage (the queue's write position: one
    compare and one select), the :class:`Rotate` stages, then the slot write. ``room``
    (at most one slot occupied beyond the one being filled) comes from registers only.
    Stream ``o`` is as the SlotQueue's.

    ``copies`` > 1: ``room`` is itself a register (set from the used count's next value),
    one copy for each group of the queue's pipeline stages and ``copies`` more on
    ``rooms`` for the writer's own stages, so no one net enables every register of a
    wide pipeline (marked ``keep``: the flow does not merge them back); the slot write
    still reads the count. With 1, ``rooms`` is ``room``.
    """

    SLOTS = 4

    #: The queue's own stage groups, each with its copy of ``room`` when ``copies`` > 1:
    #: the eliminator, the pointer, the rotator (the slot write reads the count).
    GROUPS = 3

    def __init__(self, beat: data.StructLayout, items: str, per_stage: int = 2,
                 copies: int = 1):
        self.beat, self.items_field, self.per_stage = beat, items, per_stage
        self.copies = copies
        self.item_shape = beat.members[items].elem_shape
        self.lanes = lanes = beat.members[items].length
        self.latency = self.latency_of(lanes, per_stage)
        super().__init__({"push_items": In(data.ArrayLayout(self.item_shape, lanes)),
                          "push_mask": In(lanes), "push_final": In(1), "room": Out(1),
                          "rooms": Out(copies), "landed_final": Out(1),
                          "o": Out(stream.Signature(beat))})

    @staticmethod
    def latency_of(lanes: int, per_stage: int = 2) -> int:
        """The :class:`Eliminate` stages, the pointer stage, the :class:`Rotate` stages."""
        return 3 * network_stages(lanes, per_stage) + 1

    def elaborate(self, platform):
        m = Module()
        n, lanes = self.SLOTS, self.lanes
        slots = Slots(self.item_shape, lanes, n)
        rrow = Signal(range(2 * n))
        used = Signal(range(n + 1))  # slots written and not yet read (a counter: no compares)
        if self.copies == 1:
            m.d.comb += [self.room.eq(used <= 1), self.rooms.eq(self.room)]
            adv_elim = adv = adv_rotate = self.room
        else:
            rooms = [Signal(init=1, name=f"room{c}", attrs={"keep": 1})
                     for c in range(self.GROUPS + self.copies)]
            adv_elim, adv, adv_rotate = rooms[:self.GROUPS]
            m.d.comb += [self.room.eq(adv), self.rooms.eq(Cat(rooms[self.GROUPS:]))]
        # (the slot write itself is gated by the count, so that no state, reached or
        # not, writes beyond room: k-induction needs it)
        adv_write = used <= 1

        m.submodules.eliminate = elim = Eliminate(self.item_shape, lanes, self.per_stage)
        m.d.comb += [elim.items.eq(self.push_items), elim.mask.eq(self.push_mask),
                     elim.adv.eq(adv_elim)]
        final = delay(m, self.push_final, elim.latency, adv_elim, "final")

        def slot_lane(filled):
            """Whether a push that fills up to lane ``filled`` crosses into the next
            slot, and the lane after it there."""
            crossed = filled >= lanes
            return crossed, Mux(crossed, filled - lanes, filled)

        # the pointer stage (the one loop): the lane this push starts at
        off = Signal(range(max(2, lanes)))
        with m.If(adv):
            m.d.sync += off.eq(Mux(final, 0, slot_lane(off + elim.count)[1]))
        pushed = {name: stage(m, value, adv, f"p_{name}")
                  for name, value in (("off", off), ("count", elim.count), ("final", final))}

        m.submodules.rotate = rotate = Rotate(self.item_shape, lanes, self.per_stage)
        m.d.comb += [rotate.items.eq(delay(m, elim.data.as_value(), 1, adv, "p_items")),
                     rotate.kept.eq(stage(m, elim.kept, adv, "p_kept")),
                     rotate.off.eq(pushed["off"]), rotate.adv.eq(adv_rotate)]
        # beside the rotator: whether the push crosses into the next slot, and how it
        # closes the row when it is final
        crossed, new_off = slot_lane(pushed["off"] + pushed["count"])
        ends_full = (new_off == 0) & (pushed["count"] != 0)
        # (``closes``: a final push not ending a slot exactly completes the slot it
        # ends in too)
        fields = {"crossed": crossed, "final": pushed["final"], "ends_full": ends_full,
                  "fin_count": Mux(ends_full, lanes, new_off),
                  "closes": pushed["final"] & ~ends_full}
        job = {name: delay(m, value, rotate.latency, adv_rotate, f"w_{name}")
               for name, value in fields.items()}

        # the slot write: the slot being filled follows the ones written and unread (so
        # no write ever reaches a slot on the stream); a register, rrow + used as of
        # this cycle, computed from the last one's (reads leave the sum alone)
        head = Signal(range(n))
        written = Mux(adv_write, job["crossed"] + job["closes"], 0)
        m.d.sync += head.eq(rrow[:-1] + used + written)
        with m.If(adv_write):
            slots.fill(m, head, rotate.en, rotate.wrap, rotate.data)
            with m.If(job["crossed"]):
                slots.close(m, head, lanes, 0)
            with m.If(job["final"]):
                # (the slot of the final item: head, or the next one if it crossed
                # into it and put items there)
                slots.close(m, (head + (job["crossed"] & ~job["ends_full"]))[:len(head)],
                            job["fin_count"], 1)
        # whether a slot is on the stream, and each copy of room: registers set from the
        # used count's next value, as a choice by the step (written - taken, -1 .. 2)
        # between compares of the count alone (a few LUTs; from registers only, so
        # k-induction sees them follow the count after one step)
        nonempty = Signal()
        taken = nonempty & self.o.ready
        step = written - taken
        m.d.sync += nonempty.eq(Cat((step == d) & (used > -d) for d in (-1, 0, 1, 2)).any())
        if self.copies > 1:
            m.d.sync += [room.eq(Cat((step == d) & (used <= 1 - d) for d in (-1, 0, 1)).any())
                         for room in rooms]
        m.d.sync += used.eq(used + written - taken)
        m.d.comb += self.landed_final.eq(adv_write & job["final"])
        slots.serve(m, self.o, self.items_field, nonempty, rrow)
        return m


class StagedStore(wiring.Component):
    """:class:`hdl.lanes.BankedStore` with a registered compacting writer: the ``w_mask``
    lanes of ``w_items`` go to the store in order at its write pointer (row 0 with
    ``w_restart``), written in the cycle ``latency`` cycles later, through the
    :class:`Eliminate` stages, the pointer stage (the one loop: an add and a select) and
    the :class:`Rotate` stages. ``w_rows`` and ``w_tail`` (valid lanes in the last row):
    the extent of the pushes past the pointer stage. Reads as the BankedStore's: row
    ``r_row[j]`` arrives on ``r_data[j]`` one cycle later, its address in ``groups``
    copies (:func:`hdl.lanes.read_ports`). ``prefix``: every ``w_mask`` is a prefix of
    the lanes (:class:`Eliminate`). ``block_ram``: the banks go to block RAM
    (:func:`hdl.lanes.write_banks`: the owner never uses a row read in the cycle it
    is written); a reader then registers ``r_data`` with no logic before the register (a
    block RAM's read has no output register here)."""

    def __init__(self, item_shape, lanes: int, rows: int, readers: int, groups: int = 1,
                 per_stage: int = 2, prefix: bool = False, block_ram: bool = False):
        rows = max(2, rows)  # no zero-width addresses in the Verilog
        self.item_shape, self.lanes, self.rows, self.readers = item_shape, lanes, rows, readers
        self.groups, self.prefix, self.block_ram = groups, prefix, block_ram
        self.per_stage, self.latency = per_stage, self.latency_of(lanes, per_stage)
        super().__init__({
            "w_items": In(data.ArrayLayout(item_shape, lanes)), "w_mask": In(lanes),
            "w_restart": In(1), "w_rows": Out(range(rows + 1)), "w_tail": Out(range(lanes + 1)),
            **read_ports(item_shape, lanes, rows, readers, groups)})

    @staticmethod
    def latency_of(lanes: int, per_stage: int = 2) -> int:
        """The :class:`Eliminate` stages, the pointer stage, the :class:`Rotate` stages."""
        return 3 * network_stages(lanes, per_stage) + 1

    def elaborate(self, platform):
        m = Module()
        lanes = self.lanes
        m.submodules.eliminate = elim = Eliminate(self.item_shape, lanes, self.per_stage,
                                                  self.prefix)
        m.d.comb += [elim.items.eq(self.w_items), elim.mask.eq(self.w_mask), elim.adv.eq(1)]
        restart = delay(m, self.w_restart, elim.latency, 1, "restart")
        row, off = Signal(range(self.rows + 1)), Signal(range(max(2, lanes)))
        w_row, w_off = Mux(restart, 0, row), Mux(restart, 0, off)
        m.d.sync += [a.eq(b) for a, b in zip((row, off), advance(w_row, w_off, elim.count, lanes))]
        m.d.comb += [self.w_rows.eq(row + (off != 0)), self.w_tail.eq(Mux(off != 0, off, lanes))]
        m.submodules.rotate = rotate = Rotate(self.item_shape, lanes, self.per_stage)
        m.d.comb += [rotate.items.eq(stage(m, elim.data.as_value(), 1, "p_items")),
                     rotate.kept.eq(stage(m, elim.kept, 1, "p_kept")),
                     rotate.off.eq(stage(m, w_off, 1, "p_off")), rotate.adv.eq(1)]
        write_banks(m, self, delay(m, w_row, 1 + rotate.latency, 1, "w_row"), rotate,
                    self.block_ram)
        return m
