"""Parts of the mapping unit (hdl/mapping.py): a run reader that streams store rows as
merge-ready beats, a row sorter, a frame closer in front of the output queue, and a lane
argmax."""
from __future__ import annotations

from amaranth import Module, Mux, Signal, Value
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .lanes import SlotQueue, onehot_select, popcount


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

    def __init__(self, lanes: int, rows: int, data_width: int):
        self.lanes = lanes
        rows = max(2, rows)
        address = range(2 * rows + 1)
        super().__init__({
            "cfg": In(data.StructLayout({s: address for s in self.FIELDS})),
            "tail": In(range(lanes + 1)), "start": In(1), "abort": In(1),
            "addr": Out(address), "data": In(data_width), "busy": Out(1),
            "o": Out(stream.Signature(data.StructLayout({
                "data": data_width, "count": range(lanes + 1), "last": 1,
                "row": range(rows)})))})

    def elaborate(self, platform):
        m = Module()
        width, beat = len(self.addr), self.o.payload
        job = {s: Signal(width, name=f"job_{s}") for s in self.FIELDS}
        tail = Signal.like(self.tail, name="job_tail")
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
        pos = [Signal(range(max(2, p)), name=f"pos{i}") for i in range(p)]
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
        m.d.comb += [self.room.eq(q.room), q.push_items.eq(held),
                     q.push_mask.eq(Mux(pushing | self.close, held_mask, 0)),
                     q.push_final.eq(self.close)]
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
            v = Signal(len(v1), name=f"{name}_v{level}_{i // 2}")
            lane = Signal(max(len(l1), len(l2)), name=f"{name}_l{level}_{i // 2}")
            ok = Signal(name=f"{name}_a{level}_{i // 2}")
            right = a2 & (~a1 | (v2 > v1))
            m.d.comb += [v.eq(Mux(right, v2, v1)), lane.eq(Mux(right, l2, l1)), ok.eq(a1 | a2)]
            nxt.append((v, lane, ok))
        if len(nodes) % 2:
            nxt.append(nodes[-1])
        nodes, level = nxt, level + 1
    return nodes[0]
