"""Top-k selection engines (block ``topk``): stream layouts, sort keys, and the replay
stage both engines share.

A row of n scores arrives as beats of P lanes (``count`` valid lanes each, ``last`` on
the final beat, ``k`` read from the row's first beat). The engine returns the k_eff =
min(k, n) selected (index, value) pairs in input order, P per beat (the row's last beat
may be partial and carries ``last``). Selection is exact: the k largest, ties toward the
lower index (papers.md §1); ``smallest`` selects the k smallest (the engines' sort keys
are complemented, nothing else changes). Elements beyond ``capacity`` in a row are
ignored.

Both engines keep the row (or its survivors) in a banked store, find the threshold
key θ and how many elements equal to θ to keep (``need``), then :class:`Replayer`
streams the store once more in order, keeping key > θ and the first ``need`` keys
equal to θ, and compacts them into P-wide output beats (SpAtten's replay pass).
"""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.topk import TopkConfig

from .checks import require_config
from .lanes import advance, copied_register
from .pipeline import PrefixCount, StagedQueue, delay, network_stages, stage


def score_shape(cfg: TopkConfig):
    return signed(cfg.width) if cfg.signed else unsigned(cfg.width)


def input_layout(cfg: TopkConfig) -> data.StructLayout:
    """One input beat: P scores, how many lanes are valid (0..P), the row's k (read on
    its first beat), and ``last`` on the row's final beat."""
    return data.StructLayout({
        "scores": data.ArrayLayout(score_shape(cfg), cfg.lanes),
        "count": unsigned(cfg.count_width),
        "k": unsigned(cfg.k_width),
        "last": unsigned(1),
    })


def pair_layout(cfg: TopkConfig) -> data.StructLayout:
    return data.StructLayout({"index": unsigned(cfg.index_width), "value": score_shape(cfg)})


def output_layout(cfg: TopkConfig) -> data.StructLayout:
    """One output beat: up to P selected pairs in input order; ``count`` valid lanes;
    ``last`` on the row's final beat."""
    return data.StructLayout({
        "pairs": data.ArrayLayout(pair_layout(cfg), cfg.lanes),
        "count": unsigned(cfg.count_width),
        "last": unsigned(1),
    })


def item_layout(cfg: TopkConfig, key_width: int) -> data.StructLayout:
    """A stored element: its unsigned sort key, its score and its index in the row."""
    return data.StructLayout({"key": unsigned(key_width), "value": score_shape(cfg),
                              "index": unsigned(cfg.index_width)})


def order_key(cfg: TopkConfig, value):
    """The score as an unsigned number of the same order (sign bit flipped if signed)."""
    bits = Value.cast(value)[:cfg.width]
    return Cat(bits[:-1], ~bits[-1]) if cfg.signed else bits


def sort_key(cfg: TopkConfig, value):
    """The unsigned key that orders a score for selection: its :func:`order_key`,
    complemented for ``smallest``."""
    key = order_key(cfg, value)
    return ~key if cfg.smallest else key


def stream_ports(cfg: TopkConfig) -> dict:
    """The ports of the block and of each engine: score beats in, selected pairs out."""
    return {"i": In(stream.Signature(input_layout(cfg))),
            "o": Out(stream.Signature(output_layout(cfg)))}


def append(m: Module, port, items, mask, restart, rows: int, base=0):
    """Writes the ``mask`` lanes of ``items`` compacted through a store's write port
    (``w_row``, ``w_off``, ``w_items``, ``w_mask`` and ``w_count`` of a
    :class:`hdl.lanes.BankedStore`, or a part's ports of those names) at a write pointer
    kept here: it starts at row 0 with ``restart`` and addresses store rows from
    ``base``. Returns the pointer's extent (rows touched, valid lanes in the final one).
    """
    lanes = len(port.w_mask)
    row, off = Signal(range(rows + 1)), Signal(range(max(2, lanes)))
    w_row, w_off = Mux(restart, 0, row), Mux(restart, 0, off)
    m.d.comb += [port.w_row.eq(base + w_row), port.w_off.eq(w_off), port.w_mask.eq(mask),
                 port.w_items.eq(items)]
    new_row, new_off = advance(w_row, w_off, port.w_count, lanes)
    m.d.sync += [row.eq(new_row), off.eq(new_off)]
    return row + (off != 0), Mux(off != 0, off, lanes)


class Ingest(wiring.Component):
    """Per-lane view of the input beat ``beat`` at row position ``n``: which lanes hold
    elements of the row (``valid``: lane < count and position < capacity), their stored
    ``items`` (sort key, score, index n + lane) and the row position after the beat
    (``n_next``, saturating at capacity). Combinational.

    A lane's sort key is its order key, complemented for ``smallest``.
    """

    def __init__(self, cfg: TopkConfig, key_width: int):
        self.cfg = cfg
        super().__init__({
            "beat": In(input_layout(cfg)), "n": In(range(cfg.capacity + 1)),
            "valid": Out(cfg.lanes),
            "items": Out(data.ArrayLayout(item_layout(cfg, key_width), cfg.lanes)),
            "n_next": Out(range(cfg.capacity + 1))})

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        for i, item in enumerate(self.items):
            score = self.beat.scores[i]
            m.d.comb += [self.valid[i].eq((i < self.beat.count) & (self.n < cfg.capacity - i)),
                         item.key.eq(sort_key(cfg, score)), item.value.eq(score),
                         item.index.eq(self.n + i)]
        total = self.n + self.beat.count
        m.d.comb += self.n_next.eq(Mux(total > cfg.capacity, cfg.capacity, total))
        return m


class Replayer(wiring.Component):
    """The replay pass: streams rows ``base .. base+rows-1`` of a store (``tail`` valid
    lanes in the final row), keeps key > θ and the first ``need`` keys equal to θ
    (keys compared under ``mask``), and pushes the kept items to its output queue,
    whose stream ``o`` is the engine's output.

    Two jobs may be in flight: ``start`` while ``ready`` latches a job (k_eff > 0) into
    the next of two slots. Its rows are addressed from the second advancing cycle after
    the later of that and the end of the previous job's rows (the cycle its last row
    was addressed, or the cycle after its final row was kept if that comes first): one
    advancing cycle fetches the job into the issue registers. Registered stages, all
    advancing while the output queue (:class:`hdl.pipeline.StagedQueue`) has room (a
    copy of it per :data:`SECTIONS` section of stages), all holding otherwise
    (the read port then holds its row: ``r_en`` is the issue stage's copy of the room):
    issue (one store row per cycle on ``r_row``, a register per ``groups`` of the
    store's banks; its data arrives on ``r_data`` one cycle later), the read data
    registered, classify (key > θ, key = θ, with θ and the mask carried by the row),
    the :class:`hdl.pipeline.PrefixCount` of the equal lanes, keep (the one loop: the
    greater lanes and the equal lanes while fewer than ``need`` equal ones went before;
    the row completing both counts, or the job's last row, is final and drops its job's
    rows read behind it), then the queue. A job ends (``done``, for one cycle; its slot
    is free the cycle after) when its final push lands in the queue, ``lag`` cycles
    after that row was addressed. A k_eff = 0 job takes no slot and has no end.
    ``busy``: a job is in a slot.

    ``item``: the stored item's layout (default :func:`item_layout`). Without a
    ``value`` field, ``score_steps`` rebuild the score from the key: the first step
    takes the item, each later one the step before's result, one step in the classify
    stage and one in each prefix-count stage after it, within the same cycles.
    ``key_of``: an item's sort key (default its ``key`` field), taken in the classify
    stage, so that a store without a key field feeds the read data's register directly.
    """

    #: Sections of stages, each enabled by its own copy of the output queue's room.
    SECTIONS = 4

    def __init__(self, cfg: TopkConfig, key_width: int, rows: int, groups: int = 1,
                 item=None, score_steps=(), key_of=None):
        self.cfg, self.groups, self.score_steps = cfg, groups, score_steps
        self.key_of = key_of or (lambda x: x.key)
        item = item_layout(cfg, key_width) if item is None else item
        lanes, rows = cfg.lanes, max(2, rows)  # no zero-width addresses in the Verilog
        self.store_rows = rows
        #: cycles from addressing a row to its keep stage: read, read data registered,
        #: classify, prefix count
        self.to_keep = 3 + network_stages(lanes)
        #: cycles from addressing a row to its push landing in the queue: to the keep
        #: stage, keep, then the queue's latency
        self.lag = self.to_keep + 1 + StagedQueue.latency_of(lanes)
        super().__init__({
            "start": In(1), "base": In(range(rows)), "rows": In(range(rows + 1)),
            "tail": In(range(lanes + 1)), "k_eff": In(cfg.k_width), "theta": In(key_width),
            "mask": In(key_width), "need": In(cfg.k_width), "ready": Out(1), "busy": Out(1),
            "done": Out(1), "r_row": Out(data.ArrayLayout(range(rows), groups)), "r_en": Out(1),
            "r_data": In(data.ArrayLayout(item, lanes)),
            "o": Out(stream.Signature(output_layout(cfg)))})

    def elaborate(self, platform):
        m = Module()
        cfg, lanes = self.cfg, self.cfg.lanes
        pairs = data.ArrayLayout(pair_layout(cfg), lanes)
        m.submodules.queue = q = StagedQueue(output_layout(cfg), "pairs", copies=self.SECTIONS)
        wiring.connect(m, q.o, wiring.flipped(self.o))
        # the queue's room, a copy per section: the issue, the read and classify, the
        # prefix counts, the keep loop and the push
        issuing, classifying, counting, keeping = (q.rooms[j] for j in range(self.SECTIONS))
        # a slot holds the job's ports, with the equal and the greater keys to keep (need
        # and k_eff - need), each less one: the keep loop's counts (below)
        fields = ("base", "rows", "tail", "theta", "mask")
        count = signed(cfg.k_width + 1)
        layout = data.StructLayout({**{f: getattr(self, f).shape() for f in fields},
                                    "equal_m1": count, "greater_m1": count})
        given = Signal(layout)
        m.d.comb += [given[f].eq(getattr(self, f)) for f in fields]
        m.d.comb += [given.equal_m1.eq(self.need - 1),
                     given.greater_m1.eq(self.k_eff - self.need - 1)]
        jobs = [Signal(layout, name=f"job{j}") for j in range(2)]
        # per slot: a job is in it; its rows are all addressed; its final row was kept;
        # its counts are not loaded yet
        loaded, issued, closed, fresh = Signal(2), Signal(2), Signal(2), Signal(2)
        load_slot, issue_slot, keep_slot, done_slot = Signal(), Signal(), Signal(), Signal()
        m.d.comb += [self.ready.eq(~loaded.bit_select(load_slot, 1)), self.busy.eq(loaded.any())]
        taken = self.start & self.ready & (self.k_eff != 0)

        with m.If(taken):
            with m.If(load_slot):
                m.d.sync += jobs[1].eq(given)
            with m.Else():
                m.d.sync += jobs[0].eq(given)
            m.d.sync += [loaded.bit_select(load_slot, 1).eq(1),
                         issued.bit_select(load_slot, 1).eq(0),
                         closed.bit_select(load_slot, 1).eq(0),
                         fresh.bit_select(load_slot, 1).eq(1), load_slot.eq(~load_slot)]
        m.d.comb += self.done.eq(q.landed_final)
        with m.If(self.done):
            m.d.sync += [loaded.bit_select(done_slot, 1).eq(0), done_slot.eq(~done_slot)]

        # issue: the rows of the job in issue_slot in order, from the issue registers
        # (fetched from its slot in the advancing cycle before its first row); a stall
        # holds the read port's row (a multiplexer from the room to the address of every
        # bank was the routed critical path: 1.47 ns of logic, 15.73 ns of wire), and the
        # address is a register per group of banks (``groups`` copies)
        fetched, last_row = Signal(), Signal()
        left = Signal(range(self.store_rows + 1))  # rows from the one being addressed on
        next_addr, copies = copied_register(m, range(self.store_rows), self.groups, "addr_g")
        addr = copies[0]
        i_tail = Signal.like(self.tail)
        # θ's lowest and highest key under the mask: key & mask > θ is key > θ_hi, and
        # key & mask = θ is θ_lo <= key <= θ_hi (two compares of the key itself, no
        # masking before them and no equality tree after them)
        i_theta_lo, i_theta_hi = Signal.like(self.theta), Signal.like(self.theta)
        stopped = closed.bit_select(issue_slot, 1)
        issue = fetched & ~stopped
        ended = fetched & (stopped | (issuing & last_row))
        m.d.comb += [self.r_row.eq(Cat(copies)), self.r_en.eq(issuing)]
        with m.If(ended):
            m.d.sync += [issued.bit_select(issue_slot, 1).eq(1), issue_slot.eq(~issue_slot),
                         fetched.eq(0)]
        with m.Elif(issue & issuing):
            m.d.comb += next_addr.eq(addr + 1)
            m.d.sync += [left.eq(left - 1), last_row.eq(left == 2)]
        with m.Elif(issuing & ~fetched & loaded.bit_select(issue_slot, 1)
                    & ~issued.bit_select(issue_slot, 1)):
            # (an advancing cycle: a bubble between two jobs' rows, see keep)
            job = data.View(layout, Mux(issue_slot, jobs[1].as_value(), jobs[0].as_value()))
            m.d.comb += next_addr.eq(job.base)
            m.d.sync += [fetched.eq(1), left.eq(job.rows),
                         last_row.eq(job.rows == 1), i_tail.eq(job.tail),
                         i_theta_lo.eq(job.theta & job.mask),
                         i_theta_hi.eq(job.theta | ~job.mask)]
        flags = data.StructLayout({"valid": 1, "last": 1, "live": lanes, "slot": 1})
        filled = Mux(last_row, i_tail, lanes)  # the row's items
        read = stage(m, Cat(issue, last_row, Cat(issue & (j < filled) for j in range(lanes)),
                            issue_slot), issuing, "read")
        # the read data registered, with the row's θ bounds
        got = data.View(flags, stage(m, read, classifying, "got"))
        items = data.View(self.r_data.shape(),
                          stage(m, self.r_data.as_value(), classifying, "items"))
        theta_lo, theta_hi = (delay(m, v, 2, classifying, name)
                              for v, name in ((i_theta_lo, "theta_lo"), (i_theta_hi, "theta_hi")))
        # classify
        keys = [self.key_of(x) for x in items]
        above = [key > theta_hi for key in keys]
        gt = stage(m, Cat(got.live[j] & above[j] for j in range(lanes)), classifying, "gt")
        eq = stage(m, Cat(got.live[j] & ~above[j] & ~(key < theta_lo)
                          for j, key in enumerate(keys)), classifying, "eq")
        # each lane's pair: its index and its score (the item's value, or rebuilt from
        # its key by score_steps, one step before each register from here on)
        steps = self.score_steps or (lambda x: x.value,)
        iw = cfg.index_width
        parts = [stage(m, Cat(x.index, steps[0](x)), classifying, f"pair{j}")
                 for j, x in enumerate(items)]
        classified = stage(m, got.as_value(), classifying, "classified")
        # prefix counts of the equal lanes, the greater lanes counted alongside
        m.submodules.eq_count = eq_count = PrefixCount(lanes)
        m.submodules.gt_count = gt_count = PrefixCount(lanes)
        m.d.comb += [eq_count.bits.eq(eq), gt_count.bits.eq(gt),
                     eq_count.adv.eq(counting), gt_count.adv.eq(counting)]
        wait = eq_count.latency
        counted = data.View(flags, delay(m, classified, wait, counting, "counted"))
        valid = counted.valid & ~closed.bit_select(counted.slot, 1)
        gt, eq = delay(m, gt, wait, counting, "gt"), delay(m, eq, wait, counting, "eq")
        if len(steps) - 1 > wait:
            raise ValueError(f"score_steps: at most {wait + 1} steps for {lanes} lanes")
        for s, step in enumerate(steps[1:]):
            parts = [stage(m, Cat(p[:iw], step(p[iw:])), counting, f"pair{j}_s{s}")
                     for j, p in enumerate(parts)]
        kept = delay(m, Cat(parts), wait - (len(steps) - 1), counting, "pairs")
        # keep: the one loop (equal keys still wanted, greater keys still to come, each
        # less one, so that one subtraction's sign tells whether a row takes the rest,
        # and clamps the count), on the job in keep_slot
        e_m1, g_m1 = Signal(count), Signal(count)
        e, g = eq_count.total, gt_count.total
        e_left, g_left = Signal(signed(count.width + 1)), Signal(signed(count.width + 1))
        m.d.comb += [e_left.eq(e_m1 - e), g_left.eq(g_m1 - g)]
        keep = Cat(gt[j] | (eq[j] & (eq_count.before[j] <= e_m1)) for j in range(lanes))
        final = valid & ((g_left[-1] & e_left[-1]) | counted.last)

        # its final row switches keep_slot; the next job's counts load once it is in its
        # slot (its first row comes two cycles or more later: a fetch went between), from
        # a register that follows keep_slot's job (so a slot is loaded a cycle after it
        # is written: ``written`` is ``fresh`` a cycle late)
        pending = Signal(init=1)  # keep_slot's counts are not loaded yet
        switch = keeping & final
        queued = data.View(layout, stage(m, Mux(keep_slot ^ switch, jobs[1].as_value(),
                                                jobs[0].as_value()), 1, "queued"))
        written = stage(m, fresh, 1, "written")
        with m.If(keeping & valid):
            m.d.sync += [e_m1.eq(Mux(e_left[-1], -1, e_left)),
                         g_m1.eq(Mux(g_left[-1], -1, g_left))]
        with m.If(switch):
            m.d.sync += [closed.bit_select(keep_slot, 1).eq(1), keep_slot.eq(~keep_slot),
                         pending.eq(1)]
        with m.If(pending & fresh.bit_select(keep_slot, 1) & written.bit_select(keep_slot, 1)):
            m.d.sync += [e_m1.eq(queued.equal_m1), g_m1.eq(queued.greater_m1), pending.eq(0),
                         fresh.bit_select(keep_slot, 1).eq(0)]
        m.d.comb += [q.push_mask.eq(stage(m, keep & valid.replicate(lanes), keeping,
                                          "push_mask")),
                     q.push_items.eq(pairs(stage(m, kept, keeping, "push_pairs"))),
                     q.push_final.eq(stage(m, final, keeping, "push_final"))]
        return m


class TopK(wiring.Component):
    """Top-k selection with stream ports ``i`` (score beats) and ``o`` (selected pairs);
    ``cfg.engine`` picks the micro-architecture (hdl/topk_quickselect.py,
    hdl/topk_fast.py)."""

    def __init__(self, cfg: TopkConfig):
        require_config(self, cfg, TopkConfig)
        self.cfg = cfg
        super().__init__(stream_ports(cfg))

    def elaborate(self, platform):
        from .topk_fast import FastEngine
        from .topk_quickselect import QuickSelectEngine
        engine = {"fast": FastEngine, "quickselect": QuickSelectEngine}[self.cfg.engine]
        m = Module()
        m.submodules.engine = engine = engine(self.cfg)
        wiring.connect(m, wiring.flipped(self.i), engine.i)
        wiring.connect(m, engine.o, wiring.flipped(self.o))
        return m
