"""SpArch's streaming merger (block ``merger``): W key-sorted streams of (key, value)
entries become one stream sorted by key, with the values of equal keys summed.

Structure: a binary tree of :class:`FlimsNode` (FLiMS's two-way merge: one compare
per lane pair is its only loop), then a :class:`Combiner` at the root that sums equal
keys and drops the duplicates (zero-eliminator). Node lanes halve toward the leaves
(``MergerConfig.node_lanes``), so the root merges P entries per cycle while a leaf
stays small; a node takes its children's narrower beats straight into its lane queues.
:class:`MergeNode` (a comparator array) is the mapping unit's merge.

Stream framing, on every port: a beat holds ``count`` valid entries in its low lanes,
and every beat but a stream's final one is full; ``last`` marks the final beat (it may
hold 0 entries: an empty stream is one such beat). One job = one stream per input port;
the output is one stream.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.merger import MergerConfig

from .checks import require_config
from .lanes import onehot_select, pick, popcount, scan
from .pipeline import StagedQueue, delay, stage

#: Entries each lane queue of a :class:`FlimsNode` holds behind its head register: LUT
#: RAM (16 deep costs the same as 2), counted by a thermometer of as many flip-flops.
#: With 8, the 64-way, 16-lane tree consumed 0.912 of its lanes a cycle on real partial
#: products (a node fires only when every lane holds three entries or has ended); 16
#: absorb the bursts in which a parent drains one child: 0.970.
LANE_DEPTH = 16

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


def _differs(a, b):
    """Per group of 4 bits, whether ``a`` and ``b`` differ there: a key compare split
    over two register stages (this, then whether any group differs)."""
    return Cat((a[i:i + 4] != b[i:i + 4]) for i in range(0, len(a), 4))


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


def lane_entry_layout(cfg: MergerConfig) -> data.StructLayout:
    """An entry in a lane queue: ``real`` (an entry, not a lane's end marker) and ``end``
    (the lane's last of the job)."""
    return data.StructLayout({"key": unsigned(cfg.key_width), "value": signed(cfg.value_width),
                              "real": unsigned(1), "end": unsigned(1)})


class LaneQueues(wiring.Component):
    """One input of a :class:`FlimsNode`: P lane queues, lane j holding the stream's
    entries j, j+P, j+2P, ... The input's beats hold C = ``in_lanes`` entries (C divides
    P; beats are full but the final one), so beat b fills lanes (b mod P/C) x C onward
    of row b div P/C: a narrow child needs no coupler.

    Per lane, a LUT-RAM queue of :data:`LANE_DEPTH` entries behind a head register; the
    head loads from the queue in a cycle it is empty or dequeued (``deq``). A stream's
    final beat gives every lane one entry marked ``end`` (a lane it does not fill gets a
    marker, ``real`` low); after it the input takes nothing until ``restart``, which
    empties every lane for the next job. ``live``: the head is a real entry still to
    merge; a lane whose end was dequeued is closed. ``sure`` (a register, from the
    lanes a cycle before): every lane will have a known head (live, a marker, or
    closed) two cycles on, whatever is dequeued until then. ``ready``, ``live`` and
    ``sure`` come from registers; ``taken`` (the real entries the input took) and
    ``took_last`` (it took a final beat) are about the cycle before."""

    def __init__(self, cfg: MergerConfig, lanes: int, in_lanes: int):
        self.cfg, self.lanes, self.in_lanes = cfg, lanes, in_lanes
        super().__init__({"i": In(beat_stream(cfg, in_lanes)),
                          "head": Out(data.ArrayLayout(lane_entry_layout(cfg), lanes)),
                          "live": Out(lanes), "deq": In(lanes), "restart": In(1),
                          "ended": Out(1), "took_last": Out(1), "sure": Out(1),
                          "taken": Out(range(in_lanes + 1))})

    def elaborate(self, platform):
        m = Module()
        p, c, beat = self.lanes, self.in_lanes, self.i.payload
        groups = p // c
        wptr = Signal(range(LANE_DEPTH))
        phase = Signal(range(max(2, groups)))  # the group of lanes the next beat fills
        take = self.i.valid & self.i.ready
        m.d.sync += [self.taken.eq(Mux(take, beat.count, 0)),
                     self.took_last.eq(take & beat.last)]
        with m.If(take):
            m.d.sync += phase.eq(Mux(beat.last | (phase == groups - 1), 0, phase + 1))
            with m.If(beat.last | (phase == groups - 1)):
                m.d.sync += wptr.eq(wptr + 1)
        ended = Mux(self.restart, 0, self.ended | (take & beat.last))
        m.d.sync += self.ended.eq(ended)
        rooms, sures = [], []
        for j in range(p):
            group, i = divmod(j, c)
            mem = memory.Memory(shape=lane_entry_layout(self.cfg), depth=LANE_DEPTH, init=[])
            m.submodules[f"lane{j}"] = mem
            wp, rp = mem.write_port(), mem.read_port(domain="comb")
            # (a final beat gives the lanes of later groups a marker in its row, and
            # those of earlier groups, already filled, one in the next row)
            write = take & ((phase == group) | (beat.last & (phase != group)))
            m.d.comb += [wp.addr.eq(wptr + (phase > group)), wp.en.eq(write),
                         wp.data.key.eq(beat.entries[i].key),
                         wp.data.value.eq(beat.entries[i].value),
                         wp.data.real.eq((phase == group) & (i < beat.count)),
                         wp.data.end.eq(beat.last)]
            rptr = Signal(range(LANE_DEPTH), name=f"rptr{j}")
            # the entries behind the head, as a thermometer: behind[k] = more than k
            behind = Signal(LANE_DEPTH, name=f"behind{j}")
            valid, closed = Signal(name=f"valid{j}"), Signal(name=f"closed{j}")
            head, deq = self.head[j], self.deq[j]
            load = behind[0] & (~valid | deq)
            m.d.comb += rp.addr.eq(rptr)
            with m.If(write & ~load):
                m.d.sync += behind.eq(Cat(1, behind[:-1]))
            with m.Elif(load & ~write):
                m.d.sync += behind.eq(behind[1:])
            with m.If(load):
                m.d.sync += [head.eq(rp.data), valid.eq(1), self.live[j].eq(rp.data.real),
                             rptr.eq(rptr + 1)]
            with m.Elif(deq):
                m.d.sync += [valid.eq(0), self.live[j].eq(0)]
            with m.If(deq & head.end):
                m.d.sync += closed.eq(1)
            with m.If(self.restart):
                m.d.sync += [valid.eq(0), self.live[j].eq(0), closed.eq(0), behind.eq(0),
                             rptr.eq(wptr)]
            # (once the input has ended, every lane has its end entry: it stays known)
            sures.append(self.ended | closed | (valid & (~head.real | head.end)) | behind[2])
            rooms.append(~behind[LANE_DEPTH - 1] & ~(write & behind[LANE_DEPTH - 2]))
        m.d.sync += self.i.ready.eq(Cat(*rooms).all() & ~ended)
        m.d.sync += self.sure.eq(Cat(*sures).all() & ~self.restart)
        return m


def sort_layers(lanes: int) -> tuple[int, list[list[tuple[int, int]]]]:
    """The compare-exchange layers that sort a FLiMS node's P winners: (N, layers), each
    layer a list of (low, high) lane pairs (the smaller goes to ``low``) on N lanes. For
    P a power of two, N = P and the layers are Batcher's bitonic merger (log2 P layers:
    the winners are a cyclic bitonic sequence); otherwise N is the next power of two
    (lanes P.. hold empty entries) and the layers are a full bitonic sorter."""
    n = 1 << (lanes - 1).bit_length()
    sizes = [n] if n == lanes else [1 << k for k in range(1, n.bit_length())]
    layers = []
    for size in sizes:
        stride = size // 2
        while stride:
            layers.append([(i, i | stride) if (i & size) == 0 or size == n else
                           (i | stride, i) for i in range(n) if not i & stride])
            stride //= 2
    return n, layers


class FlimsNode(wiring.Component):
    """Two-way merge of beats (full but a stream's final one), P entries a cycle, after
    FLiMS (Papaphilippou et al., FPT 2018). Each input spreads its stream over P lane
    queues (:class:`LaneQueues`). A fire compares, for every i, the head of a's lane i
    with the head of b's lane P-1-i and dequeues the smaller (a's on ties): the P
    winners are the P smallest heads, and since every fire but a job's last takes
    exactly P entries, lane i of a and lane P-1-i of b always hold entries of ranks
    that add up to P-1 among the two inputs' next P. That compare and the dequeue are
    the node's only loop. The winners go through the registered layers of
    :func:`sort_layers` (one register a layer) into a FIFO, the node's output.

    Fires are decided ahead, from registers: every lane's head known (two cycles
    ahead), a FIFO slot free for every beat in flight, and no final beat taken in the
    cycle before (a cycle ahead). A fire is the job's last when both inputs have ended
    and at most P entries remain: its beat holds them, carries ``last``, and restarts
    the lane queues. Inputs a and b take beats of ``a_lanes`` and ``b_lanes`` entries
    (each divides P; P by default). Latency: a fire comes four cycles or more after
    the beats it takes were taken; its beat is on the output 2 + layers cycles later."""

    def __init__(self, cfg: MergerConfig, lanes: int, a_lanes: int | None = None,
                 b_lanes: int | None = None):
        self.cfg, self.lanes = cfg, lanes
        self.a_lanes, self.b_lanes = a_lanes or lanes, b_lanes or lanes
        self.sort_lanes, self.layers = sort_layers(lanes)
        super().__init__({"a": In(beat_stream(cfg, self.a_lanes)),
                          "b": In(beat_stream(cfg, self.b_lanes)),
                          "o": Out(beat_stream(cfg, lanes))})

    def elaborate(self, platform):
        m = Module()
        cfg, p = self.cfg, self.lanes
        m.submodules.queue_a = qa = LaneQueues(cfg, p, self.a_lanes)
        m.submodules.queue_b = qb = LaneQueues(cfg, p, self.b_lanes)
        wiring.connect(m, wiring.flipped(self.a), qa.i)
        wiring.connect(m, wiring.flipped(self.b), qb.i)
        latency = 1 + len(self.layers)
        depth = latency + 4
        m.submodules.out = out = fifo.SyncFIFO(width=beat_layout(cfg, p).size, depth=depth)
        m.d.comb += [self.o.payload.eq(out.r_data), self.o.valid.eq(out.r_rdy),
                     out.r_en.eq(self.o.ready)]

        fire, ending = Signal(), Signal()
        remain = Signal(range(2 * (LANE_DEPTH + 1) * p + 1))
        credits = Signal(range(depth + 1), init=depth)
        restart = fire & ending
        m.d.comb += [qa.restart.eq(restart), qb.restart.eq(restart)]

        # the loop: compare lane i of a with lane P-1-i of b, dequeue the smaller
        a_wins = [Signal(name=f"a_wins{i}") for i in range(p)]
        for i in range(p):
            # (a subtraction's borrow: a carry chain, which a compare need not become)
            diff = (Cat(_order(qb.head[p - 1 - i], qb.live[p - 1 - i]), 0)
                    - Cat(_order(qa.head[i], qa.live[i]), 0))
            m.d.comb += a_wins[i].eq(~diff[-1])
        m.d.comb += [qa.deq[i].eq(fire & qa.live[i] & a_wins[i]) for i in range(p)]
        m.d.comb += [qb.deq[p - 1 - i].eq(fire & qb.live[p - 1 - i] & ~a_wins[i])
                     for i in range(p)]

        # the fire: every lane known two cycles on (``heads``), then the rest a cycle on
        pop = out.r_rdy & out.r_en
        # The entries taken reach ``remain`` a cycle later, so no fire in the second
        # cycle after an input's final beat. In the first, a lane of that input is
        # unsure whenever at most P entries remain (its last real entry, or the marker
        # behind it, is still being written), so a fire there is never the job's last.
        took_last = qa.took_last | qb.took_last
        m.d.sync += credits.eq(credits - fire + pop)
        heads = Signal()
        m.d.sync += heads.eq(qa.sure & qb.sure & ~restart)
        m.d.sync += fire.eq(heads & ~took_last & ~restart & Mux(fire, credits >= 2, credits >= 1))

        def at_most(bound):
            """remain <= bound, as a subtraction's borrow (a carry chain)."""
            return ~(Const(bound, len(remain) + 1) - Cat(remain, 0))[-1]

        m.d.sync += ending.eq(qa.ended & qb.ended & ~took_last & ~restart
                              & Mux(fire, at_most(2 * p), at_most(p)))
        m.d.sync += remain.eq(Mux(restart, 0, remain + qa.taken + qb.taken - Mux(fire, p, 0)))

        # the winners, then the sorting layers, one register each
        order_width = cfg.key_width + 1
        def winner(i):
            a, b = qa.head[i], qb.head[p - 1 - i]
            return Mux(a_wins[i], Cat(a.key, ~qa.live[i], a.value),
                       Cat(b.key, ~qb.live[p - 1 - i], b.value))

        lanes = [stage(m, winner(i), 1, f"win{i}") for i in range(p)]
        lanes += [Const(1 << cfg.key_width, order_width + cfg.value_width)] * \
            (self.sort_lanes - p)
        for n, layer in enumerate(self.layers):
            nxt = list(lanes)
            for lo, hi in layer:
                swap = lanes[hi][:order_width] < lanes[lo][:order_width]
                nxt[lo] = Mux(swap, lanes[hi], lanes[lo])
                nxt[hi] = Mux(swap, lanes[lo], lanes[hi])
            lanes = [stage(m, v, 1, f"sort{n}_{i}") for i, v in enumerate(nxt)]
        beat = Signal(beat_layout(cfg, p))
        # the beat's valid, count and last, alongside the winners and the layers
        info = [delay(m, v, 1 + len(self.layers), 1, f"beat_{n}")
                for n, v in (("valid", fire), ("count", Mux(ending, remain, p)),
                             ("last", ending))]
        m.d.comb += [out.w_en.eq(info[0]), beat.count.eq(info[1]), beat.last.eq(info[2]),
                     out.w_data.eq(beat)]
        m.d.comb += [beat.entries[i].key.eq(lanes[i][:cfg.key_width]) for i in range(p)]
        m.d.comb += [beat.entries[i].value.eq(lanes[i][order_width:]) for i in range(p)]
        return m


class Combiner(wiring.Component):
    """Sums the values of equal keys in the root's sorted stream and drops the
    duplicates (SpArch's zero-eliminator), P entries a cycle: a pipeline that advances
    while its output queue (a :class:`StagedQueue`) has room, a register per section of
    stages (:attr:`SECTIONS` copies).

    Stages: the beat; where runs of equal keys start, and whether the beat's first key
    continues the previous beat's last (``join``; both key compares over two stages);
    the segmented prefix sum over the
    lanes, a register a layer (each run's sum at its last lane, and which lanes are in
    the beat's first run); the beat's open run (its last lane's key and sum); then the
    one loop: the run carried from the previous beat joins the first run if ``join``
    (or goes out before it), the runs that end inside the beat go out, and the open
    run becomes the carry (its sum clamped to value_width + GUARD bits); last, the sums
    are narrowed (clamped to the value range when ``cfg.saturate``) into the queue. A
    stream's final beat takes one more cycle, which sends the carried run with
    ``last``."""

    #: Sections of stages, each enabled by its own copy of the queue's room.
    SECTIONS = 4

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
        m.submodules.queue = q = StagedQueue(beat_layout(cfg, p), "entries", per_stage=1,
                                             copies=self.SECTIONS)
        wiring.connect(m, q.o, wiring.flipped(self.o))
        flushing = Signal()
        # one copy of the queue's room per section of stages (the beat and the key
        # compares, the segmented sums, the open run and the carry, the narrowing)
        advs = [q.rooms[j] & ~flushing for j in range(self.SECTIONS - 1)]
        m.d.comb += self.i.ready.eq(advs[0])

        def regs(section):
            """Registers of one section: (value, name) -> value loaded while it advances."""
            return lambda value, name: stage(m, value, advs[section], name)

        def delayed(values, cycles, name, section):
            return [delay(m, v, cycles, advs[section], f"{name}{i}")
                    for i, v in enumerate(values)]

        # the beat
        reg = regs(0)
        beat = self.i.payload
        valid, count, last = (reg(self.i.valid, "valid0"), reg(beat.count, "count0"),
                              reg(beat.last, "last0"))
        keys = [reg(beat.entries[j].key, f"key0_{j}") for j in range(p)]
        values = [reg(beat.entries[j].value, f"value0_{j}") for j in range(p)]

        # run starts, and the join with the previous beat's last key
        prev_key, prev_has = Signal(cfg.key_width), Signal()
        with m.If(advs[0] & valid & (count != 0)):
            m.d.sync += [prev_key.eq(pick(count - 1, keys)), prev_has.eq(1)]
        with m.If(advs[0] & valid & last):
            m.d.sync += prev_has.eq(0)
        join = reg(~reg(_differs(keys[0], prev_key), "same1").any()
                   & reg(prev_has & (count != 0), "has1"), "join1")
        starts = [Const(0)] + [reg(reg(_differs(keys[j], keys[j - 1]), f"start1_{j}").any(),
                                   f"start2_{j}") for j in range(1, p)]
        beat_regs = delayed([valid, count, last] + keys, 2, "b1_", 0)
        values = delayed(values, 2, "v1_", 0)

        # segmented sums: (a run started in lanes 1..j, sum since the last start)
        reg = regs(1)
        layers = (p - 1).bit_length()
        runs = scan([(starts[j], values[j].as_signed()) for j in range(p)],
                    lambda e, l: (e[0] | l[0], Mux(l[0], l[1], (e[1] + l[1])[:run_width.width]
                                                  .as_signed())),
                    lambda level, items: [(reg(f, f"seg{level}_f{j}"), reg(v, f"seg{level}_s{j}"))
                                          for j, (f, v) in enumerate(items)])
        beat_regs, starts, join = (delayed(beat_regs, layers, "b2_", 1),
                                   delayed(starts, layers, "st2_", 1),
                                   delay(m, join, layers, advs[1], "join2"))
        valid, count, last, keys = beat_regs[0], beat_regs[1], beat_regs[2], beat_regs[3:]
        first_run = [~f for f, _ in runs]
        sums = [v for _, v in runs]

        # the open run and the runs ending inside the beat
        reg = regs(2)
        open_key = reg(pick(count - 1, keys), "open_key")
        open_sum = reg(pick(count - 1, sums), "open_sum")
        open_first = reg(pick(count - 1, first_run), "open_first")
        ends = [reg(valid & (j + 1 < count) & starts[j + 1], f"end{j}") for j in range(p - 1)]
        # (per beat: it leaves an open run; the carry goes out before it; it is final)
        opens = reg(valid & (count != 0), "opens3")
        parts = reg(valid & (count != 0) & ~join, "parts3")
        ends_stream = reg(valid & last, "final3")
        join, keys, sums, first_run = (reg(join, "join3"), delayed(keys, 1, "k3_", 2),
                                       delayed(sums, 1, "s3_", 2), delayed(first_run, 1, "f3_", 2))
        adv = advs[2]

        # the loop: the carried run
        carry_valid, carry_key, carry_sum = Signal(), Signal(cfg.key_width), Signal(wide)
        with_carry = carry_valid & (flushing | (adv & parts))
        out_keys = [carry_key] + keys[:p - 1]
        out_sums = [carry_sum] + [sums[j] + Mux(join & first_run[j], carry_sum, 0)
                                  for j in range(p - 1)]
        out_mask = [with_carry] + [adv & ends[j] for j in range(p - 1)]
        # (the carry clamps where the sum overflows wide: its top two bits differ)
        hi = (1 << (wide.width - 1)) - 1
        closing = Signal(signed(wide.width + 1))
        m.d.comb += closing.eq(open_sum + Mux(join & open_first, carry_sum, 0))
        with m.If(adv & opens):
            m.d.sync += [carry_valid.eq(1), carry_key.eq(open_key),
                         carry_sum.eq(Mux(closing[-1] == closing[-2], closing[:wide.width],
                                          Mux(closing[-1], -hi - 1, hi)))]
        with m.If(adv & ends_stream):
            m.d.sync += flushing.eq(1)
        with m.If(flushing & q.rooms[self.SECTIONS - 1]):
            m.d.sync += [flushing.eq(0), carry_valid.eq(0)]

        # narrowed into the queue
        def out(value, name):
            return stage(m, value, q.rooms[self.SECTIONS - 1], name)

        m.d.comb += q.push_final.eq(out(flushing, "final"))
        for j in range(p):
            m.d.comb += [q.push_items[j].key.eq(out(out_keys[j], f"out_key{j}")),
                         q.push_items[j].value.eq(self._narrow(out(out_sums[j], f"out_sum{j}"))),
                         q.push_mask[j].eq(out(out_mask[j], f"out_mask{j}"))]
        return m


class Merger(wiring.Component):
    """W-way merge with input stream ports ``i0`` .. ``i{W-1}`` (``cfg.in_lanes``
    entries a beat) and output ``o`` (P entries a beat); see the module docstring.
    Throughput: P input entries a cycle at the root while the subtrees keep up; latency
    about 7 cycles per tree level (golden.merger.fill_cycles)."""

    def __init__(self, cfg: MergerConfig):
        require_config(self, cfg, MergerConfig)
        self.cfg = cfg
        ports = {f"i{w}": In(beat_stream(cfg, cfg.in_lanes)) for w in range(cfg.ways)}
        super().__init__({**ports, "o": Out(beat_stream(cfg, cfg.lanes))})

    def _subtree(self, m: Module, ways: list[int], level: int, name: str):
        """The stream carrying the merge of input ports ``ways``: an input port, or the
        output of a node of ``cfg.node_lanes(level)`` lanes (submodule ``root``, or
        ``node`` and its path from the root, a/b per level)."""
        if len(ways) == 1:
            return wiring.flipped(getattr(self, f"i{ways[0]}"))
        half = (len(ways) + 1) // 2
        a = self._subtree(m, ways[:half], level + 1, name + "a")
        b = self._subtree(m, ways[half:], level + 1, name + "b")
        node = FlimsNode(self.cfg, self.cfg.node_lanes(level), len(a.payload.entries),
                         len(b.payload.entries))
        m.submodules[f"node{name}" if name else "root"] = node
        wiring.connect(m, a, node.a)
        wiring.connect(m, b, node.b)
        return node.o

    def elaborate(self, platform):
        m = Module()
        root = self._subtree(m, list(range(self.cfg.ways)), 0, "")
        m.submodules.combiner = combiner = Combiner(self.cfg)
        wiring.connect(m, root, combiner.i)
        wiring.connect(m, combiner.o, wiring.flipped(self.o))
        return m
