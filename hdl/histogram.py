"""Lane-parallel histograms and the threshold-bin search of radix selection, pipelined
(a register every two LUT-sized layers: docs/timing.md).

The histogram keeps, per bin b, the count of the elements in bins b and above (its
suffix count), so the threshold search needs no prefix network: the decode that
puts each lane into its bin puts it into every bin below just as cheaply.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Shape, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .lanes import kept_copies, onehot_select
from .pipeline_fast import delay, registered, staged_reduce


def histogram_latency(lanes: int) -> int:
    """Cycles from a lane's bin id to its count in :class:`Histogram`'s ``at_least``."""
    tree, width = 0, lanes
    while width > 4:
        tree, width = tree + 1, -(-width // 4)
    return tree + 2


def popcount4(bits) -> Value:
    """The count (3 bits) of up to four bits as plain logic: each result bit is one
    LUT4 (an adder would be a carry chain of its own)."""
    a, b, c, d = (list(bits) + [Const(0)] * 4)[:4]
    carry = (a ^ b) & (c ^ d)
    return Cat(a ^ b ^ c ^ d, (a & b) ^ (c & d) ^ carry, a & b & c & d)


class Histogram(wiring.Component):
    """Suffix counts of ``bins`` bins updated with up to P lane bin ids per cycle:
    ``at_least[b]`` counts the lanes (with ``mask`` set) whose bin id is b or above.
    ``bin_ids`` come one cycle ahead of their ``mask`` and ``clear``.

    Registered stages: each lane's bin id decoded into the terms of its thermometer
    (:class:`Thermometer`; in the cycle before its mask); the thermometer bits under
    ``mask`` (with ``clear`` beside them); per bin, the bits counted four lanes at a
    time in LUTs (:func:`popcount4`) and, beyond 4 lanes, two such counts added; those
    sums added four to a stage (two adder layers) while more than two are left; the
    counters, which add the last one or two (restarting from them where the lanes came
    with ``clear``). A lane whose mask is presented in cycle t shows in ``at_least``
    from cycle t + ``latency`` (:func:`histogram_latency`: 2 for up to 4 lanes, 3 for up
    to 16, 4 for up to 64).

    ``bin_ids`` comes as ``copies`` equal copies, copy c decoded into the upper-half
    term registers of the c-th of ``copies`` equal runs of bins (the lower-half terms
    are copy 0's), so no one register reaches every bin's decoder.
    """

    #: bins restarted by one copy of ``clear``
    GROUP = 8

    def __init__(self, lanes: int, bins: int, max_count: int, copies: int = 1):
        self.lanes, self.bins, self.copies = lanes, bins, copies
        self.latency = histogram_latency(lanes)
        ids = data.ArrayLayout(data.ArrayLayout(range(bins), lanes), copies)
        super().__init__({"bin_ids": In(ids), "mask": In(lanes), "clear": In(1),
                          "at_least": Out(data.ArrayLayout(range(max_count + 1), bins))})

    def elaborate(self, platform):
        m = Module()
        lanes, bins = self.lanes, self.bins
        # ``clear`` restarts every counter: its last register is one copy per group of
        # GROUP bins (kept apart: yosys merges equal registers), so no one net reaches
        # all the counters (it was the routed critical path: 8.6 ns of wire).
        early = delay(m, self.clear, self.latency - 2, "clear")
        clears = kept_copies(m, early, -(-bins // self.GROUP), "clear_g")
        decoders = [[Thermometer(m, self.bin_ids[0][i], f"c0_{i}_") for i in range(lanes)]]
        decoders += [[Thermometer(m, ids[i], f"c{c}_{i}_", lower=decoders[0][i])
                      for i in range(lanes)] for c, ids in enumerate(self.bin_ids) if c]
        for b in range(bins):
            clear = clears[b // self.GROUP]
            c = b * self.copies // bins
            decoded = registered(m, [self.mask[i] & decoders[c][i].at_least(b)
                                     for i in range(lanes)], f"in{b}_")
            fours = [popcount4(decoded[i:i + 4]) for i in range(0, lanes, 4)]
            if lanes > 4:
                fours = registered(m, [sum(fours[i:i + 2]) for i in range(0, len(fours), 2)],
                                   f"four{b}_")
            width, count = len(self.at_least[b]), self.at_least[b]
            partial, stages = staged_reduce(m, fours, lambda x, y: (x + y)[:width], f"sum{b}_",
                                            last=2)
            assert 2 + (lanes > 4) + stages == self.latency
            m.d.sync += count.eq(Mux(clear, 0, count) + sum(partial))
        return m


class Thermometer:
    """``value >= b`` for constants b, one cycle after ``value``, without a compare
    (yosys maps a compare to a carry chain): ``value``'s upper and lower halves are
    decoded apart into registered terms, each made once and shared by the bins that
    use it, so a bin's bit is one LUT on three registers: (upper > b's upper) |
    (upper == b's upper & lower >= b's lower). (Unregistered, ABC chains such terms
    through one another, 5 LUTs deep at 16 lanes.) With ``lower``, another
    Thermometer of the same value, the lower-half terms are ``lower``'s."""

    def __init__(self, m: Module, value, name: str, lower: Thermometer | None = None):
        self.m, self.name, self.value, self.lower = m, name, Value.cast(value), lower
        self.low_bits = len(self.value) // 2
        self._terms = {}

    def _term(self, kind: str, const: int) -> Value:
        if kind == "low" and self.lower is not None:
            return self.lower._term(kind, const)
        if (kind, const) not in self._terms:
            low, high = self.value[:self.low_bits], self.value[self.low_bits:]
            table = {"above": lambda v: v > const, "equal": lambda v: v == const,
                     "low": lambda v: v >= const}[kind]
            part = low if kind == "low" else high
            bits = Const(sum(table(v) << v for v in range(1 << len(part))), 1 << len(part))
            self._terms[kind, const] = registered(
                self.m, [bits.bit_select(part, 1) if len(part) else bits[0]],
                f"{self.name}{kind}{const}_")[0]
        return self._terms[kind, const]

    def at_least(self, b: int) -> Value:
        if b == 0:
            return Const(1)
        high, low = b >> self.low_bits, b & ((1 << self.low_bits) - 1)
        if low == 0:
            return self._term("above", high - 1)
        return self._term("above", high) | (self._term("equal", high) & self._term("low", low))


class ThresholdBin(wiring.Component):
    """The bin holding the ``need``-th largest counted element, from suffix counts
    (``at_least[b]``: the elements in bins b and above, as :class:`Histogram` keeps
    them): the highest bin b whose suffix count reaches ``need``. ``above`` is the count
    of the bins above b; ``exact``: b's suffix count is exactly ``need``. When the total
    is below ``need`` the answer is bin 0 (nothing may be discarded yet).

    Registered stages: per bin, whether it is the highest whose suffix count reaches
    ``need`` (one-hot) and whether its count equals ``need``; per group of
    :attr:`GROUP` bins, the answer of the bin in it that is that one (if one is); the
    answer of the group holding it. ``at_least`` and ``need`` of cycle t are answered
    in cycle t + ``latency`` (3).
    """

    latency = 3
    GROUP = 8

    def __init__(self, at_least: data.ArrayLayout, need_width: int):
        self.bins, count_shape = at_least.length, Shape.cast(at_least.elem_shape)
        width = count_shape.width
        super().__init__({"at_least": In(at_least), "need": In(need_width),
                          "bin": Out(range(self.bins)), "above": Out(width), "exact": Out(1)})

    def elaborate(self, platform):
        m = Module()
        bins, suffix = self.bins, list(self.at_least) + [Const(0, len(self.above))]
        # suffix counts fall with b, so the bins that reach `need` are 0..answer: the
        # answer is the edge (bin 0 when none reaches it, whose count is then short),
        # registered one-hot with whether each bin's count equals `need` (it reaches
        # `need` and does not exceed it: compares as carry chains, where an equality
        # compare maps to a deep LUT tree)
        hit = [suffix[b] >= self.need for b in range(bins)] + [Const(0)]
        first = registered(m, [~hit[1]] + [hit[b] & ~hit[b + 1] for b in range(1, bins)],
                           "first")
        exact = registered(m, [hit[b] & (suffix[b] <= self.need) for b in range(bins)],
                           "exact")
        counts = registered(m, suffix, "sfx")
        answer = [Cat(Const(b, range(bins)), counts[b + 1], exact[b]) for b in range(bins)]
        # the answer selected within each group of GROUP bins, then among the groups
        groups = [range(g, min(g + self.GROUP, bins)) for g in range(0, bins, self.GROUP)]
        in_group = registered(m, [Cat(first[b] for b in group).any() for group in groups],
                              "in_group")
        picked = registered(m, [onehot_select([first[b] for b in group],
                                              [answer[b] for b in group]) for group in groups],
                            "picked")
        m.d.sync += Cat(self.bin, self.above, self.exact).eq(onehot_select(in_group, picked))
        return m
