"""Parts of the mapping unit (hdl/mapping.py): a run reader that streams store rows as
merge-ready beats, a row sorter, a frame closer in front of the output queue, and a lane
argmax."""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, Value
from amaranth.lib import fifo

from .lanes import onehot_select, popcount


class RunReader:
    """Streams rows of a store as beats, run by run.

    ``start`` latches a job: for pair p = 0 .. ``pairs``-1 it reads the rows
    [first + p*step, min(first + p*step + length, rows)) in order; the run's final row
    carries ``last``, and an empty run is one beat of count 0 with ``last``. A row holds P
    entries, the store's final row (``rows`` - 1) ``tail``. One row a cycle while the
    FIFO of ``DEPTH`` beats has room: the owner drives its memories' read address from
    ``addr`` and connects ``data``, the row read one cycle after its address. ``abort``
    stops reading (the beats already read still come out). ``busy`` is high until the
    last beat has been taken.
    """

    DEPTH = 4

    def __init__(self, lanes: int, rows: int, data_width: int, name: str):
        self.lanes, self.name, self.data_width = lanes, name, data_width
        rows = max(2, rows)
        self.cfg = {s: Signal(range(2 * rows + 1), name=f"{name}_{s}")
                    for s in ("first", "step", "length", "pairs", "rows")}
        self.tail = Signal(range(lanes + 1), name=f"{name}_tail")
        self.start = Signal(name=f"{name}_start")
        self.abort = Signal(name=f"{name}_abort")
        self.addr = Signal(range(2 * rows + 1), name=f"{name}_addr")
        self.data = Signal(data_width, name=f"{name}_data")
        self.busy = Signal(name=f"{name}_busy")
        # the output beat
        self.valid = Signal(name=f"{name}_valid")
        self.ready = Signal(name=f"{name}_ready")
        self.out = Signal(data_width, name=f"{name}_out")
        self.count = Signal(range(lanes + 1), name=f"{name}_count")
        self.last = Signal(name=f"{name}_last")
        self.row = Signal(range(rows), name=f"{name}_row")  # the beat's store row

    def elaborate(self, m: Module) -> None:
        name, width = self.name, len(self.addr)
        job = {s: Signal(width, name=f"{name}_job_{s}") for s in self.cfg}
        tail = Signal.like(self.tail, name=f"{name}_job_tail")
        active = Signal(name=f"{name}_active")
        pair = Signal(width, name=f"{name}_pair")
        base, end = Signal(width + 1, name=f"{name}_base"), Signal(width + 1, name=f"{name}_end")
        pair_base = Signal(width + 1, name=f"{name}_pair_base")
        s_valid, s_count = Signal(name=f"{name}_s_valid"), Signal.like(self.count)
        s_last, s_row = Signal(name=f"{name}_s_last"), Signal.like(self.row)
        buf = fifo.SyncFIFO(width=len(self.row) + self.data_width + len(self.count) + 1,
                            depth=self.DEPTH)
        m.submodules[f"{name}_fifo"] = buf

        def run_end(b, rows, length):
            return Mux(b + length > rows, rows, b + length)

        issue = Signal(name=f"{name}_issue")
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
        m.d.comb += [buf.w_en.eq(s_valid), buf.w_data.eq(Cat(self.data, s_count, s_last, s_row))]
        m.d.comb += [self.valid.eq(buf.r_rdy), buf.r_en.eq(self.ready),
                     Cat(self.out, self.count, self.last, self.row).eq(buf.r_data),
                     self.busy.eq(active | s_valid | buf.r_rdy)]
        with m.If(self.abort):
            m.d.sync += active.eq(0)
        with m.If(self.start):
            m.d.sync += [job[s].eq(v) for s, v in self.cfg.items()]
            m.d.sync += [tail.eq(self.tail), pair.eq(0), base.eq(self.cfg["first"]),
                         pair_base.eq(self.cfg["first"]),
                         end.eq(run_end(self.cfg["first"], self.cfg["rows"], self.cfg["length"])),
                         active.eq(self.cfg["pairs"] != 0)]


class RowSorter:
    """Sorts the ``count`` valid entries of a beat by key (a P x P comparator array:
    entry i goes to #{j : key_j < key_i} + #{j < i : key_j = key_i}), registered: the
    sorted beat is ``out``/``out_count`` with ``out_valid`` one cycle after ``valid``."""

    def __init__(self, entry_shape, lanes: int, name: str = "rs"):
        self.lanes, self.name = lanes, name
        self.entries = [Signal(entry_shape, name=f"{name}_in{i}") for i in range(lanes)]
        self.count = Signal(range(lanes + 1), name=f"{name}_count")
        self.valid = Signal(name=f"{name}_valid")
        self.out = [Signal(entry_shape, name=f"{name}_out{i}") for i in range(lanes)]
        self.out_count = Signal.like(self.count, name=f"{name}_out_count")
        self.out_valid = Signal(name=f"{name}_out_valid")

    def elaborate(self, m: Module) -> None:
        p, e = self.lanes, self.entries
        live = [i < self.count for i in range(p)]
        pos = [Signal(range(max(2, p)), name=f"{self.name}_pos{i}") for i in range(p)]
        m.d.comb += [pos[i].eq(popcount([live[j] & ((e[j].key < e[i].key) if j > i else
                                                    (e[j].key <= e[i].key))
                                         for j in range(p) if j != i])) for i in range(p)]
        m.d.sync += [self.out_valid.eq(self.valid), self.out_count.eq(self.count)]
        for s in range(p):
            m.d.sync += self.out[s].eq(onehot_select([live[i] & (pos[i] == s) for i in range(p)],
                                                     [Value.cast(x) for x in e]))


class FrameCloser:
    """Sits in front of a :class:`~hdl.lanes.SlotQueue` and holds back the latest
    non-empty push, so that ``close`` (a cycle without a push) can send it with
    ``push_final``: a frame's length need not be known before it ends. Closing a frame
    with nothing held sends an empty final slot (an empty frame)."""

    def __init__(self, queue):
        self.queue, lanes = queue, queue.lanes
        self.items = [Signal(queue.item_shape, name=f"fc_item{i}") for i in range(lanes)]
        self.mask = Signal(lanes, name="fc_mask")
        self.close = Signal(name="fc_close")
        self.room = queue.room

    def elaborate(self, m: Module) -> None:
        q, lanes = self.queue, self.queue.lanes
        held = [Signal(q.item_shape, name=f"fc_held{i}") for i in range(lanes)]
        held_mask = Signal(lanes, name="fc_held_mask")
        pushing = self.mask != 0
        m.d.comb += [q.push_items[i].eq(held[i]) for i in range(lanes)]
        m.d.comb += [q.push_mask.eq(Mux(pushing | self.close, held_mask, 0)),
                     q.push_final.eq(self.close)]
        with m.If(pushing):
            m.d.sync += [held[i].eq(self.items[i]) for i in range(lanes)]
            m.d.sync += held_mask.eq(self.mask)
        with m.If(self.close):
            m.d.sync += held_mask.eq(0)


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
