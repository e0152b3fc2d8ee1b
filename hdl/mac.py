"""Output-stationary systolic matrix-multiply array (block ``mac``), in four modes.

Dataflow: output-stationary. Each operand beat carries one column of an A tile (R int8
values, A[m0+r, k]) and one row of a W tile (C int8 values, W[k, n0+c]); PE (r, c)
multiplies and accumulates C[m0+r, n0+c] over the tile's K beats. Why this dataflow:
both operands stream, nothing is preloaded, the int32 partial sums never leave the PE,
and any K up to ``k_max`` runs at one beat per cycle with no accumulator memory.

Operands move systolically: A values (with the beat's valid and end-of-tile flags) step
one PE right per cycle, W values one PE down, after edge delay lines that skew row r by
r cycles and column c by c cycles, so A[m0+r, k] and W[k, n0+c] meet in PE (r, c). Every
PE therefore drives only its neighbours: no operand or control net fans out across the
array. The beat with ``last`` set closes the tile as it sweeps the array: each PE moves
its sum to its shadow register and clears its accumulator in the same cycle (no
bubble). When the last PE has closed, the shadow bank leaves as R result beats of C
int32 values while the next tile accumulates.

Modes (``cfg.mode``) change the operands, not the dataflow:

* w8a8: int8 x int8 PEs, int32 results.
* w4a8 (QServe): the W row arrives as uint4 ``q`` with a per-group scale beat (``s``:
  s2 and the stored zero byte (-z) mod 256 per column). The dequantizer at the array's
  top edge, one per column, forms W8 = (q*s2 mod 256 + (-z mod 256)) mod 256 as int8
  ("subtraction after multiplication") in the input register stage; the PEs are the
  w8a8 PEs. One ``s`` beat is taken with the group's final operand beat.
* w4a4 (SVDQuant): int4 x int4 PEs whose accumulators close every ``group`` beats
  (``last`` marks a group's end); each group's partials leave as R rows into the
  epilogue (hdl/mac_epilogue.py), which scales them by a_scale * w_scale, adds the
  low-rank branch and sums in 64 bits.
* msb_lsb (SpAtten): beats carry a ``msb`` flag: the product of an MSB beat (B's bits
  11..4) is added shifted left by 4, that of an LSB beat (bits 3..0) as is, so an MSB
  pass followed by an LSB pass sums to A.B exactly. The shift is applied to the beat's
  A values at the array's edge (a * 16 as 12 bits), so the PEs are w8a8 PEs with a
  12-bit a and no flag of their own.

Latency: a ``last`` beat accepted in cycle x gives result rows in cycles
x+R+C+F .. x+2R+C+F-1, F = 4 (5 in w4a8, whose dequantizer has two stages).
Throughput: one operand beat per cycle; a tile's ``last`` beat waits until the previous
tile has drained, so tiles start every max(K, 2R+C+F) cycles.

Timing: each PE's multiplier is a :class:`~hdl.multiplier.WideMultiplier` of one DSP
(on the ECP5 a MULT18X18D with its input and output registers) and a fabric register
after it, which takes the product across the route from the DSP column to the
accumulator's carry chain. The operand registers load every cycle, so the input
handshake drives a few flip-flops, not a clock enable on every operand bit.
"""
from __future__ import annotations

import functools
import operator

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.mac import MacConfig

from .checks import require_config
from .mac_epilogue import Epilogue
from .multiplier import WideMultiplier
from .mac_layouts import (lowrank_layout, operand_layout, partial_layout, result_layout,
                          scale_layout)


def _ports(cfg: MacConfig) -> dict:
    ports = {"i": In(stream.Signature(operand_layout(cfg)))}
    if scale_layout(cfg) is not None:
        ports["s"] = In(stream.Signature(scale_layout(cfg)))
    if cfg.mode == "w4a4":
        ports["lr"] = In(stream.Signature(lowrank_layout(cfg)))
    ports["o"] = Out(stream.Signature(result_layout(cfg)))
    return ports


class MacArray(wiring.Component):
    """R x C MAC array with stream ports ``i`` (operands), ``s`` (per-group scales:
    w4a8, w4a4), ``lr`` (low-rank beats: w4a4) and ``o`` (results).

    Parameters
    ----------
    cfg : MacConfig
        ``rows`` x ``cols`` PEs in ``cfg.mode``; accumulators are ``cfg.acc_width`` bits
        wide, enough for any tile of up to ``k_max`` beats (w4a4: any group of up to
        ``group`` beats; longer ones are the caller's error and flagged).
    """

    def __init__(self, cfg: MacConfig):
        require_config(self, cfg, MacConfig)
        self.cfg = cfg
        super().__init__(_ports(cfg))

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        rows, cols = cfg.rows, cfg.cols
        beat = self.i.payload

        # A tile is pending from the acceptance of its last beat until its final result
        # row leaves; a second last beat waits while one is pending, so the shadow
        # bank is always free when a tile's sums arrive. w4a8 also waits for the
        # group's scale beat.
        pending = Signal()
        take = Signal()
        scales_ready = self.s.valid if cfg.mode == "w4a8" else 1
        m.d.comb += [
            self.i.ready.eq(~(beat.last & pending) & scales_ready),
            take.eq(self.i.valid & self.i.ready),
        ]
        # Edge: register the beat (w4a8: twice, its dequantizer taking two stages; A
        # and the flags wait beside it), then skew row r by r and column c by c cycles.
        # The data registers load every cycle (``valid1`` qualifies them), so ``take``
        # drives a few flip-flops, not a clock enable on every operand bit.
        edge = edge_stages(cfg)
        w1 = self._dequantized(m, take) if cfg.mode == "w4a8" else \
            [_delay(m, beat.w[c], 1, f"w1_{c}", data=True) for c in range(cols)]
        a_in = [Mux(beat.msb, beat.a[r].as_signed() << 4, beat.a[r].as_signed())
                for r in range(rows)] if cfg.mode == "msb_lsb" else beat.a
        a1 = [_delay(m, a_in[r], edge, f"a1_{r}", data=True) for r in range(rows)]
        valid1 = _delay(m, take, edge, "valid1")
        last1 = _delay(m, beat.last, edge, "last1", data=True)
        flag_bits = Cat(valid1, valid1 & last1)
        west = [_delay(m, a1[r], r, f"skew_a{r}", data=True) for r in range(rows)]
        flags = [_delay(m, flag_bits, r, f"skew_f{r}") for r in range(rows)]
        north = [_delay(m, w1[c], c, f"skew_w{c}", data=True) for c in range(cols)]

        shadow = [[None] * cols for _ in range(rows)]
        closing = [None] * cols  # the bottom PE of each column closes the tile there
        for r in range(rows):
            for c in range(cols):
                west[r], flags[r], north[c], shadow[r][c], closing[c] = _pe(
                    m, cfg, west[r], flags[r], north[c], f"{r}_{c}")
        # tile_over: the pending tile was longer than its limit (see the length check
        # below); it holds from the tile's last beat until its final row has left.
        tile_over = Signal()

        # Drain: the shadow bank leaves one row per cycle while the reader allows; in
        # w4a4 the reader is the epilogue.
        drain = stream.Signature(partial_layout(cfg)).create(path=("drain",))
        full = Signal()
        # The row being drained, one-hot and kept once per column, so each copy selects
        # only its column's sums and no counter drives the whole bank: each sum is the
        # OR of the rows' shadows ANDed with their bits (synthesis maps that to about
        # five LUTs a bit for eight rows, half what a binary-select multiplexer takes).
        rows_at = [Signal(rows, init=1, name=f"row_c{c}", attrs={"keep": 1})  # pragma: no mutate
                   for c in range(cols)]
        at_last_row = rows_at[-1][-1]
        row_sums = Signal(data.ArrayLayout(signed(cfg.acc_width), cols))
        for c in range(cols):
            picked = [Mux(rows_at[c][r], shadow[r][c], 0) for r in range(rows)]
            m.d.comb += row_sums[c].eq(functools.reduce(operator.or_, picked))
        m.d.comb += [drain.valid.eq(full),
                     drain.payload.eq(Cat(row_sums, at_last_row, tile_over))]
        # A column's row restarts when its bottom PE closes the tile (the previous
        # tile has drained by then), so no closing flag spans the array.
        leaving = drain.valid & drain.ready
        for at, column_closing in zip(rows_at, closing):
            with m.If(column_closing):
                m.d.sync += at.eq(1)
            with m.Elif(leaving):
                m.d.sync += at.eq(at.rotate_left(1))
        with m.If(closing[-1]):  # the last PE, (R-1, C-1), is closing the tile
            m.d.sync += full.eq(1)
        with m.Elif(leaving & at_last_row):
            m.d.sync += full.eq(0)
        self._connect_output(m, drain)

        # Tile length check: `beats` counts the tile's accepted beats (saturating at
        # the limit: k_max; w4a4: a group; msb_lsb: both passes, 2 k_max); a beat
        # accepted with the limit already counted makes the tile too long.
        limit = {"w4a4": cfg.group_size, "msb_lsb": 2 * cfg.k_max}.get(cfg.mode, cfg.k_max)
        beats = Signal(range(limit + 1))
        too_long = Signal()
        this_over = too_long | (beats == limit)
        with m.If(take & beat.last):
            m.d.sync += [beats.eq(0), too_long.eq(0), tile_over.eq(this_over)]
        with m.Elif(take):
            m.d.sync += too_long.eq(this_over)
            with m.If(beats != limit):
                m.d.sync += beats.eq(beats + 1)

        drained = drain.valid & drain.ready & drain.payload.last
        with m.If(take & beat.last):
            m.d.sync += pending.eq(1)
        with m.Elif(drained):
            m.d.sync += pending.eq(0)
        return m

    def _dequantized(self, m: Module, take) -> list:
        """w4a8's column dequantizers, two registered stages: q*s2 as two partial
        products (q's low two bits; the high two plus the stored byte), then W8 = their
        sum mod 256 (int8 bits), from the current scale beat, which is taken with the group's
        final operand beat (the group's ``group``-th, or the tile's last)."""
        cfg, beat, scales = self.cfg, self.i.payload, self.s.payload
        in_group = Signal(range(cfg.group_size), name="in_group")
        group_end = beat.last | (in_group == cfg.group_size - 1)
        m.d.comb += self.s.ready.eq(take & group_end)
        with m.If(take):
            m.d.sync += in_group.eq(Mux(group_end, 0, in_group + 1))
        w8 = []
        for c in range(cfg.cols):
            q, s2 = beat.w[c], scales.s2[c]
            low = _delay(m, _shift_add(s2, q[:2], signed_w=False)[:8], 1, f"qs2_lo{c}",
                         data=True)
            # the stored byte joins the high partial product: two adders in the second
            # stage would cost about 9 LUTs more a column
            high = _delay(m, ((_shift_add(s2, q[2:], signed_w=False) << 2) +
                              scales.neg_z[c])[:8], 1, f"qs2_hi{c}", data=True)
            w8.append(_delay(m, (low + high)[:8], 1, f"w1_{c}", data=True))
        return w8

    def _connect_output(self, m: Module, drain) -> None:
        """Rows of sums to ``o``: directly, or in w4a4 through the scaling epilogue."""
        if self.cfg.mode == "w4a4":
            m.submodules.epilogue = epilogue = Epilogue(self.cfg)
            wiring.connect(m, drain, epilogue.partials)
            wiring.connect(m, wiring.flipped(self.s), epilogue.s)
            wiring.connect(m, wiring.flipped(self.lr), epilogue.lr)
            wiring.connect(m, epilogue.o, wiring.flipped(self.o))
            return
        sums, row = drain.payload, Signal(self.o.payload.shape())
        m.d.comb += [row.c[c].eq(sums.c[c]) for c in range(self.cfg.cols)]  # sign-extend
        m.d.comb += [row.last.eq(sums.last), row.overflow.eq(sums.overflow)]
        # One whole-payload assignment: the Verilog becomes a continuous assign, which
        # every simulator evaluates at time zero (a bit-slice `always @*` is not).
        m.d.comb += [self.o.valid.eq(drain.valid), drain.ready.eq(self.o.ready),
                     self.o.payload.eq(row)]


class ProcessingElement(wiring.Component):
    """One PE of ``cfg.mode`` on its own, with its neighbour links as ports: for
    measuring the area of a PE apart from the array's edges (synthesis only)."""

    def __init__(self, cfg: MacConfig):
        require_config(self, cfg, MacConfig)
        self.cfg = cfg
        layout = operand_layout(cfg)
        a = _pe_a_shape(cfg).width
        w = 8 if cfg.mode == "w4a8" else layout.members["w"].elem_shape.width  # W8 after the edge
        super().__init__({"west": In(a), "flags": In(2), "north": In(w),
                          "east": Out(a), "flags_east": Out(2), "south": Out(w),
                          "shadow": Out(signed(cfg.acc_width)), "closing": Out(1)})

    def elaborate(self, platform):
        m = Module()
        links = _pe(m, self.cfg, self.west, self.flags, self.north, "pe")
        m.d.comb += [port.eq(value) for port, value in zip(
            (self.east, self.flags_east, self.south, self.shadow, self.closing), links)]
        return m


def edge_stages(cfg: MacConfig) -> int:
    """Registers at the array's edge before the skew: one, two for w4a8's dequantizer."""
    return 2 if cfg.mode == "w4a8" else 1


def _pe_a_shape(cfg: MacConfig):
    """The PEs' A operand: the beat's, or in msb_lsb 12 bits (A, or A * 16 on an MSB
    beat)."""
    return signed(12) if cfg.mode == "msb_lsb" else operand_layout(cfg).members["a"].elem_shape


def _delay(m: Module, value, cycles: int, name: str, data: bool = False, keep: bool = False):
    """``value`` through ``cycles`` registers (0 passes it through). ``data`` registers
    have no reset: only the flags that qualify them need one. ``keep`` registers are not
    merged with equal ones by synthesis."""
    attrs = {"keep": 1} if keep else {}
    for i in range(cycles):
        stage = Signal(len(value), name=f"{name}_{i}", reset_less=data,  # pragma: no mutate
                       attrs=attrs)
        m.d.sync += stage.eq(value)
        value = stage
    return value


def _shift_add(x, w, signed_w: bool):
    """x * w as the sum of w's shifted partial products (the top one subtracted when w
    is signed): for narrow w this is a handful of LUTs, where synthesis would spend a
    whole DSP multiplier on the ``*``."""
    terms = [Mux(w[j], x << j, 0) for j in range(len(w))]
    top = terms.pop() if signed_w else None
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total if top is None else total - top


#: Cycles from a PE's operands to its product (:class:`~hdl.multiplier.WideMultiplier`'s
#: latency for one DSP; w4a4's shift-and-add product has as many registers).
PRODUCT_LATENCY = 3


def _product(m: Module, cfg: MacConfig, a, w, name: str):
    """The PE's product a * w, :data:`PRODUCT_LATENCY` cycles after its operands. The
    int8 modes use a :class:`~hdl.multiplier.WideMultiplier` (one registered DSP and a
    fabric register); w4a4's int4 x int4 is shifted partial products
    (:func:`_shift_add`) in two registered halves, then their sum and a register."""
    if cfg.mode == "w4a4":
        # w's low two bits (unsigned) and high two (signed) give two registered halves,
        # one adder each, then their sum: no more than one adder between registers.
        x = a.as_signed()
        low = _delay(m, _shift_add(x, w[:2], signed_w=False), 1, f"plo_{name}", data=True)
        high = _delay(m, _shift_add(x, w[2:], signed_w=True), 1, f"phi_{name}", data=True)
        return _delay(m, low.as_signed() + (high.as_signed() << 2), PRODUCT_LATENCY - 1,
                      f"p_{name}", data=True).as_signed()
    m.submodules[f"mul_{name}"] = mul = WideMultiplier(len(a), len(w))
    assert mul.latency == PRODUCT_LATENCY
    m.d.comb += [mul.a.eq(a), mul.b.eq(w)]  # the bits of signed operands
    return mul.p


def _pe(m: Module, cfg: MacConfig, west, flags, north, name: str):
    """One PE: registers its neighbours' operands, multiplies, accumulates.

    ``west`` is a and ``flags`` (valid, last) from the left, ``north`` is w from
    above. Returns what it passes east and south, its shadow (the last closed tile's
    sum) and whether it closes a tile this cycle (sum moves to the shadow, accumulator
    clears).
    """
    east = _delay(m, west, 1, f"a_{name}", data=True)
    # Every PE on an anti-diagonal sees the same flags; each keeps its own register, so
    # no flag net spans the array (synthesis would share one per anti-diagonal).
    flags_east = _delay(m, flags, 1, f"f_{name}", keep=True)
    south = _delay(m, north, 1, f"w_{name}", data=True)
    product = _product(m, cfg, east, south, name)
    valid = _delay(m, flags_east[0], PRODUCT_LATENCY, f"v_{name}")
    closing = _delay(m, flags_east[1], PRODUCT_LATENCY, f"close_{name}")
    acc = Signal(signed(cfg.acc_width), name=f"acc_{name}")  # pragma: no mutate
    done = Signal(signed(cfg.acc_width), name=f"shadow_{name}", reset_less=True)  # pragma: no mutate
    # Reset-over-enable: the FPGA flip-flop's own sync reset and clock enable
    # implement the clear and the hold, so the PE's only logic is its adder.
    with m.If(closing):
        m.d.sync += [done.eq(acc + product), acc.eq(0)]
    with m.Elif(valid):
        m.d.sync += acc.eq(acc + product)
    return east, flags_east, south, done, closing
