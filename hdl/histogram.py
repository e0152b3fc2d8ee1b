"""Lane-parallel histograms and the threshold-bin search of radix selection."""
from __future__ import annotations

from amaranth import Const, Module, Mux, Signal

from .lanes import inclusive_sums, onehot_select, popcount


class Histogram:
    """``bins`` counters updated with up to P lane bin ids per cycle.

    Each cycle every counter adds the number of lanes with ``mask`` set whose ``bin_ids``
    equal its bin; with ``clear`` high the counters restart from that number. Counts are
    registered: a lane counted in cycle t shows in ``counts`` from cycle t+1.
    """

    def __init__(self, lanes: int, bins: int, max_count: int, name: str):
        self.lanes, self.bins, self.name = lanes, bins, name
        self.bin_ids = [Signal(range(bins), name=f"{name}_id{i}") for i in range(lanes)]
        self.mask = Signal(lanes, name=f"{name}_mask")
        self.clear = Signal(name=f"{name}_clear")
        self.counts = [Signal(range(max_count + 1), name=f"{name}_c{b}") for b in range(bins)]

    def elaborate(self, m: Module) -> None:
        for b, count in enumerate(self.counts):
            hits = popcount([self.mask[i] & (ident == b) for i, ident in enumerate(self.bin_ids)])
            m.d.sync += count.eq(Mux(self.clear, 0, count) + hits)


class ThresholdBin:
    """Combinational search for the bin holding the ``need``-th largest counted element:
    the highest bin b whose count plus the counts above it reach ``need``. ``above`` is
    the count of the bins above b, ``inside`` the count of b. When the total is below
    ``need`` the answer is bin 0 (nothing may be discarded yet).
    """

    def __init__(self, counts, need_width: int, name: str):
        self.counts, self.name = counts, name
        self.need = Signal(need_width, name=f"{name}_need")
        self.bin = Signal(range(len(counts)), name=f"{name}_bin")
        width = len(counts[0]) + (len(counts) - 1).bit_length()
        self.above = Signal(width, name=f"{name}_above")
        self.inside = Signal.like(counts[0], name=f"{name}_inside")

    def elaborate(self, m: Module) -> None:
        bins = len(self.counts)
        # suffix[b] = counts of bins b.. (log-depth; sums never exceed one row)
        sums = inclusive_sums(self.counts[::-1], len(self.counts[0]))[::-1]
        suffix = [Signal.like(self.above, name=f"{self.name}_sfx{b}") for b in range(bins + 1)]
        m.d.comb += [suffix[b].eq(sums[b]) for b in range(bins)] + [suffix[bins].eq(0)]
        # suffix counts fall with b, so the bins that reach `need` are 0..answer
        hit = [Signal(name=f"{self.name}_hit{b}") for b in range(bins)] + [Const(0)]
        m.d.comb += [hit[b].eq(suffix[b] >= self.need) for b in range(bins)]
        first = [~hit[1]] + [hit[b] & ~hit[b + 1] for b in range(1, bins)]
        pick_bin = popcount(hit[1:bins])
        above = onehot_select(first, suffix[1:])
        inside = onehot_select(first, self.counts)
        m.d.comb += [self.bin.eq(pick_bin), self.above.eq(above), self.inside.eq(inside)]
