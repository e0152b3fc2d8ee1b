"""w4a4's output stage: scaled group partials and the low-rank branch summed in 64 bits.

For each output tile the epilogue keeps an R x C bank of int64 sums and applies update
rows, one per cycle and C lanes wide, as sum[r][c] += p[c] * a * b[c]:

* a group's partial rows from the array (R of them, in row order): p = the int4 x int4
  partials, a = a_scale[m0+r, g], b = w_scale[g, n0:n0+C] (from the ``s`` beat, taken
  with the group's final row);
* a low-rank beat j, spread over R cycles (row r on the r-th): p = L2[j, n0:n0+C],
  a = U[m0+r, j], b = the branch's scale, so the bank gains scale * (U @ L2).

Updates come in sets of R rows in row order, one set at a time: partial rows when the
array has a group ready (it must not wait), otherwise a low-rank beat. The group's scale
beat waits in a register here from its arrival, and the array's ``ready`` is a register,
so the choice of a set reads the input valids and registers only. So the bank is a
ring: every update adds to the head row and rotates the bank by one row, and after a set
every row is back in place; C 64-bit adders serve all R rows, and no row index or
multiplexer reaches the bank. Updates pass ``depth`` pipeline registers before the bank: the
operands, then p * a and (p * a) * b on two :class:`~hdl.multiplier.WideMultiplier`
(registered DSPs, no multiply on the bank's path): 1 + 3 + 4 = 8 for the default group
of 64 (14-bit partials, 16-bit low-rank values). When the tile's final group
(``s.last``) and final low-rank beat (``lr.last``) are in and the pipeline is empty, the
bank leaves as R result rows, one per cycle, rotating a cleared row in behind each; no
update enters meanwhile.
"""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.mac import MacConfig

from .checks import require_config
from .multiplier import WideMultiplier, wide_latency
from .lanes import kept_copies
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
        part, low = self.partials.payload, self.lr.payload
        # The group's scale beat is held here from its arrival until its group's last
        # partial row, so whether a set may start depends on registers only.
        scales = Signal(scale_layout(cfg), name="scales")
        s_full = Signal(name="s_full")
        m.d.comb += self.s.ready.eq(~s_full)
        with m.If(self.s.valid & ~s_full):
            m.d.sync += scales.eq(self.s.payload)

        # Which tile inputs are complete; the set in progress (source and row).
        main_done, low_done = Signal(name="main_done"), Signal(name="low_done")
        draining, tile_over = Signal(name="draining"), Signal(name="tile_over")
        in_flight = Signal(name="in_flight")  # an update is in the pipeline before the bank
        in_set, set_is_low = Signal(name="in_set"), Signal(name="set_is_low")
        row = Signal(range(max(rows, 2)))  # at least 1 bit: Verilog has no 0-bit vectors
        # Whether a set of each source may start once none is in progress, registered
        # from the next values of the flags above (none depends on the input valids),
        # so the choice of a set is one LUT after the valids.
        may_part, may_low = Signal(init=1, name="may_part"), Signal(init=1, name="may_low")
        in_part_set, in_low_set = in_set & ~set_is_low, in_set & set_is_low
        part_ready = ~in_set & may_part & self.partials.valid & s_full
        take_part, take_low = Signal(name="take_part"), Signal(name="take_low")
        m.d.comb += [take_part.eq(in_part_set | part_ready),
                     take_low.eq(in_low_set |
                                 (~in_set & may_low & self.lr.valid & ~part_ready))]
        set_end = row == rows - 1
        m.d.comb += self.lr.ready.eq(take_low & set_end)
        taking = take_part | take_low
        leaving = self.o.valid & self.o.ready
        tile_left = leaving & set_end
        # A source's final set ends on the set's last row, which (R > 1) is not its first.
        ending_part, ending_low = \
            (take_part, take_low) if rows == 1 else (in_part_set, in_low_set)
        group_ends = ending_part & part.last  # its scale beat is used up
        main_done_next = Mux(tile_left, 0, main_done | (group_ends & scales.last))
        low_done_next = Mux(tile_left, 0, low_done | (ending_low & set_end & low.last))
        draining_next = Mux(tile_left, 0, draining | (main_done & low_done & ~in_flight))
        in_set_next = Mux(taking, ~set_end, in_set)
        may_part_next = ~(draining_next | main_done_next)
        s_full_next = Mux(s_full, ~group_ends, self.s.valid)
        m.d.sync += [in_set.eq(in_set_next), s_full.eq(s_full_next),
                     set_is_low.eq(Mux(taking, take_low, set_is_low)),
                     main_done.eq(main_done_next), low_done.eq(low_done_next),
                     draining.eq(draining_next), may_part.eq(may_part_next),
                     may_low.eq(~(draining_next | low_done_next))]
        # The array's ready is a register: in a set of partials, or when one may start
        # and its scales are in (then valid & ready is take_part). Its next value, by
        # cases, so that the input valids pass few LUTs: a set of R > 1 rows taken now
        # continues; nothing taken (no partials, so lr's beat decides) leaves it idle.
        may_start_part = may_part_next & s_full_next
        idle_next = may_start_part if rows == 1 else \
            part_ready | (~(may_low & self.lr.valid) & may_start_part)
        m.d.sync += self.partials.ready.eq(
            Mux(in_set, Mux(set_end, may_start_part, ~set_is_low), idle_next))
        with m.If(taking):
            m.d.sync += row.eq(Mux(set_end, 0, row + 1))
        with m.If(take_part):
            m.d.sync += tile_over.eq(tile_over | part.overflow)
        with m.If(tile_left):
            m.d.sync += tile_over.eq(0)

        # Stage 1: both sources' operands, loaded every cycle (no enable: the choice of
        # a set drives a few flip-flops, not the operand bits). The row's a is picked
        # by the set's row counter (a register): the s and lr beats hold for the set.
        # The source taken (``low1``, one copy per column) then selects each operand on
        # its way into the multipliers' input registers.
        p_shape = signed(self._p_width)
        valid1 = stage(m, taking, 1, "valid1")
        low1 = kept_copies(m, take_low, cols, "low1_")
        part_p = [stage(m, part.c[c], 1, f"part_p{c}") for c in range(cols)]
        part_b = [stage(m, scales.w_scale[c], 1, f"part_b{c}") for c in range(cols)]
        low_p = [stage(m, low.l2[c], 1, f"low_p{c}") for c in range(cols)]
        part_a = stage(m, scales.a_scale[row], 1, "part_a")
        low_a = stage(m, low.u[row], 1, "low_a")
        low_b = stage(m, low.scale, 1, "low_b")

        # Then p * a, and (p * a) * b, each on a WideMultiplier (registered DSPs); the
        # column's b waits beside the first.
        t3, valids = [], [valid1]
        for j in range(self.depth - 1):
            valids.append(stage(m, valids[-1], 1, f"valid{j + 2}"))
        arriving = valids[-1]
        m.d.comb += in_flight.eq(Cat(*valids).any())
        for c in range(cols):
            m.submodules[f"pa{c}"] = pa = WideMultiplier(p_shape.width, 17)
            m.submodules[f"pab{c}"] = pab = WideMultiplier(p_shape.width + 17, 17)
            b1 = Mux(low1[c], low_b, part_b[c])
            m.d.comb += [pa.a.eq(Mux(low1[c], low_p[c], part_p[c])),
                         pa.b.eq(Mux(low1[c], low_a, part_a)), pab.a.eq(pa.p),
                         pab.b.eq(delay(m, b1, pa.latency, 1, f"b{c}"))]
            t3.append(pab.p)
        # The ring: an update or a leaving row rotates it; the head row moves to the
        # tail with the update added, or cleared.
        bank = [[Signal(signed(64), name=f"sum_{r}_{c}") for c in range(cols)]  # pragma: no mutate
                for r in range(rows)]
        with m.If(arriving | leaving):
            for r in range(rows - 1):
                m.d.sync += [bank[r][c].eq(bank[r + 1][c]) for c in range(cols)]
            m.d.sync += [bank[-1][c].eq(Mux(leaving, 0, bank[0][c] + t3[c]))
                         for c in range(cols)]

        # Drain: once both sources are complete and the pipeline is empty.
        m.d.comb += [self.o.valid.eq(draining),
                     self.o.payload.eq(Cat(*bank[0], row == rows - 1, tile_over))]
        with m.If(leaving):
            m.d.sync += row.eq(Mux(set_end, 0, row + 1))
        return m
