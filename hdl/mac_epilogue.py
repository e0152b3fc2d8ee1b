"""w4a4's output stage: scaled group partials and the low-rank branch summed in 64 bits.

For each output tile the epilogue keeps an R x C bank of int64 sums and applies update
rows, one per cycle and C lanes wide, as sum[r][c] += p[c] * a * b[c]:

* a group's partial rows from the array (R of them, in row order): p = the int4 x int4
  partials, a = a_scale[m0+r, g], b = w_scale[g, n0:n0+C] (from the ``s`` beat, taken
  with the group's final row);
* a low-rank beat j, spread over R cycles (row r on the r-th): p = L2[j, n0:n0+C],
  a = U[m0+r, j], b = the branch's scale, so the bank gains scale * (U @ L2).

Updates come in sets of R rows in row order, one set at a time: partial rows when the
array has a group ready (it must not wait), otherwise a low-rank beat. So the bank is a
ring: every update adds to the head row and rotates the bank by one row, and after a set
every row is back in place; C 64-bit adders serve all R rows, and no row index or row
multiplexer exists. Updates pass ``depth`` pipeline registers before the bank: the
operands, then p * a and (p * a) * b on two :class:`~hdl.multiplier.WideMultiplier`
(registered DSPs, no multiply on the bank's path): 1 + 3 + 4 = 8 for the default group
of 64 (14-bit partials, 16-bit low-rank values). When the tile's final group
(``s.last``) and final low-rank beat (``lr.last``) are in and the pipeline is empty, the
bank leaves as R result rows, one per cycle, rotating a cleared row in behind each; no
update enters meanwhile.
"""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.mac import MacConfig

from .checks import require_config
from .multiplier import WideMultiplier, wide_latency
from .pipeline import delay, stage
from .mac_layouts import lowrank_layout, partial_layout, result_layout, scale_layout


class Epilogue(wiring.Component):
    """Ports: ``partials`` (the array's group sums), ``s`` (scales), ``lr`` (low-rank
    beats) in; ``o`` (int64 result rows) out."""

    def __init__(self, cfg: MacConfig):
        require_config(self, cfg, MacConfig)
        self.cfg = cfg
        self._p_width = max(cfg.acc_width, 16)
        #: registers an update passes before the bank: its operands, then the two
        #: multipliers
        self.depth = 1 + wide_latency(self._p_width) + wide_latency(self._p_width + 17)
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

        # Which tile inputs are complete; the set in progress (source and row).
        main_done, low_done, draining, tile_over = Signal(), Signal(), Signal(), Signal()
        in_set, set_is_low = Signal(), Signal()
        row = Signal(range(max(rows, 2)))  # at least 1 bit: Verilog has no 0-bit vectors
        part_ready = ~main_done & self.partials.valid & self.s.valid
        low_ready = ~low_done & self.lr.valid
        take_part, take_low = Signal(), Signal()
        with m.If(in_set):
            m.d.comb += [take_part.eq(~set_is_low), take_low.eq(set_is_low)]
        with m.Elif(~draining):
            m.d.comb += [take_part.eq(part_ready), take_low.eq(low_ready & ~part_ready)]
        set_end = row == rows - 1
        m.d.comb += [
            self.partials.ready.eq(take_part),
            self.s.ready.eq(take_part & part.last),
            self.lr.ready.eq(take_low & set_end),
        ]
        with m.If(take_part | take_low):
            m.d.sync += [row.eq(Mux(set_end, 0, row + 1)), in_set.eq(~set_end),
                         set_is_low.eq(take_low)]
        with m.If(take_part):
            m.d.sync += tile_over.eq(tile_over | part.overflow)
            with m.If(part.last & scales.last):
                m.d.sync += main_done.eq(1)
        with m.If(take_low & set_end & low.last):
            m.d.sync += low_done.eq(1)

        # Stage 1: the update's operands. The set's per-row a (a_scale or u) is taken
        # from the beat at the set's first row and shifted out of ``held`` at the
        # others, so no row multiplexer sits before the multipliers.
        p_shape = signed(self._p_width)
        valid1 = Signal()
        p1 = [Signal(p_shape, name=f"p1_{c}") for c in range(cols)]  # pragma: no mutate
        a1 = Signal(signed(17))
        held = [Signal(signed(17), name=f"held_a{r}") for r in range(1, rows)]  # pragma: no mutate
        b1 = [Signal(unsigned(16), name=f"b1_{c}") for c in range(cols)]  # pragma: no mutate
        taking = take_part | take_low
        m.d.sync += valid1.eq(taking)
        row_a = [Mux(take_part, scales.a_scale[r], low.u[r]) for r in range(rows)]
        if held:
            with m.If(taking & (row == 0)):
                m.d.sync += [a1.eq(row_a[0])] + [h.eq(a) for h, a in zip(held, row_a[1:])]
            with m.Elif(taking):
                m.d.sync += [a1.eq(held[0])] + [h.eq(n) for h, n in zip(held, held[1:])]
        else:  # one row: every set is a single update
            with m.If(taking):
                m.d.sync += a1.eq(row_a[0])
        with m.If(take_part):
            m.d.sync += [p1[c].eq(part.c[c]) for c in range(cols)]
            m.d.sync += [b1[c].eq(scales.w_scale[c]) for c in range(cols)]
        with m.Elif(take_low):
            m.d.sync += [p1[c].eq(low.l2[c]) for c in range(cols)]
            m.d.sync += [b1[c].eq(low.scale) for c in range(cols)]

        # Then p * a, and (p * a) * b, each on a WideMultiplier (registered DSPs); the
        # column's b waits beside the first.
        t3, valids = [], [valid1]
        for j in range(self.depth - 1):
            valids.append(stage(m, valids[-1], 1, f"valid{j + 2}"))
        arriving, in_flight = valids[-1], Cat(*valids).any()
        for c in range(cols):
            m.submodules[f"pa{c}"] = pa = WideMultiplier(p_shape.width, 17)
            m.submodules[f"pab{c}"] = pab = WideMultiplier(p_shape.width + 17, 17)
            m.d.comb += [pa.a.eq(p1[c]), pa.b.eq(a1), pab.a.eq(pa.p),
                         pab.b.eq(delay(m, b1[c], pa.latency, 1, f"b{c}"))]
            t3.append(pab.p)
        # The ring: an update or a leaving row rotates it; the head row moves to the
        # tail with the update added, or cleared.
        bank = [[Signal(signed(64), name=f"sum_{r}_{c}") for c in range(cols)]  # pragma: no mutate
                for r in range(rows)]
        leaving = self.o.valid & self.o.ready
        with m.If(arriving | leaving):
            for r in range(rows - 1):
                m.d.sync += [bank[r][c].eq(bank[r + 1][c]) for c in range(cols)]
            m.d.sync += [bank[-1][c].eq(Mux(leaving, 0, bank[0][c] + t3[c]))
                         for c in range(cols)]

        # Drain: once both sources are complete and the pipeline is empty.
        with m.If(main_done & low_done & ~in_flight):
            m.d.sync += draining.eq(1)
        m.d.comb += [self.o.valid.eq(draining),
                     self.o.payload.eq(Cat(*bank[0], row == rows - 1, tile_over))]
        with m.If(leaving):
            m.d.sync += row.eq(Mux(set_end, 0, row + 1))
            with m.If(set_end):
                m.d.sync += [draining.eq(0), main_done.eq(0), low_done.eq(0),
                             tile_over.eq(0)]
        return m
