"""I/O-narrowing harness for out-of-context synthesis of one Component.

A block's ports are far wider than a small FPGA's pins, so the block is placed
behind :class:`SynthHarness`, whose only pins are ``sin``, ``shift`` and
``sout`` (plus the ``clk``/``rst`` of the ``sync`` domain, which the DUT shares).

Cost, for ``n_in`` DUT input bits and ``n_out`` DUT output bits:

* input side: ``n_in`` flip-flops with clock enable and no LUTs;
* output side: ``n_out + 1`` capture flip-flops, then an XOR tree of about
  ``(n_out + 1) / 3`` 4-input LUTs, each followed by a flip-flop.
"""

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SynthHarness", "XOR_FANIN"]

#: Bits XORed by one tree node: one 4-input LUT on both targets.
XOR_FANIN = 4


def dut_ports(dut):
    """Split every port of ``dut`` into (inputs, outputs), each a list of Values."""
    inputs, outputs = [], []
    for _path, member, value in dut.signature.flatten(dut):
        (inputs if member.flow == In else outputs).append(Value.cast(value))
    return inputs, outputs


class SynthHarness(wiring.Component):
    """Drives every DUT input from a shift register and folds every output into one pin.

    On ``shift`` the chain moves one bit and takes ``sin`` at its head; each chain
    flip-flop drives one DUT input bit, so no input is a constant. Every DUT
    output bit, and the chain's last bit, is registered and XOR-reduced through a
    registered tree into ``sout``, so no output (and no chain bit) is unobserved.
    """

    sin: In(1)
    shift: In(1)
    sout: Out(1)

    def __init__(self, dut):
        super().__init__()
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.dut
        inputs, outputs = dut_ports(self.dut)
        tail = self._input_chain(m, inputs)
        m.d.comb += self.sout.eq(self._xor_tree(m, Cat(*outputs, tail)))
        return m

    def _input_chain(self, m, inputs):
        """Shift ``sin`` through one flip-flop per DUT input bit; return the last bit."""
        width = sum(len(value) for value in inputs)
        if width == 0:
            return self.sin
        chain = Signal(width, reset_less=True)
        with m.If(self.shift):
            m.d.sync += chain.eq(Cat(self.sin, chain[:-1]))
        m.d.comb += Cat(*inputs).eq(chain)
        return chain[-1]

    @staticmethod
    def _xor_tree(m, bits):
        """Register ``bits``, then XOR ``XOR_FANIN`` at a time per level until one bit."""
        level = Signal(len(bits), reset_less=True)
        m.d.sync += level.eq(bits)
        while len(level) > 1:
            groups = [level[i:i + XOR_FANIN] for i in range(0, len(level), XOR_FANIN)]
            reduced = Signal(len(groups), reset_less=True)
            m.d.sync += reduced.eq(Cat(group.xor() for group in groups))
            level = reduced
        return level
