"""A one-beat stream buffer with optional injected faults, for testing the checkers."""
from amaranth import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


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
            if self.fault == "duplicate":  # every fourth beat leaves twice
                sent = Signal(2)
                m.d.sync += [full.eq(sent == 3), sent.eq(sent + 1)]
        if self.fault == "duplicate":
            m.d.comb += self.i.ready.eq(~full)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [full.eq(1), data.eq(self.i.payload), count.eq(count + 1)]
            if self.fault == "drop":  # every fourth beat is swallowed
                with m.If(count == 3):
                    m.d.sync += full.eq(0)
        m.d.sync += count.eq(count + 1) if self.fault == "unstable" else []
        return m
