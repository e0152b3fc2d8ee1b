"""Output-stationary INT8 matrix-multiply array (block ``mac``, mode w8a8).

Dataflow: output-stationary with broadcast operands. Each operand beat carries one
column of an A tile (R int8 values, A[m0+r, k]) and one row of a W tile (C int8 values,
W[k, n0+c]); PE (r, c) multiplies and accumulates C[m0+r, n0+c] over the tile's K beats.
Why this dataflow: both operands stream, nothing is preloaded, the int32 partial sums
never leave the PE, and any K up to ``k_max`` runs at one beat per cycle. The beat with
``last`` set closes the tile: the sums move to a shadow bank (the same cycle clears the
accumulators, so the next tile starts without a bubble) and leave as R result beats of
C int32 values while the next tile accumulates. Drain and compute overlap fully when
K >= R + 3; a shorter tile waits for the previous drain at its ``last`` beat.

Latency: a ``last`` beat accepted in cycle x gives result rows in cycles x+3 .. x+R+2.
Throughput: one operand beat per cycle, one tile per max(K, R + 3) cycles.
"""
from __future__ import annotations

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.mac import MacConfig


def operand_layout(cfg: MacConfig) -> data.StructLayout:
    """One operand beat: an A column (R values), a W row (C values), end of tile."""
    return data.StructLayout({
        "a": data.ArrayLayout(signed(8), cfg.rows),
        "w": data.ArrayLayout(signed(8), cfg.cols),
        "last": unsigned(1),
    })


def result_layout(cfg: MacConfig) -> data.StructLayout:
    """One result beat: a row of C int32 sums; ``last`` marks the tile's final row."""
    return data.StructLayout({
        "c": data.ArrayLayout(signed(32), cfg.cols),
        "last": unsigned(1),
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
        if not isinstance(cfg, MacConfig):
            raise TypeError(f"cfg must be a MacConfig, not {cfg!r}")
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

        # Stage 1: register the beat. Stage 2: register the R x C products.
        a1 = [Signal(signed(8), name=f"a1_{r}") for r in range(rows)]
        w1 = [Signal(signed(8), name=f"w1_{c}") for c in range(cols)]
        valid1, last1, valid2, close2 = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [valid1.eq(take), valid2.eq(valid1), close2.eq(valid1 & last1)]
        with m.If(take):
            m.d.sync += [a1[r].eq(self.i.payload.a[r]) for r in range(rows)]
            m.d.sync += [w1[c].eq(self.i.payload.w[c]) for c in range(cols)]
            m.d.sync += last1.eq(self.i.payload.last)

        shadow = []
        for r in range(rows):
            shadow.append([])
            for c in range(cols):
                product = Signal(signed(16), name=f"p_{r}_{c}")
                acc = Signal(signed(cfg.acc_width), name=f"acc_{r}_{c}")
                done = Signal(signed(cfg.acc_width), name=f"shadow_{r}_{c}")
                m.d.sync += product.eq(a1[r] * w1[c])
                # Written as reset-over-enable so the FPGA flip-flop's own sync reset
                # and clock enable implement the clear and the hold (no LUTs).
                with m.If(close2):
                    m.d.sync += [done.eq(acc + product), acc.eq(0)]
                with m.Elif(valid2):
                    m.d.sync += acc.eq(acc + product)
                shadow[r].append(done)

        # Drain: the shadow bank leaves one row per cycle while o.ready allows.
        full = Signal()
        row = Signal(range(max(rows, 2)))  # at least 1 bit: Verilog has no 0-bit vectors
        m.d.comb += [self.o.valid.eq(full), self.o.payload.last.eq(row == rows - 1)]
        with m.Switch(row):
            for r in range(rows):
                with m.Case(r) if r < rows - 1 else m.Default():
                    m.d.comb += [self.o.payload.c[c].eq(shadow[r][c]) for c in range(cols)]
        with m.If(close2):
            m.d.sync += [full.eq(1), row.eq(0)]
        with m.Elif(self.o.valid & self.o.ready):
            m.d.sync += row.eq(row + 1)
            with m.If(row == rows - 1):
                m.d.sync += full.eq(0)

        drained = self.o.valid & self.o.ready & self.o.payload.last
        with m.If(take & self.i.payload.last):
            m.d.sync += pending.eq(1)
        with m.Elif(drained):
            m.d.sync += pending.eq(0)
        return m
