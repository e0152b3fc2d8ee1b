"""I/O-narrowing harness for out-of-context synthesis of one Component.

A block's ports are far wider than a small FPGA's pins, so the block is placed
behind :class:`SynthHarness`, whose only pins are ``sin``, ``shift`` and
``sout`` (plus the ``clk``/``rst`` of the ``sync`` domain, which the DUT shares).

Cost, for ``n_in`` DUT input bits and ``n_out`` DUT output bits:

* input side: ``n_in`` flip-flops with clock enable and no LUTs;
* output side: ``n_out + 1`` capture flip-flops, then an XOR tree of about
  ``(n_out + 1) / 3`` 4-input LUTs, each followed by a flip-flop
  (:func:`harness_ffs` counts all the flip-flops).

:class:`NullDut` has the ports of a given DUT and no logic; synthesizing the
harness around it measures the harness's own cost (see :mod:`synth.flow`).
"""

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["NullDut", "SynthHarness", "XOR_FANIN", "dut_ports", "harness_ffs", "port_widths"]

#: Bits XORed by one tree node: one 4-input LUT on both targets.
XOR_FANIN = 4


def dut_ports(dut):
    """Split every port of ``dut`` into (inputs, outputs), each a list of Values."""
    inputs, outputs = [], []
    for _path, member, value in dut.signature.flatten(dut):
        (inputs if member.flow == In else outputs).append(Value.cast(value))
    return inputs, outputs


def port_widths(dut):
    """(input widths, output widths) of ``dut``'s ports, in the harness's order."""
    inputs, outputs = dut_ports(dut)
    return tuple(map(len, inputs)), tuple(map(len, outputs))


def harness_ffs(n_in, n_out):
    """Flip-flops of the harness around a DUT with ``n_in`` input and ``n_out`` output bits."""
    width, ffs = n_out + 1, n_in + n_out + 1
    while width > 1:
        width = -(-width // XOR_FANIN)
        ffs += width
    return ffs


class NullDut(wiring.Component):
    """A DUT stand-in with the given port widths that costs nothing and hides nothing.

    Input port ``i<k>`` has width ``in_widths[k]``, output port ``o<k>`` width
    ``out_widths[k]``. Output bit ``j`` is a wire from input bit ``j mod (n_in - 1)``
    (from the only input bit if ``n_in == 1``), so the stand-in has no cells and,
    behind :class:`SynthHarness`, no capture flip-flop gets a constant input
    (which ``opt_dff`` would fold despite ``keep``). The chain's last bit, which
    the harness captures itself, drives no output when there are others. Output
    bits beyond ``n_in - 1`` repeat sources; those capture flip-flops have equal
    inputs and are kept apart only by their ``keep`` attribute (set by
    :mod:`synth.flow`). With no input bits the outputs are constant and the
    harness cannot be measured this way (the flow's check then fails).
    """

    def __init__(self, in_widths, out_widths):
        self._in_widths, self._out_widths = tuple(in_widths), tuple(out_widths)
        super().__init__({
            **{f"i{k}": In(w) for k, w in enumerate(self._in_widths)},
            **{f"o{k}": Out(w) for k, w in enumerate(self._out_widths)},
        })

    def elaborate(self, platform):
        m = Module()
        ins = Cat(*(getattr(self, f"i{k}") for k in range(len(self._in_widths))))
        outs = Cat(*(getattr(self, f"o{k}") for k in range(len(self._out_widths))))
        if len(outs) and len(ins):
            sources = ins[:-1] if len(ins) > 1 else ins
            m.d.comb += outs.eq(Cat(sources[j % len(sources)] for j in range(len(outs))))
        return m


class SynthHarness(wiring.Component):
    """Drives every DUT input from a shift register and folds every output into one pin.

    On ``shift`` the chain moves one bit and takes ``sin`` at its head; each chain
    flip-flop drives one DUT input bit, so no input is a constant. Every DUT
    output bit, and the chain's last bit, is registered and XOR-reduced through a
    registered tree into ``sout``, so no output (and no chain bit) is unobserved.
    Each captured bit has a flip-flop (and a yosys cell) of its own, so ``wreduce``
    cannot drop a capture bit for equalling its neighbour.
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
        capture = [Signal(name=f"capture_{i}", reset_less=True) for i in range(len(bits))]
        m.d.sync += [flop.eq(bit) for flop, bit in zip(capture, bits)]
        level = Cat(capture)
        while len(level) > 1:
            groups = [level[i:i + XOR_FANIN] for i in range(0, len(level), XOR_FANIN)]
            reduced = Signal(len(groups), reset_less=True)
            m.d.sync += reduced.eq(Cat(group.xor() for group in groups))
            level = reduced
        return level
