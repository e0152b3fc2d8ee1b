"""Registered signed multipliers: :class:`Multiplier` (one DSP's worth, a register
before and after it, latency 2) and :class:`WideMultiplier` (any width of ``a``, in
17-bit chunks on Multipliers).

On an ECP5 (a platform whose ``dsp_primitive`` is ``"MULT18X18D"``, as the synthesis
flow's is) the multiplier is one MULT18X18D with its own input and output registers
enabled, so both registers sit inside the DSP block and the multiply is the only logic
between them: yosys maps an inferred ``*`` to a bare, combinational MULT18X18D and
never moves fabric flip-flops into it. On any other platform (and in simulation) the
``*`` is inferred and two fabric registers follow it; the operands are expected to
come from flip-flops. Either way ``p`` in cycle t is ``a * b`` of cycle t - 2.
"""
from __future__ import annotations

from amaranth import ClockSignal, Instance, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .compat import AnySeq

#: The ECP5 DSP multiplier: operands up to 18 bits, a 36-bit product.
MULT18X18D_WIDTH = 18


def dsp_primitive(platform) -> str | None:
    """The DSP primitive to instantiate on ``platform`` (None: infer ``*``)."""
    return getattr(platform, "dsp_primitive", None)


def free_products(platform) -> bool:
    """Whether ``platform`` is a formal proof's that takes every product as a free value
    (a block whose control never depends on a product: sim/formal.py)."""
    return getattr(platform, "free_products", False)


class Multiplier(wiring.Component):
    """``p`` = ``a`` * ``b`` (two's complement), two cycles later; no enable, no reset.

    Parameters
    ----------
    a_width, b_width : int
        Operand widths (signed), at most 18 each for the MULT18X18D.
    """

    def __init__(self, a_width: int, b_width: int):
        for name, width in (("a_width", a_width), ("b_width", b_width)):
            if not 1 <= width <= MULT18X18D_WIDTH:
                raise ValueError(f"Multiplier: {name} must be 1..{MULT18X18D_WIDTH}, "
                                 f"not {width}")
        super().__init__({"a": In(signed(a_width)), "b": In(signed(b_width)),
                          "p": Out(signed(a_width + b_width))})

    def elaborate(self, platform):
        m = Module()
        if free_products(platform):
            m.d.comb += self.p.eq(AnySeq(self.p.shape()))
            return m
        if dsp_primitive(platform) == "MULT18X18D":
            self._mult18x18d(m)
            return m
        product = Signal(self.p.shape(), reset_less=True)
        m.d.sync += [product.eq(self.a * self.b), self.p.eq(product)]
        return m

    def _mult18x18d(self, m: Module) -> None:
        """One MULT18X18D, input A, input B and output registers on CLK0, signed."""
        a, b, p = Signal(signed(18)), Signal(signed(18)), Signal(signed(36))
        m.d.comb += [a.eq(self.a), b.eq(self.b), self.p.eq(p)]
        registered = {f"p_REG_{reg}_{what}": value
                      for reg in ("INPUTA", "INPUTB", "OUTPUT")
                      for what, value in (("CLK", "CLK0"), ("CE", "CE0"), ("RST", "RST0"))}
        m.submodules.dsp = Instance(
            "MULT18X18D", **registered, p_GSR="DISABLED", p_RESETMODE="SYNC",
            **{f"i_A{j}": a[j] for j in range(18)}, **{f"i_B{j}": b[j] for j in range(18)},
            **{f"i_C{j}": 0 for j in range(18)}, **{f"o_P{j}": p[j] for j in range(36)},
            i_SIGNEDA=1, i_SIGNEDB=1, i_SOURCEA=0, i_SOURCEB=0,
            i_CLK0=ClockSignal(), i_CE0=1, i_RST0=0,
            **{f"i_{pin}{j}": 0 for pin in ("CLK", "CE", "RST") for j in (1, 2, 3)})


#: Operand bits a :class:`WideMultiplier` gives each DSP below its top chunk: 17, so
#: the chunk is a non-negative 18-bit signed operand.
CHUNK = MULT18X18D_WIDTH - 1


def wide_chunks(a_width: int) -> int:
    """DSP multipliers a :class:`WideMultiplier` with an ``a_width``-bit ``a`` uses."""
    return 1 if a_width <= MULT18X18D_WIDTH else 1 + -(-(a_width - MULT18X18D_WIDTH) // CHUNK)


def wide_latency(a_width: int) -> int:
    """Cycles of a :class:`WideMultiplier` with an ``a_width``-bit ``a``."""
    return 3 + (wide_chunks(a_width) - 1).bit_length()


class WideMultiplier(wiring.Component):
    """``p`` = ``a`` * ``b`` (signed) for an ``a`` of any width, ``b`` of up to 18 bits:
    ``a`` is cut into 17-bit chunks (the top one signed), each multiplied by ``b`` on a
    :class:`Multiplier`, each partial product registered again in the fabric (it crosses
    the route from the DSP column there, with no logic after it), and the shifted
    partials summed by a pairwise adder tree with a register after each level.
    ``latency`` = 3 + ceil(log2(chunks)) cycles, a new operand pair every cycle."""

    def __init__(self, a_width: int, b_width: int):
        if a_width < 1:
            raise ValueError(f"WideMultiplier: a_width must be at least 1, not {a_width}")
        self.chunks = wide_chunks(a_width)
        self.latency = wide_latency(a_width)
        self._b_width = b_width
        super().__init__({"a": In(signed(a_width)), "b": In(signed(b_width)),
                          "p": Out(signed(a_width + b_width))})

    def elaborate(self, platform):
        m = Module()
        partials = []
        for j in range(self.chunks):
            top = j == self.chunks - 1
            bits = self.a[CHUNK * j:] if top else self.a[CHUNK * j:CHUNK * (j + 1)]
            # a lower chunk gets a zero sign bit: it is unsigned
            m.submodules[f"mul{j}"] = mul = Multiplier(len(bits) + (not top), self._b_width)
            m.d.comb += [mul.a.eq(bits), mul.b.eq(self.b)]
            partial = Signal(mul.p.shape(), name=f"partial{j}", reset_less=True)
            m.d.sync += partial.eq(mul.p)
            partials.append(partial << (CHUNK * j))
        level = 0
        while len(partials) > 1:
            sums = []
            for j in range(0, len(partials), 2):
                total = partials[j] if j + 1 == len(partials) else partials[j] + partials[j + 1]
                reg = Signal(self.p.shape(), name=f"sum{level}_{j // 2}", reset_less=True)
                m.d.sync += reg.eq(total)
                sums.append(reg)
            partials, level = sums, level + 1
        m.d.comb += self.p.eq(partials[0])
        return m
