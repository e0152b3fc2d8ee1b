"""SpArch's streaming merger (block ``merger``): W key-sorted streams of (key, value)
entries become one stream sorted by key, with the values of equal keys summed.

Structure: a binary tree of :class:`MergeNode` (the comparator-array two-way merge),
then a :class:`Combiner` at the root that sums equal keys and drops the duplicates
(zero-eliminator). Node lanes halve toward the leaves (``MergerConfig.node_lanes``), so
the root merges P entries per cycle while a leaf stays small; a :class:`Coupler` joins
two beats of a narrow child into one beat of its parent.

Stream framing, on every port: a beat holds ``count`` valid entries in its low lanes,
and every beat but a stream's final one is full; ``last`` marks the final beat (it may
hold 0 entries: an empty stream is one such beat). One job = one stream per input port;
the output is one stream.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.merger import MergerConfig

from .checks import require_config
from .lanes import SlotQueue, onehot_select, pick, popcount, scan

#: Beats of buffering at every node input: LUT RAM on FPGAs (16 deep costs the same as
#: 2); it absorbs the bursts in which a parent drains one child.
NODE_FIFO_DEPTH = 8

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


class Coupler(wiring.Component):
    """Joins two consecutive beats of ``lanes`` entries into one beat of 2 x lanes: the
    first is held in a register, the second passes through beside it. A beat with
    ``last`` goes out at once (with the held half, if any). Beats are full except a
    stream's final one, before and after."""

    def __init__(self, cfg: MergerConfig, lanes: int):
        self.lanes = lanes
        super().__init__({"i": In(beat_stream(cfg, lanes)),
                          "o": Out(beat_stream(cfg, 2 * lanes))})

    def elaborate(self, platform):
        m = Module()
        c, beat = self.lanes, self.i.payload
        held = Signal(data.ArrayLayout(beat.entries.shape().elem_shape, c))
        have = Signal()
        # the held half goes low; the incoming beat fills the high half, or the low half
        # when it is a stream's final beat with nothing held
        m.d.comb += [self.o.valid.eq(self.i.valid & (have | beat.last)),
                     self.i.ready.eq(~(have | beat.last) | self.o.ready),
                     self.o.payload.last.eq(beat.last),
                     self.o.payload.count.eq(Mux(have, c + beat.count, beat.count))]
        for j in range(c):
            m.d.comb += [self.o.payload.entries[j].eq(Mux(have, held[j], beat.entries[j])),
                         self.o.payload.entries[c + j].eq(beat.entries[j])]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [have.eq(~have & ~beat.last), held.eq(beat.entries)]
        return m


def _order(entry, valid):
    """Sort order of a lane: its key, with empty lanes above every key."""
    return Cat(entry.key, ~valid)


class MergeNode(wiring.Component):
    """Two-way merge of beats that are full except a stream's final one, P entries a
    cycle. Stage 1 takes the beat of the input whose first key is smaller (a before b
    on ties); stage 2 merges it with the held entries R (at most P) in a P x P
    comparator array: pos(r_i) = i + #{j : x_j < r_i}, pos(x_j) = j + #{i : r_i <= x_j}.
    Beyond P entries, the low P positions go out and the rest stay in R; otherwise all
    stay in R (so outputs are full beats too). When both inputs have ended, R goes out
    with ``last``. Latency 2 cycles plus the final flush; one beat a cycle while the
    chosen input keeps up."""

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
        r_count = Signal(range(p + 1))

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
        pos_r = [Signal(range(2 * p), name=f"pos_r{i}") for i in range(p)]
        pos_x = [Signal(range(2 * p), name=f"pos_x{j}") for j in range(p)]
        m.d.comb += [pos_r[i].eq(i + popcount(below[i])) for i in range(p)]
        m.d.comb += [pos_x[j].eq(j + popcount([~below[i][j] for i in range(p)])) for j in range(p)]
        slots = []
        for s in range(2 * p):
            cands = [(pos_r[i] == s, r[i]) for i in range(p) if i <= s <= i + p] + \
                    [(pos_x[j] == s, x.entries[j]) for j in range(p) if j <= s <= j + p]
            slots.append(onehot_select([c for c, _ in cands], [Cat(e.key, e.value)
                                                               for _, e in cands]))
        total = r_count + x.count
        over = total > p
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(merge):
            m.d.sync += [o.valid.eq(over), o.payload.last.eq(0), o.payload.count.eq(p),
                         r_count.eq(Mux(over, total - p, total))]
            m.d.sync += [o.payload.entries[s].eq(slots[s]) for s in range(p)]
            m.d.sync += [r[s].eq(Mux(over, slots[p + s], slots[s])) for s in range(p)]
        with m.If(flush):
            m.d.sync += [o.valid.eq(1), o.payload.last.eq(1), o.payload.count.eq(r_count),
                         o.payload.entries.eq(r)]
            m.d.sync += [r_count.eq(0), a_done.eq(0), b_done.eq(0)]
        return m


class Combiner(wiring.Component):
    """Sums the values of equal keys in the root's sorted stream and drops the
    duplicates (SpArch's zero-eliminator), P entries a cycle.

    Per beat: a segmented prefix sum over the lanes gives each run of equal keys its
    sum at the run's end lane; the run still open at the beat's end is carried (key,
    wide sum) into the next beat, where it joins the first run if the key matches. Out
    go the carried run (if not joined) and the run ends before the final lane, packed
    into P-wide beats. After a stream's final beat one more cycle sends the carried run
    with ``last``. Sums clamp to the value range when ``cfg.saturate``. Two stages: the
    run sums within a beat (and whether its first key continues the previous beat's
    last), then the carry addition and the output queue."""

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
        m.submodules.queue = q = SlotQueue(beat_layout(cfg, p), "entries")
        wiring.connect(m, q.o, wiring.flipped(self.o))

        # stage A: per-beat run sums (no dependence on earlier beats but the last key)
        beat, c = self.i.payload, self.i.payload.count
        keys = [beat.entries[j].key for j in range(p)]
        starts = [Const(1)] + [keys[j] != keys[j - 1] for j in range(1, p)]
        # segmented sum: (run started in this span, sum since the last start)
        runs = scan([(starts[j], beat.entries[j].value.as_signed()) for j in range(p)],
                    lambda e, l: (e[0] | l[0], Mux(l[0], l[1], (e[1] + l[1])[:run_width.width]
                                                  .as_signed())))
        in_first = scan(starts[1:], lambda e, l: e | l)  # a run started in lanes 1..j
        first_run = [Const(1)] + [~f for f in in_first]
        prev_key, prev_has = Signal(cfg.key_width), Signal()
        pre = {"keys": Signal(data.ArrayLayout(cfg.key_width, p)),
               "runs": Signal(data.ArrayLayout(run_width, p)),
               "first_run": Signal(p), "ends": Signal(p), "count": Signal.like(c),
               "last": Signal(), "join": Signal(), "closing_key": Signal(cfg.key_width),
               "closing_run": Signal(run_width), "closing_first": Signal()}
        pre_valid, take = Signal(), Signal()
        m.d.comb += self.i.ready.eq(~pre_valid | take)
        with m.If(take):
            m.d.sync += pre_valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [pre_valid.eq(1), pre["count"].eq(c), pre["last"].eq(beat.last),
                         pre["join"].eq(prev_has & (c != 0) & (keys[0] == prev_key)),
                         pre["closing_key"].eq(pick(c - 1, keys)),
                         pre["closing_run"].eq(pick(c - 1, [r for _, r in runs])),
                         pre["closing_first"].eq(pick(c - 1, first_run))]
            m.d.sync += [pre["keys"][j].eq(keys[j]) for j in range(p)]
            m.d.sync += [pre["runs"][j].eq(runs[j][1]) for j in range(p)]
            m.d.sync += [pre["first_run"][j].eq(first_run[j]) for j in range(p)]
            m.d.sync += [pre["ends"][j].eq((j + 1 < c) & (keys[j] != keys[j + 1]))
                         for j in range(p - 1)]
            with m.If(c != 0):
                m.d.sync += [prev_key.eq(pick(c - 1, keys)), prev_has.eq(1)]
            with m.If(beat.last):
                m.d.sync += prev_has.eq(0)

        # stage B: add the carried run, emit finished runs, carry the open one
        carry_valid, carry_key, carry_sum = Signal(), Signal(cfg.key_width), Signal(wide)
        flushing = Signal()
        m.d.comb += take.eq(pre_valid & q.room & ~flushing)
        join = pre["join"]
        with_carry = carry_valid & (flushing | (take & (pre["count"] != 0) & ~join))
        m.d.comb += [q.push_items[0].key.eq(carry_key),
                     q.push_items[0].value.eq(self._narrow(carry_sum)),
                     q.push_mask[0].eq(with_carry)]
        for j in range(p - 1):
            total = pre["runs"][j] + Mux(join & pre["first_run"][j], carry_sum, 0)
            m.d.comb += [q.push_items[j + 1].key.eq(pre["keys"][j]),
                         q.push_items[j + 1].value.eq(self._narrow(total)),
                         q.push_mask[j + 1].eq(take & pre["ends"][j])]
        m.d.comb += q.push_final.eq(flushing)

        hi = (1 << (wide.width - 1)) - 1
        closing = Signal(signed(wide.width + 1))
        m.d.comb += closing.eq(pre["closing_run"] + Mux(join & pre["closing_first"], carry_sum, 0))
        with m.If(take & (pre["count"] != 0)):
            m.d.sync += [carry_valid.eq(1), carry_key.eq(pre["closing_key"]),
                         carry_sum.eq(Mux(closing > hi, hi, Mux(closing < -hi - 1, -hi - 1,
                                                                 closing[:wide.width])))]
        with m.If(take & pre["last"]):
            m.d.sync += flushing.eq(1)
        with m.If(flushing):
            m.d.sync += [flushing.eq(0), carry_valid.eq(0)]
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
        """The stream carrying the merge of input ports ``ways``, in beats of ``lanes``:
        a node's output or an input port, doubled by couplers while narrower; a node's
        output then passes a FIFO (an input port's producer buffers it)."""
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
        while len(source.payload.entries) < lanes:
            coupler = Coupler(self.cfg, len(source.payload.entries))
            m.submodules[f"couple{name}_{len(source.payload.entries)}"] = coupler
            wiring.connect(m, source, coupler.i)
            source = coupler.o
        return source if len(ways) == 1 else self._buffered(m, source, name)

    def _buffered(self, m: Module, source, name: str):
        """``source`` through a FIFO of NODE_FIFO_DEPTH beats (no combinational path
        from the consumer's ready back to the producer)."""
        layout = source.payload.shape()
        buf = fifo.SyncFIFO(width=layout.size, depth=NODE_FIFO_DEPTH)
        m.submodules[f"fifo{name}"] = buf
        out = stream.Signature(layout).create(path=(f"fifo{name}_o",))
        m.d.comb += [buf.w_data.eq(source.payload), buf.w_en.eq(source.valid),
                     source.ready.eq(buf.w_rdy), out.payload.eq(buf.r_data),
                     out.valid.eq(buf.r_rdy), buf.r_en.eq(out.ready)]
        return out

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
