"""SpArch's streaming merger (block ``merger``): W key-sorted streams of (key, value)
entries become one stream sorted by key, with the values of equal keys summed.

Structure: a binary tree of :class:`MergeNode` (the comparator-array two-way merge) whose
every input passes a :class:`Packer` (full beats except a stream's final one, and four
beats of buffering), then a :class:`Combiner` at the root that sums equal keys and
drops the duplicates (zero-eliminator). Node lanes halve toward the leaves
(``MergerConfig.node_lanes``), so the root merges P entries per cycle while a leaf
stays small.

Stream framing, on every port: a beat holds ``count`` valid entries in its low lanes;
``last`` marks a stream's final beat (it may hold 0 entries: an empty stream is one
such beat). One job = one stream per input port; the output is one stream.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.merger import MergerConfig

from .checks import require_config
from .lanes import SlotQueue, onehot_select, pick, popcount, scan

#: Guard bits of the combiner's accumulator: a sum is exact while its partial sums fit
#: value_width + GUARD bits (any run of up to 2**(GUARD-1) equal keys); beyond, it clamps.
GUARD = 16


def entry_layout(cfg: MergerConfig) -> data.StructLayout:
    return data.StructLayout({"key": unsigned(cfg.key_width), "value": signed(cfg.value_width)})


def beat_layout(cfg: MergerConfig, lanes: int) -> data.StructLayout:
    """A beat of up to ``lanes`` entries, sorted by key, in the low ``count`` lanes."""
    return data.StructLayout({
        "entries": data.ArrayLayout(entry_layout(cfg), lanes),
        "count": unsigned(lanes.bit_length()),
        "last": unsigned(1),
    })


def input_layout(cfg: MergerConfig) -> data.StructLayout:
    return beat_layout(cfg, cfg.in_lanes)


def output_layout(cfg: MergerConfig) -> data.StructLayout:
    return beat_layout(cfg, cfg.lanes)


def beat_stream(cfg: MergerConfig, lanes: int) -> stream.Signature:
    return stream.Signature(beat_layout(cfg, lanes))


class Packer(wiring.Component):
    """Repacks beats of ``in_lanes`` entries into beats of ``out_lanes`` >= in_lanes:
    every output beat is full except a stream's final one. ``i.ready`` depends on the
    queue's state only (no combinational path from ``o.ready``)."""

    def __init__(self, cfg: MergerConfig, in_lanes: int, out_lanes: int):
        self.cfg, self.in_lanes, self.out_lanes = cfg, in_lanes, out_lanes
        super().__init__({"i": In(beat_stream(cfg, in_lanes)),
                          "o": Out(beat_stream(cfg, out_lanes))})

    def elaborate(self, platform):
        m = Module()
        q = SlotQueue(entry_layout(self.cfg), self.out_lanes)
        q.elaborate(m)
        take = self.i.valid & q.room
        beat = self.i.payload
        m.d.comb += [self.i.ready.eq(q.room), q.push_final.eq(take & beat.last)]
        for j in range(self.in_lanes):
            m.d.comb += [q.push_items[j].eq(beat.entries[j]),
                         q.push_mask[j].eq(take & (j < beat.count))]
        m.d.comb += [self.o.valid.eq(q.valid), q.ready.eq(self.o.ready),
                     self.o.payload.count.eq(q.count), self.o.payload.last.eq(q.last)]
        m.d.comb += [self.o.payload.entries[j].eq(q.items[j]) for j in range(self.out_lanes)]
        return m


def _order(entry, valid):
    """Sort order of a lane: its key, with empty lanes above every key."""
    return Cat(entry.key, ~valid)


class MergeNode(wiring.Component):
    """Two-way merge of full beats (a stream's final beat may be partial), P entries a
    cycle. Stage 1 takes the beat of the input whose first key is smaller (a before b
    on ties); stage 2 merges it with the P held entries R in a P x P comparator array:
    pos(r_i) = i + #{j : x_j < r_i}, pos(x_j) = j + #{i : r_i <= x_j}; the low P
    positions go out, the high P are the new R. The first beat of a stream only fills
    R; when both inputs have ended, R goes out with ``last``. Latency 2 cycles plus the
    final flush; one beat a cycle when the chosen input keeps up."""

    def __init__(self, cfg: MergerConfig, lanes: int):
        self.cfg, self.lanes = cfg, lanes
        super().__init__({"a": In(beat_stream(cfg, lanes)), "b": In(beat_stream(cfg, lanes)),
                          "o": Out(beat_stream(cfg, lanes))})

    def elaborate(self, platform):
        m = Module()
        p, a, b, o = self.lanes, self.a, self.b, self.o
        layout = beat_layout(self.cfg, p)
        a_done, b_done = Signal(), Signal()
        x, x_full = Signal(layout), Signal()
        r = Signal(data.ArrayLayout(entry_layout(self.cfg), p))
        r_count, primed = Signal(range(p + 1)), Signal()

        out_free = ~o.valid | o.ready
        merge = x_full & out_free
        flush = a_done & b_done & ~x_full & out_free

        # stage 1: choose and hold the next beat
        a_first = _order(a.payload.entries[0], a.payload.count != 0) <= \
            _order(b.payload.entries[0], b.payload.count != 0)
        both = a.valid & b.valid
        take_a = ~a_done & Mux(b_done, a.valid, both & a_first)
        take_b = ~b_done & Mux(a_done, b.valid, both & ~a_first)
        load = ~x_full | merge
        m.d.comb += [a.ready.eq(load & take_a), b.ready.eq(load & take_b)]
        with m.If(a.ready | b.ready):
            m.d.sync += [x.eq(Mux(take_a, a.payload, b.payload)), x_full.eq(1)]
            m.d.sync += [a_done.eq(a_done | (take_a & a.payload.last)),
                         b_done.eq(b_done | (take_b & b.payload.last))]
        with m.Elif(merge):
            m.d.sync += x_full.eq(0)

        # stage 2: comparator array
        r_valid = [i < r_count for i in range(p)]
        x_valid = [j < x.count for j in range(p)]
        below = [[_order(x.entries[j], x_valid[j]) < _order(r[i], r_valid[i])
                  for j in range(p)] for i in range(p)]
        pos_r = [i + popcount(below[i]) for i in range(p)]
        pos_x = [j + popcount([~below[i][j] for i in range(p)]) for j in range(p)]
        slots = []
        for s in range(2 * p):
            cands = [(pos_r[i] == s, r[i]) for i in range(p) if i <= s <= i + p] + \
                    [(pos_x[j] == s, x.entries[j]) for j in range(p) if j <= s <= j + p]
            slots.append(onehot_select([c for c, _ in cands], [Cat(e.key, e.value)
                                                               for _, e in cands]))
        total = r_count + x.count
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(merge & primed):
            m.d.sync += [o.valid.eq(total != 0), o.payload.last.eq(0),
                         o.payload.count.eq(Mux(total > p, p, total)),
                         r_count.eq(Mux(total > p, total - p, 0))]
            m.d.sync += [o.payload.entries[s].eq(slots[s]) for s in range(p)]
            m.d.sync += [r[s].eq(slots[p + s]) for s in range(p)]
        with m.If(merge & ~primed):
            m.d.sync += [r.eq(x.entries), r_count.eq(x.count), primed.eq(1)]
        with m.If(flush):
            m.d.sync += [o.valid.eq(1), o.payload.last.eq(1), o.payload.count.eq(r_count),
                         o.payload.entries.eq(r)]
            m.d.sync += [r_count.eq(0), primed.eq(0), a_done.eq(0), b_done.eq(0)]
        return m


class Combiner(wiring.Component):
    """Sums the values of equal keys in the root's sorted stream and drops the
    duplicates (SpArch's zero-eliminator), P entries a cycle.

    Per beat: a segmented prefix sum over the lanes gives each run of equal keys its
    sum at the run's end lane; the run still open at the beat's end is carried (key,
    wide sum) into the next beat, where it joins the first run if the key matches. Out
    go the carried run (if not joined) and the run ends before the final lane, packed
    into P-wide beats. After a stream's final beat one more cycle sends the carried run
    with ``last``. Sums clamp to the value range when ``cfg.saturate``."""

    def __init__(self, cfg: MergerConfig):
        self.cfg = cfg
        super().__init__({"i": In(beat_stream(cfg, cfg.lanes)),
                          "o": Out(beat_stream(cfg, cfg.lanes))})

    def _narrow(self, value):
        """A wide sum as an output value: clamped (saturate) or its low bits."""
        lo, hi = self.cfg.value_range
        width = self.cfg.value_width
        if not self.cfg.saturate:
            return value[:width]
        return Mux(value > hi, Const(hi, signed(width)),
                   Mux(value < lo, Const(lo, signed(width)), value[:width]))

    def elaborate(self, platform):
        m = Module()
        cfg, p = self.cfg, self.cfg.lanes
        wide = signed(cfg.value_width + GUARD)
        run_width = signed(cfg.value_width + p.bit_length())
        q = SlotQueue(entry_layout(cfg), p)
        q.elaborate(m)
        carry_valid, carry_key, carry_sum = Signal(), Signal(cfg.key_width), Signal(wide)
        flushing = Signal()
        beat, c = self.i.payload, self.i.payload.count
        take = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(q.room & ~flushing)

        keys = [beat.entries[j].key for j in range(p)]
        valid = [j < c for j in range(p)]
        starts = [Const(1)] + [keys[j] != keys[j - 1] for j in range(1, p)]
        # segmented sum: (run started in this span, sum since the last start)
        runs = scan([(starts[j], beat.entries[j].value.as_signed()) for j in range(p)],
                    lambda e, l: (e[0] | l[0], Mux(l[0], l[1], (e[1] + l[1])[:run_width.width]
                                                  .as_signed())))
        in_first = scan(starts[1:], lambda e, l: e | l)  # a run started in lanes 1..j
        join = carry_valid & valid[0] & (keys[0] == carry_key)
        sums = []
        for j in range(p):
            first_run = Const(1) if j == 0 else ~in_first[j - 1]
            total = Signal(signed(wide.width + 1), name=f"sum{j}")
            m.d.comb += total.eq(runs[j][1].as_signed() + Mux(join & first_run, carry_sum, 0))
            sums.append(total)
        ends = [valid[j] & (j + 1 < c) & (keys[j] != keys[j + 1]) if j + 1 < p else Const(0)
                for j in range(p)]

        # out: lane 0 the carried run (unless joined), lane j+1 the run ending at lane j
        with_carry = carry_valid & (flushing | (take & (c != 0) & ~join))
        m.d.comb += [q.push_items[0].key.eq(carry_key),
                     q.push_items[0].value.eq(self._narrow(carry_sum)),
                     q.push_mask[0].eq(with_carry)]
        for j in range(p - 1):
            m.d.comb += [q.push_items[j + 1].key.eq(keys[j]),
                         q.push_items[j + 1].value.eq(self._narrow(sums[j])),
                         q.push_mask[j + 1].eq(take & ends[j])]
        m.d.comb += q.push_final.eq(flushing)

        hi = (1 << (wide.width - 1)) - 1
        closing = pick(c - 1, sums)
        with m.If(take & (c != 0)):
            m.d.sync += [carry_valid.eq(1), carry_key.eq(pick(c - 1, keys)),
                         carry_sum.eq(Mux(closing > hi, hi, Mux(closing < -hi - 1, -hi - 1,
                                                                 closing[:wide.width])))]
        with m.If(take & beat.last):
            m.d.sync += flushing.eq(1)
        with m.If(flushing):
            m.d.sync += [flushing.eq(0), carry_valid.eq(0)]
        m.d.comb += [self.o.valid.eq(q.valid), q.ready.eq(self.o.ready),
                     self.o.payload.count.eq(q.count), self.o.payload.last.eq(q.last)]
        m.d.comb += [self.o.payload.entries[j].eq(q.items[j]) for j in range(p)]
        return m


class Merger(wiring.Component):
    """W-way merge with input stream ports ``i0`` .. ``i{W-1}`` (``cfg.in_lanes``
    entries a beat) and output ``o`` (P entries a beat); see the module docstring.
    Throughput: P input entries a cycle at the root while the subtrees keep up; latency
    about 3 cycles per tree level."""

    def __init__(self, cfg: MergerConfig):
        require_config(self, cfg, MergerConfig)
        self.cfg = cfg
        ports = {f"i{w}": In(beat_stream(cfg, cfg.in_lanes)) for w in range(cfg.ways)}
        super().__init__({**ports, "o": Out(beat_stream(cfg, cfg.lanes))})

    def _subtree(self, m: Module, ways: list[int], level: int, lanes: int, name: str):
        """The stream carrying the merge of input ports ``ways``, packed to ``lanes``."""
        if len(ways) == 1:
            source = wiring.flipped(getattr(self, f"i{ways[0]}"))
        else:
            node = MergeNode(self.cfg, self.cfg.node_lanes(level))
            m.submodules[f"node{name}"] = node
            half = (len(ways) + 1) // 2
            wiring.connect(m, self._subtree(m, ways[:half], level + 1, node.lanes, name + "a"),
                           node.a)
            wiring.connect(m, self._subtree(m, ways[half:], level + 1, node.lanes, name + "b"),
                           node.b)
            source = node.o
        packer = Packer(self.cfg, len(source.payload.entries), lanes)
        m.submodules[f"pack{name}"] = packer
        wiring.connect(m, source, packer.i)
        return packer.o

    def elaborate(self, platform):
        m = Module()
        root = MergeNode(self.cfg, self.cfg.lanes)
        m.submodules.root = root
        half = (self.cfg.ways + 1) // 2
        ways = list(range(self.cfg.ways))
        wiring.connect(m, self._subtree(m, ways[:half], 1, root.lanes, "a"), root.a)
        wiring.connect(m, self._subtree(m, ways[half:], 1, root.lanes, "b"), root.b)
        m.submodules.combiner = combiner = Combiner(self.cfg)
        wiring.connect(m, root.o, combiner.i)
        wiring.connect(m, combiner.o, wiring.flipped(self.o))
        return m
