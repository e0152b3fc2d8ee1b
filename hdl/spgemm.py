"""SpArch's outer-product SpGEMM (block ``spgemm``): a multiplier row per merge way in
front of the streaming merger (hdl/merger.py).

Way w receives a partial matrix as work beats. In product mode a beat is one chunk of
B's row k for one nonzero a = A[r, k] of a condensed column: every lane holds (r, col,
B[k, col]) and the multiplier emits (key (r, col), a * B[k, col]). A condensed column
streams its nonzeros in row order, so each way's keys rise. In ``merged`` mode the
lanes already hold partial results (r, col, value) from an earlier merge round and pass
unchanged: rounds reuse the same RTL.
"""
from __future__ import annotations

from amaranth import Cat, Module, Mux, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.spgemm import SpgemmConfig

from .checks import require_config
from .merger import Merger, beat_stream


def work_layout(cfg: SpgemmConfig) -> data.StructLayout:
    """A work beat: ``count`` lanes of (row, col, b), A's value ``a`` for the whole beat,
    ``merged`` when the lanes are partial results, ``last`` on a stream's final beat."""
    lane = data.StructLayout({"row": unsigned(cfg.row_width), "col": unsigned(cfg.col_width),
                              "b": signed(cfg.value_width)})
    return data.StructLayout({
        "entries": data.ArrayLayout(lane, cfg.in_lanes),
        "a": signed(cfg.a_width),
        "count": unsigned(cfg.in_lanes.bit_length()),
        "last": unsigned(1),
        "merged": unsigned(1),
    })


class Multiplier(wiring.Component):
    """One way's multipliers: a registered stage, one beat a cycle, latency 1."""

    def __init__(self, cfg: SpgemmConfig):
        self.cfg = cfg
        super().__init__({"i": In(stream.Signature(work_layout(cfg))),
                          "o": Out(beat_stream(cfg.merger, cfg.in_lanes))})

    def elaborate(self, platform):
        m = Module()
        cfg, beat, out = self.cfg, self.i.payload, self.o.payload
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.valid.eq(1), out.count.eq(beat.count), out.last.eq(beat.last)]
            for j in range(cfg.in_lanes):
                lane = beat.entries[j]
                product = beat.a * lane.b[:cfg.b_width].as_signed()
                m.d.sync += [out.entries[j].key.eq(Cat(lane.col, lane.row)),
                             out.entries[j].value.eq(Mux(beat.merged, lane.b, product))]
        return m


class SpGemm(wiring.Component):
    """Input work streams ``i0`` .. ``i{W-1}`` (``cfg.in_lanes`` lanes a beat), output
    ``o``: C's entries ((row, col) key, value) in row-major order, P a beat, with the
    merger's framing. Throughput and latency: the merger's, plus one cycle."""

    def __init__(self, cfg: SpgemmConfig):
        require_config(self, cfg, SpgemmConfig)
        self.cfg = cfg
        ports = {f"i{w}": In(stream.Signature(work_layout(cfg))) for w in range(cfg.ways)}
        super().__init__({**ports, "o": Out(beat_stream(cfg.merger, cfg.lanes))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.merger = merger = Merger(self.cfg.merger)
        for w in range(self.cfg.ways):
            mult = Multiplier(self.cfg)
            m.submodules[f"mult{w}"] = mult
            wiring.connect(m, wiring.flipped(getattr(self, f"i{w}")), mult.i)
            wiring.connect(m, mult.o, getattr(merger, f"i{w}"))
        wiring.connect(m, merger.o, wiring.flipped(self.o))
        return m
