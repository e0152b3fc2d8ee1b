"""w4a4's output stage: scaled group partials and the low-rank branch summed in 64 bits.

For each output tile the epilogue keeps an R x C bank of int64 sums and applies one
update row per cycle, C lanes wide, as sum[r][c] += p[c] * a * b[c]:

* a group's partial row r from the array: p = the int4 x int4 partials, a =
  a_scale[m0+r, g], b = w_scale[g, n0:n0+C] (from the ``s`` beat, taken with the
  group's final row);
* a low-rank beat j, spread over R cycles (row r on the r-th): p = L2[j, n0:n0+C],
  a = U[m0+r, j], b = the branch's scale, so the bank gains scale * (U @ L2).

Partial rows win when both are ready (the array must not wait); low-rank rows fill the
cycles between groups. Updates run through three pipeline registers (operands,
p * a, then * b) into the bank's adders. When the tile's final group (``s.last``) and
final low-rank beat (``lr.last``) are in and the pipeline is empty, the bank leaves as R
result rows, one per cycle, each cleared as it leaves; no update enters meanwhile.
"""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.mac import MacConfig

from .checks import require_config
from .mac_layouts import lowrank_layout, partial_layout, result_layout, scale_layout


class Epilogue(wiring.Component):
    """Ports: ``partials`` (the array's group sums), ``s`` (scales), ``lr`` (low-rank
    beats) in; ``o`` (int64 result rows) out."""

    def __init__(self, cfg: MacConfig):
        require_config(self, cfg, MacConfig)
        self.cfg = cfg
        super().__init__({
            "partials": In(stream.Signature(partial_layout(cfg))),
            "s": In(stream.Signature(scale_layout(cfg))),
            "lr": In(stream.Signature(lowrank_layout(cfg))),
            "o": Out(stream.Signature(result_layout(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        rows, cols = cfg.rows, cfg.cols
        part, scales, low = self.partials.payload, self.s.payload, self.lr.payload
        row_bits = range(max(rows, 2))  # at least 1 bit: Verilog has no 0-bit vectors

        # Which tile inputs are complete, and where each source is within its rows.
        main_done, low_done, draining, tile_over = Signal(), Signal(), Signal(), Signal()
        part_row, low_row, out_row = (Signal(row_bits, name=n)
                                      for n in ("part_row", "low_row", "out_row"))
        take_part, take_low = Signal(), Signal()
        m.d.comb += [
            take_part.eq(~draining & ~main_done & self.partials.valid & self.s.valid),
            take_low.eq(~draining & ~low_done & self.lr.valid & ~take_part),
            self.partials.ready.eq(take_part),
            self.s.ready.eq(take_part & part.last),
            self.lr.ready.eq(take_low & (low_row == rows - 1)),
        ]

        # Stage 1: the update's operands.
        p_shape = signed(max(cfg.acc_width, 16))
        valid1, row1 = Signal(), Signal(row_bits)
        p1 = [Signal(p_shape, name=f"p1_{c}") for c in range(cols)]
        a1 = Signal(signed(17))
        b1 = [Signal(unsigned(16), name=f"b1_{c}") for c in range(cols)]
        m.d.sync += valid1.eq(take_part | take_low)
        with m.If(take_part):
            m.d.sync += [row1.eq(part_row), a1.eq(scales.a_scale[part_row]),
                         part_row.eq(_next_row(part_row, rows)),
                         tile_over.eq(tile_over | part.overflow)]
            m.d.sync += [p1[c].eq(part.c[c]) for c in range(cols)]
            m.d.sync += [b1[c].eq(scales.w_scale[c]) for c in range(cols)]
            with m.If(part.last & scales.last):
                m.d.sync += main_done.eq(1)
        with m.Elif(take_low):
            m.d.sync += [row1.eq(low_row), a1.eq(low.u[low_row]),
                         low_row.eq(_next_row(low_row, rows))]
            m.d.sync += [p1[c].eq(low.l2[c]) for c in range(cols)]
            m.d.sync += [b1[c].eq(low.scale) for c in range(cols)]
            with m.If((low_row == rows - 1) & low.last):
                m.d.sync += low_done.eq(1)

        # Stage 2: p * a. Stage 3: (p * a) * b.
        valid2, row2 = Signal(), Signal(row_bits)
        t2 = [Signal(signed(p_shape.width + 17), name=f"t2_{c}") for c in range(cols)]
        b2 = [Signal(unsigned(16), name=f"b2_{c}") for c in range(cols)]
        m.d.sync += [valid2.eq(valid1), row2.eq(row1)]
        m.d.sync += [t2[c].eq(p1[c] * a1) for c in range(cols)]
        m.d.sync += [b2[c].eq(b1[c]) for c in range(cols)]
        valid3, row3 = Signal(), Signal(row_bits)
        t3 = [Signal(signed(64), name=f"t3_{c}") for c in range(cols)]
        m.d.sync += [valid3.eq(valid2), row3.eq(row2)]
        m.d.sync += [t3[c].eq(t2[c] * b2[c]) for c in range(cols)]

        # The bank: stage 3's product joins its row; a row leaving is cleared.
        bank = [[Signal(signed(64), name=f"sum_{r}_{c}") for c in range(cols)]
                for r in range(rows)]
        leaving = self.o.valid & self.o.ready
        for r in range(rows):
            with m.If(leaving & (out_row == r)):
                m.d.sync += [bank[r][c].eq(0) for c in range(cols)]
            with m.Elif(valid3 & (row3 == r)):
                m.d.sync += [bank[r][c].eq(bank[r][c] + t3[c]) for c in range(cols)]

        # Drain: once both sources are complete and the pipeline is empty.
        with m.If(main_done & low_done & ~valid1 & ~valid2 & ~valid3):
            m.d.sync += draining.eq(1)
        out_sums = Signal(len(Cat(*bank[0])))
        with m.Switch(out_row):
            for r in range(rows):
                with m.Case(r) if r < rows - 1 else m.Default():
                    m.d.comb += out_sums.eq(Cat(*bank[r]))
        m.d.comb += [self.o.valid.eq(draining),
                     self.o.payload.eq(Cat(out_sums, out_row == rows - 1, tile_over))]
        with m.If(leaving):
            m.d.sync += out_row.eq(_next_row(out_row, rows))
            with m.If(out_row == rows - 1):
                m.d.sync += [draining.eq(0), main_done.eq(0), low_done.eq(0),
                             tile_over.eq(0)]
        return m


def _next_row(row, rows: int):
    """The row after ``row``, back to 0 after R-1."""
    return Mux(row == rows - 1, 0, row + 1)
