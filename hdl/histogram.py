"""Lane-parallel histograms and the threshold-bin search of radix selection."""
from __future__ import annotations

from amaranth import Const, Module, Mux, Shape, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .lanes import inclusive_sums, onehot_select, popcount


class Histogram(wiring.Component):
    """``bins`` counters updated with up to P lane bin ids per cycle.

    Each cycle every counter adds the number of lanes with ``mask`` set whose ``bin_ids``
    equal its bin; with ``clear`` high the counters restart from that number. Counts are
    registered: a lane counted in cycle t shows in ``counts`` from cycle t+1.
    """

    def __init__(self, lanes: int, bins: int, max_count: int):
        self.lanes, self.bins = lanes, bins
        super().__init__({"bin_ids": In(data.ArrayLayout(range(bins), lanes)), "mask": In(lanes),
                          "clear": In(1),
                          "counts": Out(data.ArrayLayout(range(max_count + 1), bins))})

    def elaborate(self, platform):
        m = Module()
        for b in range(self.bins):
            count = self.counts[b]
            hits = popcount([self.mask[i] & (self.bin_ids[i] == b) for i in range(self.lanes)])
            m.d.sync += count.eq(Mux(self.clear, 0, count) + hits)
        return m


class ThresholdBin(wiring.Component):
    """Combinational search for the bin holding the ``need``-th largest counted element:
    the highest bin b whose count plus the counts above it reach ``need``. ``above`` is
    the count of the bins above b, ``inside`` the count of b. When the total is below
    ``need`` the answer is bin 0 (nothing may be discarded yet).
    """

    def __init__(self, counts: data.ArrayLayout, need_width: int):
        self.bins, count_shape = counts.length, Shape.cast(counts.elem_shape)
        width = count_shape.width + (self.bins - 1).bit_length()
        super().__init__({"counts": In(counts), "need": In(need_width),
                          "bin": Out(range(self.bins)), "above": Out(width),
                          "inside": Out(count_shape)})

    def elaborate(self, platform):
        m = Module()
        bins, counts = self.bins, list(self.counts)
        # suffix[b] = counts of bins b.. (log-depth; sums never exceed one row)
        sums = inclusive_sums(counts[::-1], len(counts[0]))[::-1]
        suffix = [Signal.like(self.above, name=f"sfx{b}") for b in range(bins + 1)]  # pragma: no mutate
        m.d.comb += [suffix[b].eq(sums[b]) for b in range(bins)] + [suffix[bins].eq(0)]
        # suffix counts fall with b, so the bins that reach `need` are 0..answer
        hit = [Signal(name=f"hit{b}") for b in range(bins)] + [Const(0)]
        m.d.comb += [hit[b].eq(suffix[b] >= self.need) for b in range(bins)]
        first = [~hit[1]] + [hit[b] & ~hit[b + 1] for b in range(1, bins)]
        pick_bin = popcount(hit[1:bins])
        above = onehot_select(first, suffix[1:])
        inside = onehot_select(first, counts)
        m.d.comb += [self.bin.eq(pick_bin), self.above.eq(above), self.inside.eq(inside)]
        return m
