"""Parts of the mapping unit (hdl/mapping.py): a run reader that streams store rows as
merge-ready beats, the distance lanes, the merge node's feeds, a row sorter, the sort
buffers' writer, the kernel map's match detector, offsets and table, ball query's hits,
FPS's lane, a frame closer in front of the output queue, and a lane argmax."""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.mapping import MappingConfig
from accelgen.params.merger import MergerConfig

from .lanes import (BankedStore, RowReader, SlotQueue, onehot_select, pick, popcount,
                    prefix_counts)
from .mapping_layouts import (OFFSET_WIDTH, coord_layout, entry_layout, merge_key_width,
                              sort_key_width)
from .merger import beat_layout, beat_stream


def merge_config(cfg: MappingConfig) -> MergerConfig:
    """The merge node's entries: a merge key and a point index."""
    return MergerConfig(ways=2, lanes=cfg.lanes, key_width=merge_key_width(cfg),
                        value_width=cfg.index_width + 1, saturate=False)


def unpack_key(cfg: MappingConfig, key):
    """(x, y, z) of a plain coordinate key."""
    w = cfg.coord_width
    return key[2 * w:3 * w], key[w:2 * w], key[:w]


def position(row, lane, lanes: int, width: int):
    """The index of the entry in lane ``lane`` of row ``row`` (P a power of two)."""
    shift = lanes.bit_length() - 1
    return (Cat(Const(lane, shift) if isinstance(lane, int) else lane[:shift], row)
            if shift else Value.cast(row))[:width]


def dist2(cfg: MappingConfig, a, b):
    """Squared distance of two coordinates (unsigned absolute differences)."""
    terms = []
    for f in ("x", "y", "z"):
        u, v = getattr(a, f), getattr(b, f)
        d = Mux(u > v, u - v, v - u)[:cfg.coord_width]
        terms.append(d * d)
    return (terms[0] + terms[1] + terms[2])[:cfg.dist_width]


def point_row(cfg: MappingConfig) -> data.StructLayout:
    """A row of the point reader: P points and their running minimum distances (FPS)."""
    return data.StructLayout({"points": data.ArrayLayout(coord_layout(cfg), cfg.lanes),
                              "minima": data.ArrayLayout(unsigned(cfg.dist_width), cfg.lanes)})


def distance_row(cfg: MappingConfig) -> data.StructLayout:
    """A row of the distance lanes: P squared distances and the points' running minima."""
    return data.StructLayout({"d2": data.ArrayLayout(unsigned(cfg.dist_width), cfg.lanes),
                              "minima": data.ArrayLayout(unsigned(cfg.dist_width), cfg.lanes)})


def entry_row(cfg: MappingConfig) -> data.ArrayLayout:
    """A row of a sort buffer: P entries."""
    return data.ArrayLayout(entry_layout(cfg), cfg.lanes)


def map_pair(cfg: MappingConfig) -> data.StructLayout:
    """A kernel map: an input index and an output index."""
    return data.StructLayout({"in_idx": unsigned(cfg.index_width),
                              "out_idx": unsigned(cfg.index_width)})


def match_beat(cfg: MappingConfig) -> data.StructLayout:
    """The maps of one merge-output beat: the lanes that hold one (``mask``) and each
    lane's pair."""
    return data.StructLayout({"mask": cfg.lanes,
                              "pairs": data.ArrayLayout(map_pair(cfg), cfg.lanes)})


def run_beat(lanes: int, rows: int, data_shape) -> data.StructLayout:
    """A beat of a :class:`RunReader`: a store row's ``data``, its ``count`` of entries,
    ``last`` (the run's final row) and the store ``row``."""
    return data.StructLayout({"data": data_shape, "count": range(lanes + 1), "last": 1,
                              "row": range(max(2, rows))})


class RunReader(wiring.Component):
    """Streams rows of a store as beats, run by run.

    ``start`` latches a job (``cfg``): for pair p = 0 .. ``pairs``-1 it reads the rows
    [first + p*step, min(first + p*step + length, rows)) in order; the run's final row
    carries ``last``, and an empty run is one beat of count 0 with ``last``. A row holds P
    entries, the store's final row (``rows`` - 1) ``tail``. One row a cycle while the
    FIFO of ``DEPTH`` beats has room: the owner drives its memories' read address from
    ``addr`` and connects ``data``, the row read one cycle after its address. Each beat
    on the stream ``o`` carries the row's ``data``, its ``count`` of entries, ``last``
    and the store ``row``. ``abort`` stops reading (the beats already read still come
    out). ``busy`` is high until the last beat has been taken.
    """

    DEPTH = 4
    FIELDS = ("first", "step", "length", "pairs", "rows")

    def __init__(self, lanes: int, rows: int, data_shape):
        self.lanes = lanes
        address = range(2 * max(2, rows) + 1)
        super().__init__({
            "cfg": In(data.StructLayout({s: address for s in self.FIELDS})),
            "tail": In(range(lanes + 1)), "start": In(1), "abort": In(1),
            "addr": Out(address), "data": In(data_shape), "busy": Out(1),
            "o": Out(stream.Signature(run_beat(lanes, rows, data_shape)))})

    def elaborate(self, platform):
        m = Module()
        width, beat = len(self.addr), self.o.payload
        job = {s: Signal(width, name=f"job_{s}") for s in self.FIELDS}  # pragma: no mutate
        tail = Signal.like(self.tail, name="job_tail")  # pragma: no mutate
        active = Signal()
        pair = Signal(width)
        base, end = Signal(width + 1), Signal(width + 1)
        pair_base = Signal(width + 1)
        s_valid, s_count = Signal(), Signal.like(beat.count)
        s_last, s_row = Signal(), Signal.like(beat.row)
        m.submodules.fifo = buf = fifo.SyncFIFO(width=len(beat.as_value()), depth=self.DEPTH)

        def run_end(b, rows, length):
            return Mux(b + length > rows, rows, b + length)

        issue = Signal()
        m.d.comb += [issue.eq(active & (buf.level + s_valid < self.DEPTH)), self.addr.eq(base)]
        empty = base >= end
        closes = empty | (base + 1 >= end)
        m.d.sync += s_valid.eq(issue)
        with m.If(issue):
            m.d.sync += [s_row.eq(base), s_last.eq(closes),
                         s_count.eq(Mux(empty, 0, Mux(base + 1 == job["rows"], tail, self.lanes)))]
            with m.If(~closes):
                m.d.sync += base.eq(base + 1)
            with m.Else():
                nxt = pair_base + job["step"]
                m.d.sync += [pair.eq(pair + 1), pair_base.eq(nxt), base.eq(nxt),
                             end.eq(run_end(nxt, job["rows"], job["length"]))]
                with m.If(pair + 1 == job["pairs"]):
                    m.d.sync += active.eq(0)
        stored = Signal.like(beat)
        m.d.comb += [stored.data.eq(self.data), stored.count.eq(s_count),
                     stored.last.eq(s_last), stored.row.eq(s_row)]
        m.d.comb += [buf.w_en.eq(s_valid), buf.w_data.eq(stored)]
        m.d.comb += [self.o.valid.eq(buf.r_rdy), buf.r_en.eq(self.o.ready),
                     beat.eq(buf.r_data), self.busy.eq(active | s_valid | buf.r_rdy)]
        with m.If(self.abort):
            m.d.sync += active.eq(0)
        with m.If(self.start):
            m.d.sync += [job[s].eq(self.cfg[s]) for s in self.FIELDS]
            m.d.sync += [tail.eq(self.tail), pair.eq(0), base.eq(self.cfg["first"]),
                         pair_base.eq(self.cfg["first"]),
                         end.eq(run_end(self.cfg["first"], self.cfg["rows"], self.cfg["length"])),
                         active.eq(self.cfg["pairs"] != 0)]
        return m


class RowSorter(wiring.Component):
    """Sorts the ``count`` valid entries of a beat by key (a P x P comparator array:
    entry i goes to #{j : key_j < key_i} + #{j < i : key_j = key_i}), registered: the
    sorted beat is ``out``/``out_count`` with ``out_valid`` one cycle after ``valid``."""

    def __init__(self, entry_shape, lanes: int):
        self.lanes = lanes
        super().__init__({"entries": In(data.ArrayLayout(entry_shape, lanes)),
                          "count": In(range(lanes + 1)), "valid": In(1),
                          "out": Out(data.ArrayLayout(entry_shape, lanes)),
                          "out_count": Out(range(lanes + 1)), "out_valid": Out(1)})

    def elaborate(self, platform):
        m = Module()
        p, e = self.lanes, self.entries
        live = [i < self.count for i in range(p)]
        pos = [Signal(range(max(2, p)), name=f"pos{i}") for i in range(p)]  # pragma: no mutate
        m.d.comb += [pos[i].eq(popcount([live[j] & ((e[j].key < e[i].key) if j > i else
                                                    (e[j].key <= e[i].key))
                                         for j in range(p) if j != i])) for i in range(p)]
        m.d.sync += [self.out_valid.eq(self.valid), self.out_count.eq(self.count)]
        for s in range(p):
            m.d.sync += self.out[s].eq(onehot_select([live[i] & (pos[i] == s) for i in range(p)],
                                                     [Value.cast(x) for x in e]))
        return m


class FrameCloser(wiring.Component):
    """An output frame writer: a :class:`~hdl.lanes.SlotQueue` (stream ``o`` of the
    owner's beat layout) behind a one-push hold. The latest non-empty push (``items``
    where ``mask``) is held back, so that ``close`` (a cycle without a push) can send it
    with the queue's ``push_final``: a frame's length need not be known before it ends.
    Closing a frame with nothing held sends an empty final slot (an empty frame).
    ``room`` is the queue's."""

    def __init__(self, beat: data.StructLayout, items: str):
        self.beat, self.items_field = beat, items
        item_shape, lanes = beat.members[items].elem_shape, beat.members[items].length
        self.lanes = lanes
        super().__init__({"items": In(data.ArrayLayout(item_shape, lanes)), "mask": In(lanes),
                          "close": In(1), "room": Out(1), "o": Out(stream.Signature(beat))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.queue = q = SlotQueue(self.beat, self.items_field)
        wiring.connect(m, q.o, wiring.flipped(self.o))
        held = Signal.like(self.items)
        held_mask = Signal(self.lanes)
        pushing = self.mask != 0
        # (the held push routed from registers; whether it goes now comes last)
        m.d.comb += [self.room.eq(q.room), q.push_items.eq(held), q.push_mask.eq(held_mask),
                     q.push.eq(pushing | self.close), q.push_final.eq(self.close)]
        with m.If(pushing):
            m.d.sync += [held.eq(self.items), held_mask.eq(self.mask)]
        with m.If(self.close):
            m.d.sync += held_mask.eq(0)
        return m


def lane_argmax(m: Module, values, valid, name: str = "amax") -> tuple[Signal, Signal, Signal]:
    """(largest value, its lane, any lane valid) over the valid lanes; ties go to the
    lowest lane. A balanced tree of comparators (each node's result a signal)."""
    nodes = [(Value.cast(v), Value.cast(i), Value.cast(ok)) for i, (v, ok) in
             enumerate(zip(values, valid))]
    level = 0
    while len(nodes) > 1:
        nxt = []
        for i in range(0, len(nodes) - 1, 2):
            (v1, l1, a1), (v2, l2, a2) = nodes[i], nodes[i + 1]
            v = Signal(len(v1), name=f"{name}_v{level}_{i // 2}")  # pragma: no mutate
            lane = Signal(max(len(l1), len(l2)), name=f"{name}_l{level}_{i // 2}")  # pragma: no mutate
            ok = Signal(name=f"{name}_a{level}_{i // 2}")  # pragma: no mutate
            right = a2 & (~a1 | (v2 > v1))
            m.d.comb += [v.eq(Mux(right, v2, v1)), lane.eq(Mux(right, l2, l1)), ok.eq(a1 | a2)]
            nxt.append((v, lane, ok))
        if len(nodes) % 2:
            nxt.append(nodes[-1])
        nodes, level = nxt, level + 1
    return nodes[0]


class DistanceLanes(wiring.Component):
    """P squared distances from ``query`` to a row of points: each beat of the stream
    ``i`` (a point reader's, :func:`point_row`) leaves on ``o`` (:func:`distance_row`)
    with its running minima, count, last and row. Combinational: valid and ready pass
    through."""

    def __init__(self, cfg: MappingConfig):
        self.cfg = cfg
        super().__init__({
            "query": In(coord_layout(cfg)),
            "i": In(stream.Signature(run_beat(cfg.lanes, cfg.rows, point_row(cfg)))),
            "o": Out(stream.Signature(run_beat(cfg.lanes, cfg.rows, distance_row(cfg))))})

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        m.d.comb += [o.valid.eq(i.valid), i.ready.eq(o.ready), o.payload.count.eq(i.payload.count),
                     o.payload.last.eq(i.payload.last), o.payload.row.eq(i.payload.row),
                     o.payload.data.minima.eq(i.payload.data.minima)]
        m.d.comb += [o.payload.data.d2[j].eq(dist2(self.cfg, self.query, point))
                     for j, point in enumerate(i.payload.data.points)]
        return m


class MergeFeed(wiring.Component):
    """A run reader's rows of sort entries (stream ``i``) into one input of the merge
    node (``o``) while ``merging`` is high; else, on side 0, to the stream ``rows`` (rows the
    owner reads itself). Combinational: valid and ready pass through.

    A merge key is the plain key over a 0, or in a kernel map (``kmap``) the side bit (0:
    outputs, 1: inputs) under the coordinate fields, each two bits wider and offset by
    one. Side 0's fields are shifted (c * stride + ``delta``, no wrap at 0 or at the
    maximum) and at stride 2 (``stride2``) its entries carry their position in the
    buffer as value."""

    def __init__(self, cfg: MappingConfig, side: int):
        self.cfg, self.side = cfg, side
        beat = stream.Signature(run_beat(cfg.lanes, cfg.rows, entry_row(cfg)))
        ports = {"i": In(beat), "o": Out(beat_stream(merge_config(cfg), cfg.lanes)),
                 "merging": In(1), "kmap": In(1)}
        if side == 0:
            ports.update(rows=Out(beat), stride2=In(1), delta=In(data.ArrayLayout(signed(2), 3)))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        cfg, i, o, side = self.cfg, self.i, self.o, self.side
        for j, e in enumerate(i.payload.data):
            fields = [Signal(cfg.field_width, name=f"{f}{j}") for f in "xyz"]  # pragma: no mutate
            for f, c in enumerate(unpack_key(cfg, e.key)):
                if side == 0:
                    c = Mux(self.stride2, c << 1, c) + self.delta[f]
                m.d.comb += fields[f].eq(c + 1)
            kernel_key = Cat(Const(side, 1), fields[2], fields[1], fields[0])
            m.d.comb += [o.payload.entries[j].key.eq(Mux(self.kmap, kernel_key,
                                                          Cat(Const(0, 1), e.key))),
                         o.payload.entries[j].value.eq(e.value)]
            if side == 0:
                with m.If(self.kmap & self.stride2):
                    m.d.comb += o.payload.entries[j].value.eq(
                        position(i.payload.row, j, cfg.lanes, cfg.index_width))
        m.d.comb += [o.payload.count.eq(i.payload.count), o.payload.last.eq(i.payload.last)]
        with m.If(self.merging):
            m.d.comb += [o.valid.eq(i.valid), i.ready.eq(o.ready)]
        if side == 0:
            m.d.comb += self.rows.payload.eq(i.payload)
            with m.If(~self.merging):
                m.d.comb += [self.rows.valid.eq(i.valid), i.ready.eq(self.rows.ready)]
        return m


class BufferWriter(wiring.Component):
    """The sort buffers' write port (``w_*``, to buffer ``w_buf``; ``w_mask`` 0 when
    nothing is written), shared by two writers. Combinational but for the pointers.

    The load writer puts each row of the row sorter (``rows``, ``rows_count``, when
    ``rows_valid``) into the next row of buffer ``load_buf``, from row 0 after
    ``load_start``. Else the pass writer puts the merge output ``merged`` (when ``take``)
    at its write pointer in buffer ``pass_buf``, from 0 after ``pass_start``; with
    ``dedupe`` it drops each entry whose sort key equals the one before it (across beats
    too). ``total``: the entries written by the pass, this beat's included."""

    def __init__(self, cfg: MappingConfig, buffers: int):
        self.cfg = cfg
        lanes, rows, entries = cfg.lanes, cfg.rows, entry_row(cfg)
        super().__init__({
            "rows": In(entries), "rows_count": In(range(lanes + 1)), "rows_valid": In(1),
            "load_buf": In(range(buffers)), "load_start": In(1),
            "merged": In(beat_layout(merge_config(cfg), lanes)), "take": In(1),
            "pass_buf": In(range(buffers)), "pass_start": In(1), "dedupe": In(1),
            "total": Out(cfg.count_width + 1), "w_buf": Out(range(buffers)),
            "w_row": Out(range(rows + 1)), "w_off": Out(range(max(2, lanes))),
            "w_items": Out(entries), "w_mask": Out(lanes)})

    def elaborate(self, platform):
        m = Module()
        cfg, lanes = self.cfg, self.cfg.lanes
        shift, kw, beat = lanes.bit_length() - 1, sort_key_width(cfg), self.merged
        load_buf, load_row = Signal.like(self.load_buf), Signal.like(self.w_row)
        w_row, w_off = Signal.like(self.w_row), Signal.like(self.w_off)
        prev_key, prev_have = Signal(kw), Signal()
        keys = [beat.entries[j].key[1:1 + kw] for j in range(lanes)]
        dup = [keys[j] == keys[j - 1] if j else prev_have & (keys[0] == prev_key)
               for j in range(lanes)]
        keep = Signal(lanes)
        m.d.comb += [keep[j].eq((j < beat.count) & ~(self.dedupe & dup[j])) for j in range(lanes)]
        with m.If(self.rows_valid):
            m.d.comb += [self.w_buf.eq(load_buf), self.w_row.eq(load_row), self.w_off.eq(0),
                         self.w_items.eq(self.rows),
                         self.w_mask.eq(Cat(*[j < self.rows_count for j in range(lanes)]))]
            m.d.sync += load_row.eq(load_row + 1)
        with m.Elif(self.take):
            m.d.comb += [self.w_buf.eq(self.pass_buf), self.w_row.eq(w_row),
                         self.w_off.eq(w_off), self.w_mask.eq(keep)]
            m.d.comb += [self.w_items[j].key.eq(keys[j]) for j in range(lanes)]
            m.d.comb += [self.w_items[j].value.eq(beat.entries[j].value) for j in range(lanes)]
        filled = w_off + popcount(keep)
        m.d.comb += self.total.eq(position(w_row, w_off, lanes, len(self.total)) + popcount(keep))
        with m.If(self.take):
            m.d.sync += [w_row.eq(w_row + (filled >> shift)), w_off.eq(filled & (lanes - 1)),
                         prev_key.eq(pick(beat.count - 1, keys)), prev_have.eq(beat.count != 0)]
        with m.If(self.load_start):
            m.d.sync += [load_buf.eq(self.load_buf), load_row.eq(0)]
        with m.If(self.pass_start):
            m.d.sync += [w_row.eq(0), w_off.eq(0), prev_have.eq(0)]
        return m


class MatchDetector(wiring.Component):
    """Kernel maps on the merge output ``beat``: an output entry (side 0) directly
    followed by an input entry (side 1) with the same key, across beats too. ``matches``
    marks the lanes holding such an input entry, each with (its index, the output's).
    Combinational, but the beat's final entry is carried to the next (registered when
    ``take``; not past a run's ``last``)."""

    def __init__(self, cfg: MappingConfig):
        self.cfg = cfg
        super().__init__({"beat": In(beat_layout(merge_config(cfg), cfg.lanes)),
                          "take": In(1), "matches": Out(match_beat(cfg))})

    def elaborate(self, platform):
        m = Module()
        lanes, iw, beat = self.cfg.lanes, self.cfg.index_width, self.beat
        side = [beat.entries[j].key[0] for j in range(lanes)]
        key = [beat.entries[j].key[1:] for j in range(lanes)]
        index = [beat.entries[j].value[:iw] for j in range(lanes)]
        c_key, c_side, c_index, c_have = Signal.like(key[0]), Signal(), Signal(iw), Signal()
        for j in range(lanes):
            # the entry before lane j: lane j - 1, or the previous beat's last (carried)
            b_key, b_side, b_index, b_have = ((key[j - 1], side[j - 1], index[j - 1], 1) if j
                                              else (c_key, c_side, c_index, c_have))
            m.d.comb += [self.matches.mask[j].eq((j < beat.count) & side[j] & b_have & ~b_side
                                                 & (b_key == key[j])),
                         self.matches.pairs[j].in_idx.eq(index[j]),
                         self.matches.pairs[j].out_idx.eq(b_index)]
        final = beat.count - 1
        with m.If(self.take):
            m.d.sync += [c_key.eq(pick(final, key)), c_side.eq(pick(final, side)),
                         c_index.eq(pick(final, index)),
                         c_have.eq((beat.count != 0) & ~beat.last)]
        return m


class MapTable(wiring.Component):
    """The kernel map's table for inputs that did not arrive sorted: per output index,
    its input index + 1 (0: none), in P banks of ``rows`` rows (of which ``tail`` entries
    in the final one are used).

    Scatter: the maps on the stream ``i`` go through a FIFO of four beats, and one map a
    cycle (a beat's lowest lane first) is written; ``idle`` when none is left. Wipe:
    while ``wipe`` is high, one row a cycle is zeroed, from row 0 (``wiping_last``: this
    is the final row). Scan: while ``scan`` is high, one row a cycle is read in order; a
    row's maps come out the next cycle (``found`` lanes of ``maps``) and the row is
    zeroed behind; ``finished`` when every row has come out. ``restart`` returns the wipe
    and the scan to row 0 (registered)."""

    DEPTH = 4

    def __init__(self, cfg: MappingConfig):
        self.cfg = cfg
        lanes = cfg.lanes
        super().__init__({"i": In(stream.Signature(match_beat(cfg))), "idle": Out(1),
                          "rows": In(range(cfg.rows + 1)), "tail": In(range(lanes + 1)),
                          "restart": In(1), "wipe": In(1), "wiping_last": Out(1),
                          "scan": In(1), "found": Out(lanes),
                          "maps": Out(data.ArrayLayout(map_pair(cfg), lanes)),
                          "finished": Out(1)})

    def elaborate(self, platform):
        m = Module()
        cfg, lanes, rows = self.cfg, self.cfg.lanes, self.cfg.rows
        shift, iw = lanes.bit_length() - 1, cfg.index_width
        m.submodules.table = tbl = BankedStore(unsigned(iw + 1), lanes, rows, 1)
        m.submodules.fifo = sfifo = fifo.SyncFIFO(width=match_beat(cfg).size, depth=self.DEPTH)
        m.submodules.reader = sc = RowReader(lanes, rows)
        m.d.comb += [sfifo.w_data.eq(self.i.payload), sfifo.w_en.eq(self.i.valid),
                     self.i.ready.eq(sfifo.w_rdy)]
        # scatter: the current beat's maps, lowest lane first
        cur_mask = Signal(lanes)
        cur = Signal(data.ArrayLayout(map_pair(cfg), lanes))
        target = Signal(map_pair(cfg))
        m.d.comb += target.eq(onehot_select([cur_mask[j] & ~cur_mask[:j].any() for j in
                                             range(lanes)], [Value.cast(p) for p in cur]))
        finishing = (cur_mask & (cur_mask - 1)) == 0
        m.d.comb += [sfifo.r_en.eq(finishing), self.idle.eq(~sfifo.r_rdy & (cur_mask == 0))]
        with m.If(cur_mask != 0):
            m.d.sync += cur_mask.eq(cur_mask & (cur_mask - 1))
            m.d.comb += [tbl.w_row.eq(target.out_idx >> shift),
                         tbl.w_off.eq(target.out_idx & (lanes - 1)),
                         tbl.w_items.eq(target.in_idx + 1), tbl.w_mask.eq(1)]  # lane 0; others 0
        with m.If(finishing & sfifo.r_rdy):
            beat = data.View(match_beat(cfg), sfifo.r_data)
            m.d.sync += [cur_mask.eq(beat.mask), cur.eq(beat.pairs)]
        # wipe and scan: row ``row`` (the one wiped, or the one read last cycle)
        row = Signal(range(rows + 1))
        m.d.comb += [sc.rows.eq(self.rows), sc.tail.eq(self.tail), sc.go.eq(self.scan),
                     sc.clear.eq(self.restart), tbl.r_row[0].eq(sc.row),
                     self.wiping_last.eq(row + 1 >= self.rows), self.finished.eq(sc.finished)]
        with m.If(sc.issue):
            m.d.sync += row.eq(sc.row)
        with m.If(self.wipe):
            m.d.sync += row.eq(row + 1)
        with m.If(self.wipe | sc.inflight):
            m.d.comb += [tbl.w_row.eq(row), tbl.w_off.eq(0), tbl.w_mask.eq(-1)]
        m.d.comb += [self.found[j].eq(sc.live[j] & (tbl.r_data[0][j] != 0)) for j in range(lanes)]
        m.d.comb += [self.maps[j].in_idx.eq(tbl.r_data[0][j] - 1) for j in range(lanes)]
        m.d.comb += [self.maps[j].out_idx.eq(position(row, j, lanes, iw)) for j in range(lanes)]
        with m.If(self.restart):
            m.d.sync += row.eq(0)
        return m


class KernelOffsets(wiring.Component):
    """The kernel offsets ``delta`` in torchsparse's order and their index ``offset``:
    size 3 (``kernel3``) from (-1, -1, -1), x fastest; size 2 from (0, 0, 0), z fastest.
    ``restart`` goes to the first, ``step`` to the next (registered); ``final``: this is
    the last (27th or 8th)."""

    def __init__(self):
        super().__init__({"kernel3": In(1), "restart": In(1), "step": In(1),
                          "delta": Out(data.ArrayLayout(signed(2), 3)),
                          "offset": Out(OFFSET_WIDTH), "final": Out(1)})

    def elaborate(self, platform):
        m = Module()
        k3, first = self.kernel3, Mux(self.kernel3, -1, 0)
        delta = [Signal(signed(2), name=f) for f in "xyz"]
        m.d.comb += [self.delta[f].eq(delta[f]) for f in range(3)]
        m.d.comb += self.final.eq(self.offset + 1 == Mux(k3, 27, 8))
        with m.If(self.step):
            m.d.sync += self.offset.eq(self.offset + 1)
            with m.If(k3):
                self._advance(m, delta, first)
            with m.Else():
                self._advance(m, delta[::-1], first)
        with m.If(self.restart):
            m.d.sync += [self.offset.eq(0)] + [d.eq(first) for d in delta]
        return m

    @staticmethod
    def _advance(m: Module, digits, first):
        """Count on ``digits`` (the fastest first), each from ``first`` to 1."""
        with m.If(digits[0] != 1):
            m.d.sync += digits[0].eq(digits[0] + 1)
        with m.Elif(digits[1] != 1):
            m.d.sync += [digits[0].eq(first), digits[1].eq(digits[1] + 1)]
        with m.Else():
            m.d.sync += [digits[0].eq(first), digits[1].eq(first), digits[2].eq(digits[2] + 1)]


class FpsLane(wiring.Component):
    """Farthest point sampling's pass over the distance lanes' rows (``beat``, taken when
    ``valid``): each point's new running minimum distance (``minima``: the distance itself
    in the ``first`` pass, else the smaller of it and the stored one), for the owner to
    store, and the argmax of those minima so far (``row``, ``lane``; ties to the lowest
    index), registered per beat. Combinational but for the argmax. ``start`` begins a
    pass (sampling ``first``); ``seed`` sets the argmax to point 0 (the first pick)."""

    def __init__(self, cfg: MappingConfig):
        self.cfg = cfg
        super().__init__({
            "beat": In(run_beat(cfg.lanes, cfg.rows, distance_row(cfg))), "valid": In(1),
            "start": In(1), "first": In(1), "seed": In(1),
            "minima": Out(data.ArrayLayout(unsigned(cfg.dist_width), cfg.lanes)),
            "row": Out(range(max(2, cfg.rows))), "lane": Out(range(max(2, cfg.lanes)))})

    def elaborate(self, platform):
        m = Module()
        lanes, beat = self.cfg.lanes, self.beat
        best_v, best_have, first_pass = Signal(self.cfg.dist_width), Signal(), Signal()
        d2, mind = beat.data.d2, beat.data.minima
        m.d.comb += [self.minima[j].eq(Mux(first_pass | (d2[j] < mind[j]), d2[j], mind[j]))
                     for j in range(lanes)]
        v, lane, anyv = lane_argmax(m, list(self.minima), [j < beat.count for j in range(lanes)])
        with m.If(self.valid & anyv & (~best_have | (v > best_v))):
            m.d.sync += [best_v.eq(v), self.row.eq(beat.row), self.lane.eq(lane),
                         best_have.eq(1)]
        with m.If(self.start):
            m.d.sync += [best_have.eq(0), first_pass.eq(self.first)]
        with m.If(self.seed):
            m.d.sync += [self.row.eq(0), self.lane.eq(0)]
        return m


class BallHits(wiring.Component):
    """Ball query's hits over a pass of distance rows (``beat``): ``take`` marks the
    lanes with d2 < ``radius2`` among the query's first ``k`` hits, counted when
    ``valid``; ``reached``: with this beat's, k hits. Then padding: ``more`` marks the
    lanes that bring the count to k, counted when ``pad``; ``fill`` is the first hit's
    index (0 if none); ``full``: k counted. Combinational but for the count and the first
    hit (registered); ``restart`` begins a query."""

    def __init__(self, cfg: MappingConfig):
        self.cfg = cfg
        lanes = cfg.lanes
        super().__init__({
            "beat": In(run_beat(lanes, cfg.rows, distance_row(cfg))),
            "radius2": In(cfg.dist_width + 1), "k": In(cfg.count_width), "valid": In(1),
            "pad": In(1), "restart": In(1), "take": Out(lanes), "reached": Out(1),
            "more": Out(lanes), "fill": Out(cfg.index_width), "full": Out(1)})

    def elaborate(self, platform):
        m = Module()
        lanes, beat, k = self.cfg.lanes, self.beat, self.k
        hits, found_any = Signal(self.cfg.count_width + 1), Signal()
        first_hit = Signal(self.cfg.index_width)
        hit = Cat(*[(j < beat.count) & (d < self.radius2) for j, d in enumerate(beat.data.d2)])
        before = prefix_counts(m, hit, "before")
        m.d.comb += [self.take.eq(Cat(*[hit[j] & (hits + before[j] < k) for j in range(lanes)])),
                     self.reached.eq(hits + popcount(self.take) >= k),
                     self.more.eq(Cat(*[hits + j < k for j in range(lanes)])),
                     self.fill.eq(Mux(found_any, first_hit, 0)), self.full.eq(hits >= k)]
        with m.If(self.valid):
            m.d.sync += hits.eq(hits + popcount(self.take))
            with m.If(~found_any & (self.take != 0)):
                m.d.sync += [found_any.eq(1), first_hit.eq(onehot_select(
                    [self.take[j] & ~self.take[:j].any() for j in range(lanes)],
                    [position(beat.row, j, lanes, self.cfg.index_width) for j in range(lanes)]))]
        with m.If(self.pad):
            m.d.sync += hits.eq(hits + popcount(self.more))
        with m.If(self.restart):
            m.d.sync += [hits.eq(0), found_any.eq(0)]
        return m
