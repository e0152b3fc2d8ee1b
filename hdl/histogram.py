"""Lane-parallel histograms and the threshold-bin search of radix selection, pipelined
(a register every two LUT-sized layers: docs/timing.md).

The histogram keeps, per bin b, the count of the elements in bins b and above (its
suffix count), so the threshold search needs no prefix network: the decode that
puts each lane into its bin puts it into every bin below just as cheaply.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Shape
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .lanes import onehot_select, popcount
from .pipeline import kept_copies
from .pipeline_fast import delay, registered, staged_reduce


def histogram_latency(lanes: int) -> int:
    """Cycles from a lane's bin id to its count in :class:`Histogram`'s ``at_least``."""
    tree, width = 0, lanes
    while width > 4:
        tree, width = tree + 1, -(-width // 4)
    return tree + 2


class Histogram(wiring.Component):
    """Suffix counts of ``bins`` bins updated with up to P lane bin ids per cycle:
    ``at_least[b]`` counts the lanes (with ``mask`` set) whose bin id is b or above.

    Registered stages: each lane's bin decoded as a thermometer under ``mask`` (with
    ``clear`` beside it); per bin, partial counts of the decoded bits, four lanes (two
    adder layers) per stage, until four are left; the counters, which add those four
    (restarting from them where the lanes came with ``clear``). A lane presented in
    cycle t shows in ``at_least`` from cycle t + ``latency`` (:func:`histogram_latency`:
    2 for up to 4 lanes, 3 for up to 16, 4 for up to 64).

    ``bin_ids`` comes as ``copies`` equal copies (a driver's registers, kept apart), copy
    c decoded by the c-th of ``copies`` equal runs of bins, so no one register reaches
    every bin's decoder.
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
        for b in range(bins):
            clear = clears[b // self.GROUP]
            ids = self.bin_ids[b * self.copies // bins]
            decoded = registered(m, [self.mask[i] & (ids[i] >= b) if b else self.mask[i]
                                     for i in range(lanes)], f"in{b}_")
            width, count = len(self.at_least[b]), self.at_least[b]
            partial, _ = staged_reduce(m, decoded, lambda x, y: (x + y)[:width], f"sum{b}_",
                                       last=4)
            m.d.sync += count.eq(Mux(clear, 0, count) + popcount(partial))
        return m


class ThresholdBin(wiring.Component):
    """The bin holding the ``need``-th largest counted element, from suffix counts
    (``at_least[b]``: the elements in bins b and above, as :class:`Histogram` keeps
    them): the highest bin b whose suffix count reaches ``need``. ``above`` is the count
    of the bins above b; ``exact``: b's suffix count is exactly ``need``. When the total
    is below ``need`` the answer is bin 0 (nothing may be discarded yet).

    Registered stages: per bin, whether its suffix count reaches ``need``; per group of
    :attr:`GROUP` bins, the answer of the bin in it that is the highest reaching
    ``need`` (if one is: one-hot, with whether its suffix count equals ``need``); the
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
        # compares as carry chains (an equality compare maps to a deep LUT tree): the
        # suffix count of the answer equals `need` when it falls short of `need` + 1
        reach = registered(m, [suffix[b] >= self.need for b in range(bins)], "reach")
        counts, beyond = registered(m, suffix, "sfx"), delay(m, self.need + 1, 1, "beyond")
        # suffix counts fall with b, so the bins that reach `need` are 0..answer: the
        # answer is the edge (bin 0 when none reaches it, whose count is then short)
        hit = reach + [Const(0)]
        first = [~hit[1]] + [hit[b] & ~hit[b + 1] for b in range(1, bins)]
        answer = [Cat(Const(b, range(bins)), counts[b + 1], hit[b] & (counts[b] < beyond))
                  for b in range(bins)]
        # the answer selected within each group of GROUP bins, then among the groups
        groups = [range(g, min(g + self.GROUP, bins)) for g in range(0, bins, self.GROUP)]
        in_group = registered(m, [Cat(first[b] for b in group).any() for group in groups],
                              "in_group")
        picked = registered(m, [onehot_select([first[b] for b in group],
                                              [answer[b] for b in group]) for group in groups],
                            "picked")
        m.d.sync += Cat(self.bin, self.above, self.exact).eq(onehot_select(in_group, picked))
        return m
