"""The parts of the softmax unit (hdl/softmax.py): each a fixed-latency pipeline with no
enable (a value entering in cycle t leaves in cycle t + ``latency``), so the unit's
flow control is credits counted at its issue points, never a stall inside them.

The arithmetic is golden/softmax.py's, bit for bit; every stage is one carry chain or a
multiplexer of a few levels, every multiply a registered DSP
(:class:`~hdl.multiplier.WideMultiplier`), every block-RAM read registered before use.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.softmax import CLAMP, LOG2E, MAX_FRAC, RECIP_SHIFT, TABLE_BITS

from .lanes import bank_memory
from .multiplier import WideMultiplier

#: bits of a difference from the row's maximum that reaches the exponent (d < 16 << 13)
D_WIDTH = (CLAMP << MAX_FRAC).bit_length() - 1
#: bits of e (at most 2^24) and of e16 and of a probability (at most 2^16)
E_WIDTH, E16_WIDTH = 25, 17
FRAC_WIDTH = MAX_FRAC.bit_length()


def register(m: Module, value, name: str, reset_less: bool = True):
    """``value`` registered every cycle (a struct keeps its layout)."""
    shape = value.shape() if isinstance(value, data.View) else Value.cast(value).shape()
    reg = Signal(shape, name=name, reset_less=reset_less)
    m.d.sync += reg.eq(value)
    return reg


def delayed(m: Module, value, cycles: int, name: str, reset_less: bool = True):
    """``value`` ``cycles`` cycles later."""
    for j in range(cycles):
        value = register(m, value, f"{name}_d{j}", reset_less)
    return value


def power_table() -> list[int]:
    """The exponential's two tables, one after the other: 2^(-j / 2^8) and then
    2^(-j / 2^16) for j < 2^8, with 16 fractional bits."""
    size = 1 << TABLE_BITS
    return [round(2.0 ** (-j / (size << shift)) * (1 << 16))
            for shift in (0, TABLE_BITS) for j in range(size)]


def tree_levels(lanes: int) -> int:
    """Levels of a pairwise reduction over ``lanes`` values."""
    return max(0, (lanes - 1).bit_length())


def _reduce(m: Module, values: list, combine, name: str) -> tuple[Signal, int]:
    """A pairwise reduction with a register after every level: (result, levels)."""
    level = 0
    while len(values) > 1:
        values = [register(m, combine(values[j], values[j + 1]) if j + 1 < len(values)
                       else values[j], f"{name}{level}_{j // 2}")
                  for j in range(0, len(values), 2)]
        level += 1
    return values[0], level


class RowMax(wiring.Component):
    """The maximum of each row's valid lanes: a beat's lanes set in ``lanes_valid`` enter
    a registered max tree, and a register keeps the row's running maximum. ``done`` pulses
    with ``max`` final ``latency`` = ceil(log2 P) + 2 cycles after the row's ``last``
    beat (``valid`` high)."""

    def __init__(self, lanes: int, width: int):
        self.lanes, self.width = lanes, width
        self.latency = tree_levels(lanes) + 2
        super().__init__({"scores": In(data.ArrayLayout(signed(width), lanes)),
                          "lanes_valid": In(lanes), "valid": In(1), "last": In(1),
                          "max": Out(signed(width)), "done": Out(1)})

    def elaborate(self, platform):
        m = Module()
        lowest = Const(-(1 << (self.width - 1)), signed(self.width))
        masked = [register(m, Mux(self.lanes_valid[j], self.scores[j], lowest), f"masked{j}")
                  for j in range(self.lanes)]
        beat_max, levels = _reduce(m, masked, lambda a, b: Mux(a > b, a, b), "max")
        valid = delayed(m, self.valid, levels + 1, "valid", reset_less=False)
        last = delayed(m, self.last, levels + 1, "last", reset_less=False)
        first = Signal(init=1)
        running = Signal(signed(self.width), reset_less=True)
        new = Mux(first | (beat_max > running), beat_max, running)
        with m.If(valid):
            m.d.sync += [running.eq(new), first.eq(last)]
        m.d.sync += [self.max.eq(new), self.done.eq(valid & last)]
        return m


class Exponential(wiring.Component):
    """One lane's exponential (golden/softmax.py's :func:`exponentials`): from d (the
    score's distance below its row's maximum, ignored when not ``live``) and the row's
    ``frac``, ``e`` ~ 2^24 exp(-d / 2^frac) and ``e16`` ~ 2^16 exp(-d / 2^frac), both 0
    when not live, ``latency`` cycles later. Stages: t = d log2(e) on a DSP; u = t >>
    frac in two shift stages; 2^-f from two tables in one block RAM (read, then
    registered) multiplied on a DSP and rounded; 2^(8-i) as a rounding add and two shift
    stages; e16 rounded from e."""

    MULTIPLY = 3  # WideMultiplier(18, 18)
    latency = MULTIPLY + 2 + 2 + MULTIPLY + 1 + 1 + 2 + 1

    def __init__(self):
        super().__init__({"d": In(D_WIDTH), "live": In(1), "frac": In(FRAC_WIDTH),
                          "e": Out(E_WIDTH), "e16": Out(E16_WIDTH)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.log2e = log2e = WideMultiplier(18, 18)
        m.d.comb += [log2e.a.eq(self.d), log2e.b.eq(LOG2E)]
        live = delayed(m, self.live, log2e.latency, "live")
        frac = delayed(m, self.frac, log2e.latency, "frac")
        t = log2e.p.as_unsigned()[:D_WIDTH + 17]
        # u = t >> frac, in two stages (frac's low two bits, then its high ones)
        t1 = register(m, t >> frac[:2], "t1")
        frac1, live = register(m, frac[2:], "frac_hi"), register(m, live, "live_t1")
        u = register(m, (t1 >> Cat(Const(0, 2), frac1))[:21], "u")
        live = register(m, live, "live_u")
        f, i = u[:16], u[16:21]

        m.submodules.table = table = memory.Memory(
            shape=unsigned(17), depth=2 << TABLE_BITS, attrs={"ram_style": "block"},
            init=power_table())
        hi_port = table.read_port(transparent_for=())
        lo_port = table.read_port(transparent_for=())
        m.d.comb += [hi_port.addr.eq(f[TABLE_BITS:]),
                     lo_port.addr.eq(Cat(f[:TABLE_BITS], Const(1, 1)))]
        hi, lo = register(m, hi_port.data, "hi"), register(m, lo_port.data, "lo")
        i, live = delayed(m, i, 2, "i"), delayed(m, live, 2, "live_tab")

        m.submodules.power = power = WideMultiplier(18, 18)
        m.d.comb += [power.a.eq(hi), power.b.eq(lo)]
        i, live = delayed(m, i, power.latency, "i_pow"), delayed(m, live, power.latency, "live_pow")
        # a lane that is not live gets 2^-f = 0 by the register's synchronous clear (the
        # flip-flops' own reset input, no logic)
        mant = Signal(17, name="mant", reset_less=True)
        m.d.sync += mant.eq(((power.p.as_unsigned()[15:34] + 1) >> 1)[:17])
        with m.If(~live):
            m.d.sync += mant.eq(0)
        i = register(m, i, "i_mant")

        # e = round(mant 2^8 / 2^i): add half of 2^i, then shift by i in two stages
        half = Signal(E_WIDTH + 1, name="half")
        with m.Switch(i):
            for amount in range(1, 1 << len(i)):
                with m.Case(amount):
                    m.d.comb += half.eq((1 << (amount - 1)) if amount <= E_WIDTH else 0)
        scaled = register(m, (Cat(Const(0, 8), mant) + half)[:E_WIDTH + 1], "scaled")
        i = register(m, i, "i_scaled")
        low = register(m, scaled >> i[:3], "shift_low")
        i_hi = register(m, i[3:], "i_high")
        e = register(m, (low >> Cat(Const(0, 3), i_hi))[:E_WIDTH], "e_shifted")
        m.d.sync += [self.e.eq(e), self.e16.eq(((e + (1 << 7)) >> 8)[:E16_WIDTH])]
        return m


def sum_latency(lanes: int) -> int:
    """Cycles of a :class:`LaneSum` on ``lanes`` lanes."""
    return tree_levels(lanes) + 1


class LaneSum(wiring.Component):
    """The sum of each row's ``e`` over its beats: a registered adder tree over the P
    lanes and a row accumulator. ``done`` pulses with ``total`` ``latency`` =
    ceil(log2 P) + 1 cycles after the row's ``last`` beat (``valid`` high)."""

    def __init__(self, lanes: int, width: int, total_width: int):
        self.lanes, self.latency = lanes, sum_latency(lanes)
        super().__init__({"e": In(data.ArrayLayout(width, lanes)), "valid": In(1),
                          "last": In(1), "total": Out(total_width), "done": Out(1)})

    def elaborate(self, platform):
        m = Module()
        width = len(self.total)
        beat_sum, levels = _reduce(m, [self.e[j].as_unsigned() for j in range(self.lanes)],
                                   lambda a, b: (a + b)[:width], "sum")
        valid = delayed(m, self.valid, levels, "valid", reset_less=False)
        last = delayed(m, self.last, levels, "last", reset_less=False)
        running = Signal(width)
        with m.If(valid):
            m.d.sync += running.eq(Mux(last, 0, running + beat_sum))
        m.d.sync += [self.total.eq(running + beat_sum), self.done.eq(valid & last)]
        return m


class Reciprocal(wiring.Component):
    """R = floor(2^40 / S) for 2^24 <= S, one a cycle: a restoring divider unrolled into
    17 registered stages (one quotient bit each: a compare-subtract of S against the
    partial remainder, which starts at 2^24). ``passenger`` travels beside S; ``valid``,
    ``r`` and ``passenger`` come out ``latency`` = 17 cycles later."""

    QUOTIENT_BITS = RECIP_SHIFT - 24 + 1

    def __init__(self, total_width: int, passenger_width: int):
        self.latency = self.QUOTIENT_BITS
        super().__init__({"total": In(total_width), "valid": In(1),
                          "passenger": In(passenger_width), "r": Out(self.QUOTIENT_BITS),
                          "valid_out": Out(1), "passenger_out": Out(passenger_width)})

    def elaborate(self, platform):
        m = Module()
        width = len(self.total) + 1
        rem, divisor = Const(1 << 24, width), self.total
        quotient = Const(0, 0)
        valid, passenger = self.valid, self.passenger
        for stage in range(self.QUOTIENT_BITS):
            diff = rem - divisor
            fits = ~diff[width]  # rem >= divisor
            kept = Mux(fits, diff[:width], rem)
            rem = register(m, Cat(Const(0, 1), kept[:width - 1]), f"rem{stage}")
            quotient = register(m, Cat(fits, quotient), f"quotient{stage}")
            if stage + 1 < self.QUOTIENT_BITS:
                divisor = register(m, divisor, f"divisor{stage}")
            valid = register(m, valid, f"valid{stage}", reset_less=False)
            passenger = register(m, passenger, f"passenger{stage}")
        m.d.comb += [self.r.eq(quotient), self.valid_out.eq(valid),
                     self.passenger_out.eq(passenger)]
        return m


class Normalize(wiring.Component):
    """p = (e16 R + 2^15) >> 16 on every lane (a registered DSP each), ``latency`` cycles
    later."""

    def __init__(self, lanes: int):
        self.lanes = lanes
        self.latency = 3 + 1
        super().__init__({"e16": In(data.ArrayLayout(E16_WIDTH, lanes)),
                          "r": In(Reciprocal.QUOTIENT_BITS),
                          "p": Out(data.ArrayLayout(E16_WIDTH, lanes))})

    def elaborate(self, platform):
        m = Module()
        for j in range(self.lanes):
            m.submodules[f"mul{j}"] = mul = WideMultiplier(18, 18)
            m.d.comb += [mul.a.eq(self.e16[j]), mul.b.eq(self.r)]
            product = mul.p.as_unsigned()
            m.d.sync += self.p[j].eq(((product[15:34] + 1) >> 1)[:E16_WIDTH])
        return m


class BeatStore(wiring.Component):
    """A circular buffer of beats of ``lanes`` items, a block RAM bank a lane: ``w_en``
    writes ``w_data`` at the next write position; ``r_data`` is the read position of the
    cycle before (the block RAMs' own outputs, to be registered by the reader), and
    ``r_en`` moves the read position on (the banks read every cycle, so the read
    handshake reaches the position register only). The owner never writes a full store
    or reads an empty one (it counts credits), so a position is never read in the cycle
    it is written. A bank a lane, not one wide memory: each bank's read port then stands
    alone, and synthesis can move the reader's register into the block RAM
    (synth/outreg.py)."""

    def __init__(self, item_shape, lanes: int, depth: int):
        if depth & (depth - 1):
            raise ValueError(f"BeatStore: depth must be a power of two, not {depth}")
        self._item, self.lanes, self.depth = item_shape, lanes, depth
        beat = data.ArrayLayout(item_shape, lanes)
        super().__init__({"w_en": In(1), "w_data": In(beat), "r_en": In(1),
                          "r_data": Out(beat)})

    def elaborate(self, platform):
        m = Module()
        w_at, r_at = Signal(range(self.depth)), Signal(range(self.depth))
        for j in range(self.lanes):
            m.submodules[f"bank{j}"] = mem = bank_memory(self._item, self.depth,
                                                         block_ram=True, no_rw_check=True)
            wp, rp = mem.write_port(), mem.read_port(transparent_for=())
            m.d.comb += [wp.addr.eq(w_at), wp.data.eq(self.w_data[j]), wp.en.eq(self.w_en),
                         rp.addr.eq(r_at), self.r_data[j].eq(rp.data)]
        with m.If(self.w_en):
            m.d.sync += w_at.eq(w_at + 1)
        with m.If(self.r_en):
            m.d.sync += r_at.eq(r_at + 1)
        return m
