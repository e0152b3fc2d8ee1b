"""Output-stationary systolic INT8 matrix-multiply array (block ``mac``, mode w8a8).

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

Latency: a ``last`` beat accepted in cycle x gives result rows in cycles
x+R+C+3 .. x+2R+C+2. Throughput: one operand beat per cycle; a tile's ``last`` beat
waits until the previous tile has drained, so tiles start every max(K, 2R+C+3) cycles.
"""
from __future__ import annotations

from amaranth import Cat, Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.mac import MacConfig

from .checks import require_config


def operand_layout(cfg: MacConfig) -> data.StructLayout:
    """One operand beat: an A column (R values), a W row (C values), end of tile."""
    return data.StructLayout({
        "a": data.ArrayLayout(signed(8), cfg.rows),
        "w": data.ArrayLayout(signed(8), cfg.cols),
        "last": unsigned(1),
    })


def result_layout(cfg: MacConfig) -> data.StructLayout:
    """One result beat: a row of C int32 sums; ``last`` marks the tile's final row;
    ``overflow`` is set on every row of a tile longer than ``k_max`` beats, whose sums
    may have wrapped (such a tile is bad input; the next tile is unaffected)."""
    return data.StructLayout({
        "c": data.ArrayLayout(signed(32), cfg.cols),
        "last": unsigned(1),
        "overflow": unsigned(1),
    })


class MacArray(wiring.Component):
    """R x C int8 MAC array with stream ports ``i`` (operands) and ``o`` (results).

    Parameters
    ----------
    cfg : MacConfig
        ``rows`` x ``cols`` PEs; accumulators are ``cfg.acc_width`` bits wide, enough
        for any tile of up to ``k_max`` beats (longer tiles are the caller's error).
    """

    def __init__(self, cfg: MacConfig):
        require_config(self, cfg, MacConfig)
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(operand_layout(cfg))),
            "o": Out(stream.Signature(result_layout(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        rows, cols = cfg.rows, cfg.cols

        # A tile is pending from the acceptance of its last beat until its final result
        # row leaves; a second last beat waits while one is pending, so the shadow
        # bank is always free when a tile's sums arrive.
        pending = Signal()
        take = Signal()
        m.d.comb += [
            self.i.ready.eq(~(self.i.payload.last & pending)),
            take.eq(self.i.valid & self.i.ready),
        ]

        # Edge: register the beat, then skew row r by r and column c by c cycles.
        a1 = [Signal(signed(8), name=f"a1_{r}", reset_less=True) for r in range(rows)]
        w1 = [Signal(signed(8), name=f"w1_{c}", reset_less=True) for c in range(cols)]
        valid1, last1 = Signal(), Signal()
        m.d.sync += valid1.eq(take)
        with m.If(take):
            m.d.sync += [a1[r].eq(self.i.payload.a[r]) for r in range(rows)]
            m.d.sync += [w1[c].eq(self.i.payload.w[c]) for c in range(cols)]
            m.d.sync += last1.eq(self.i.payload.last)
        west = [_delay(m, a1[r], r, f"skew_a{r}", data=True) for r in range(rows)]
        flags = [_delay(m, Cat(valid1, valid1 & last1), r, f"skew_f{r}") for r in range(rows)]
        north = [_delay(m, w1[c], c, f"skew_w{c}", data=True) for c in range(cols)]

        shadow = [[None] * cols for _ in range(rows)]
        for r in range(rows):
            for c in range(cols):
                west[r], flags[r], north[c], shadow[r][c], closing = _pe(
                    m, cfg, west[r], flags[r], north[c], f"{r}_{c}")
        # tile_over: the pending tile was longer than k_max (see the length check below);
        # it holds from the tile's last beat until its final row has left.
        tile_over = Signal()

        # Drain: the shadow bank leaves one row per cycle while o.ready allows.
        full = Signal()
        row = Signal(range(max(rows, 2)))  # at least 1 bit: Verilog has no 0-bit vectors
        row_sums = Signal(data.ArrayLayout(signed(32), cols))
        with m.Switch(row):
            for r in range(rows):
                with m.Case(r) if r < rows - 1 else m.Default():
                    m.d.comb += [row_sums[c].eq(shadow[r][c]) for c in range(cols)]
        # One whole-payload assignment: the Verilog becomes a continuous assign, which
        # every simulator evaluates at time zero (a bit-slice `always @*` is not).
        m.d.comb += [self.o.valid.eq(full),
                     self.o.payload.eq(Cat(row_sums, row == rows - 1, tile_over))]
        with m.If(closing):  # the last PE, (R-1, C-1), is closing the tile
            m.d.sync += [full.eq(1), row.eq(0)]
        with m.Elif(self.o.valid & self.o.ready):
            m.d.sync += row.eq(row + 1)
            with m.If(row == rows - 1):
                m.d.sync += full.eq(0)

        # Tile length check: `beats` counts the tile's accepted beats (saturating at
        # k_max); a beat accepted with k_max already counted makes the tile too long.
        beats = Signal(range(cfg.k_max + 1))
        too_long = Signal()
        this_over = too_long | (beats == cfg.k_max)
        with m.If(take & self.i.payload.last):
            m.d.sync += [beats.eq(0), too_long.eq(0), tile_over.eq(this_over)]
        with m.Elif(take):
            m.d.sync += too_long.eq(this_over)
            with m.If(beats != cfg.k_max):
                m.d.sync += beats.eq(beats + 1)

        drained = self.o.valid & self.o.ready & self.o.payload.last
        with m.If(take & self.i.payload.last):
            m.d.sync += pending.eq(1)
        with m.Elif(drained):
            m.d.sync += pending.eq(0)
        return m


def _delay(m: Module, value, cycles: int, name: str, data: bool = False):
    """``value`` through ``cycles`` registers (0 passes it through). ``data`` registers
    have no reset: only the flags that qualify them need one."""
    for i in range(cycles):
        stage = Signal(len(value), name=f"{name}_{i}", reset_less=data)
        m.d.sync += stage.eq(value)
        value = stage
    return value


def _pe(m: Module, cfg: MacConfig, west, flags, north, name: str):
    """One PE: registers its neighbours' operands, multiplies, accumulates.

    ``west`` is a and ``flags`` (valid, last) from the left, ``north`` is w from above.
    Returns what it passes east and south, its shadow (the last closed tile's sum)
    and whether it closes a tile this cycle (sum moves to the shadow, accumulator
    clears).
    """
    east = _delay(m, west, 1, f"a_{name}", data=True)
    flags_east = _delay(m, flags, 1, f"f_{name}")
    south = _delay(m, north, 1, f"w_{name}", data=True)
    # Two product registers: the first sits at the multiplier (DSP) output, the
    # second at the adder, so neither path carries both the multiply and a long wire.
    product = _delay(m, east.as_signed() * south.as_signed(), 2, f"p_{name}",
                     data=True).as_signed()
    valid = _delay(m, flags_east[0], 2, f"v_{name}")
    closing = _delay(m, flags_east[1], 2, f"close_{name}")
    acc = Signal(signed(cfg.acc_width), name=f"acc_{name}")
    done = Signal(signed(cfg.acc_width), name=f"shadow_{name}", reset_less=True)
    # Reset-over-enable: the FPGA flip-flop's own sync reset and clock enable
    # implement the clear and the hold, so the PE's only logic is its adder.
    with m.If(closing):
        m.d.sync += [done.eq(acc + product), acc.eq(0)]
    with m.Elif(valid):
        m.d.sync += acc.eq(acc + product)
    return east, flags_east, south, done, closing
