"""The stream players and checkers can fail: deliberately broken DUTs are caught.

Each DUT is a one-beat stream buffer; the correct one must pass on every simulator,
and each broken variant must be flagged by the player that watches for its fault.
"""
import numpy as np
import pytest
from amaranth import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from sim import runner
from sim.job import Job, Sink, Source
from sim.streams import fixed, random_pattern


class Buffer(wiring.Component):
    """A 1-deep registered stream buffer; ``fault`` injects one kind of bug."""

    def __init__(self, fault=None):
        self.fault = fault
        super().__init__({"i": In(stream.Signature(unsigned(8))),
                          "o": Out(stream.Signature(unsigned(8)))})

    def elaborate(self, platform):
        m = Module()
        full, data, count = Signal(), Signal(8), Signal(2)
        m.d.comb += [self.i.ready.eq(~full | self.o.ready), self.o.valid.eq(full),
                     self.o.payload.eq(data)]
        if self.fault == "unstable":  # payload changes while stalled
            m.d.comb += self.o.payload.eq(data + (~self.o.ready & count[0]))
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += full.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [full.eq(1), data.eq(self.i.payload), count.eq(count + 1)]
            if self.fault == "drop":  # every fourth beat is swallowed
                with m.If(count == 3):
                    m.d.sync += full.eq(0)
        m.d.sync += count.eq(count + 1) if self.fault == "unstable" else []
        return m


def _job(beats):
    return Job(sources={"i": Source(beats, random_pattern(0.7, seed=4))},
               sinks={"o": Sink(len(beats), fixed([1, 0, 0, 1, 0]))}, max_cycles=2000)


@pytest.mark.parametrize("fault", [None, "unstable", "drop"])
def test_players_catch_broken_buffers(any_sim, fault, tmp_path):
    beats = [int(x) for x in np.random.default_rng(0).integers(0, 256, 40)]
    result = runner.run(any_sim, Buffer(fault), "buffer", _job(beats), tmp_path)
    faithful = result.beats["o"] == beats and not result.timed_out
    if fault is None:
        assert faithful and not result.violations
        assert len(result.cycles["i"]) == len(beats)
    elif fault == "unstable":
        assert result.violations and "changed before ready" in result.violations[0]
    else:
        assert result.timed_out and len(result.beats["o"]) < len(beats)
