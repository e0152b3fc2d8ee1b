"""PointAcc's ranking-based mapping unit (block ``mapping``): kernel maps, kNN, ball query
and farthest point sampling from one datapath (papers.md §3). Payloads and framing:
hdl/mapping_layouts.py.

Resources, shared by the operations:

- a point store (P banks of coordinates) and P distance lanes (squared distances from
  one query point to a row of P points a cycle);
- three sort buffers of (key, index) entries and ONE merge node (hdl/merger.py's
  comparator array, P entries a cycle) with two run readers in front of it. Sorting is
  a merge sort: each row of P is sorted as it is loaded (:class:`RowSorter`), then each
  pass merges pairs of runs of L rows into runs of 2L (ceil(log2 rows) passes);
- the top-k engine (hdl/topk.py, ``fast``);
- the output queue, P result lanes a beat.

The operations (cycle behaviour in golden/mapping.py's cycle model):

- kernel_map: the inputs are sorted (no pass when they arrive sorted). Stride 2 halves
  the sorted keys, sorts them again and drops duplicates in the final pass, giving the
  output coordinates. Then per offset delta, one merge of the outputs' keys
  (c * stride + delta) against the inputs' keys; an output entry directly followed by an
  input entry with the same key is a map. Maps leave in merge order when that is
  output-index order (stride 2, or inputs that arrived sorted); otherwise they are
  scattered into a table by output index (one a cycle) that is then read out in order.
- knn: the distance lanes feed the top-k engine (its ``smallest`` mode: the k nearest,
  ties to the lower index); its k results are merge-sorted by (d2, index).
- ball_query: the distance lanes' hits (d2 < radius2) are compacted into the output in
  index order; the pass stops at the k-th hit; missing slots repeat the first hit.
- fps: per pick one pass updates each point's running minimum distance (a store of P
  banks) and finds the argmax (ties to the lowest index).

Commands that ``accelgen run`` refuses are defined for users of the bare Verilog: with n
above ``capacity`` all n points are taken from ``p`` and the first ``capacity`` kept (the
job runs on them); k and m above n are clamped to n; k = 0 gives an empty frame per
query and m = 0 an empty FPS frame (so does n = 0). The next job is unaffected. Repeated
points in a kernel map stay outside the contract (the formal proofs show only that the
frames stay well-formed).
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.mapping import MappingConfig
from accelgen.params.merger import MergerConfig
from accelgen.params.topk import TopkConfig

from .checks import require_config
from .lanes import BankedStore, RowReader, pick, popcount, prefix_counts
from .mapping_layouts import (Op, command_layout, coord_layout, entry_layout, merge_key_width,
                              output_layout, points_layout, sort_key_width)
from .mapping_parts import FrameCloser, RowSorter, RunReader, lane_argmax
from .merger import MergeNode
from .topk import TopK

#: Sort buffers: S (the sorted inputs), and two more for the stride-2 outputs and kNN.
BUFFERS = 3


def merge_config(cfg: MappingConfig) -> MergerConfig:
    """The merge node's entries: a merge key and a point index."""
    return MergerConfig(ways=2, lanes=cfg.lanes, key_width=merge_key_width(cfg),
                        value_width=cfg.index_width + 1, saturate=False)


def topk_config(cfg: MappingConfig) -> TopkConfig:
    """The top-k engine over rows of n squared distances, the k smallest."""
    return TopkConfig(lanes=cfg.lanes, width=cfg.dist_width, capacity=cfg.capacity,
                      engine="fast", smallest=True)


def plain_key(c):
    """A coordinate's sort key: x most significant."""
    return Cat(c.z, c.y, c.x)


def unpack_key(cfg: MappingConfig, key):
    """(x, y, z) of a plain coordinate key."""
    w = cfg.coord_width
    return key[2 * w:3 * w], key[w:2 * w], key[:w]


def dist2(cfg: MappingConfig, a, b):
    """Squared distance of two coordinates (unsigned absolute differences)."""
    terms = []
    for f in ("x", "y", "z"):
        u, v = getattr(a, f), getattr(b, f)
        d = Mux(u > v, u - v, v - u)[:cfg.coord_width]
        terms.append(d * d)
    return (terms[0] + terms[1] + terms[2])[:cfg.dist_width]


def position(row, lane, lanes: int, width: int):
    """The index of the entry in lane ``lane`` of row ``row`` (P a power of two)."""
    shift = lanes.bit_length() - 1
    return (Cat(Const(lane, shift) if isinstance(lane, int) else lane[:shift], row)
            if shift else Value.cast(row))[:width]


def extent(count, lanes: int):
    """(rows, tail) of ``count`` entries in rows of P (P a power of two)."""
    shift = lanes.bit_length() - 1
    return (count + lanes - 1) >> shift, ((count - 1) & (lanes - 1)) + 1


class MappingUnit(wiring.Component):
    """Stream ports ``cmd`` (jobs), ``p`` (points), ``q`` (queries), ``o`` (results); see
    the module docstring and hdl/mapping_layouts.py."""

    def __init__(self, cfg: MappingConfig):
        require_config(self, cfg, MappingConfig)
        self.cfg = cfg
        super().__init__({"cmd": In(stream.Signature(command_layout(cfg))),
                          "p": In(stream.Signature(points_layout(cfg))),
                          "q": In(stream.Signature(coord_layout(cfg))),
                          "o": Out(stream.Signature(output_layout(cfg)))})

    def elaborate(self, platform):
        m = Module()
        unit = _Build(self, m)
        unit.resources()
        unit.registers()
        unit.reader_data()
        unit.distance_lanes()
        unit.writers()
        unit.merge_inputs()
        unit.match_detector()
        unit.scatter_path()
        unit.table_scan()
        unit.sequencer()
        return m


class _Build:
    """The unit's datapath and sequencer, built section by section into one module; the
    signals a later section uses are attributes."""

    def __init__(self, unit: MappingUnit, m: Module):
        self.unit, self.m, self.cfg = unit, m, unit.cfg
        self.lanes = lanes = unit.cfg.lanes
        self.shift = lanes.bit_length() - 1
        self.iw, self.dw, self.cw = unit.cfg.index_width, unit.cfg.dist_width, unit.cfg.coord_width
        self.rows = unit.cfg.rows
        self.entry = entry_layout(unit.cfg)
        self.ew = self.entry.size

    def resources(self):
        """Point store, running-minimum store, sort buffers, scatter table, run readers,
        row sorter, merge node, top-k engine, output queue."""
        m, cfg, lanes, rows, entry = self.m, self.cfg, self.lanes, self.rows, self.entry
        ew, dw, iw, cw = self.ew, self.dw, self.iw, self.cw
        m.submodules.points = ps = BankedStore(coord_layout(cfg), lanes, rows, 1)
        m.submodules.minimum = ms = BankedStore(unsigned(dw), lanes, rows, 1)
        bufs = [BankedStore(entry, lanes, rows, 2) for i in range(BUFFERS)]
        for i, buf in enumerate(bufs):
            m.submodules[f"sort_buffer{i}"] = buf
        m.submodules.table = tbl = BankedStore(unsigned(iw + 1), lanes, rows, 1)
        m.submodules.point_reader = rd = RunReader(lanes, rows, lanes * (3 * cw + dw))
        m.submodules.run_reader_a = ra = RunReader(lanes, rows, lanes * ew)
        m.submodules.run_reader_b = rb = RunReader(lanes, rows, lanes * ew)
        m.submodules.row_sorter = rs = RowSorter(entry, lanes)
        m.submodules.merge = mn = MergeNode(merge_config(cfg), lanes)
        m.submodules.topk = tk = TopK(topk_config(cfg))
        m.submodules.out_frames = fc = FrameCloser(output_layout(cfg), "lanes")
        wiring.connect(m, fc.o, wiring.flipped(self.unit.o))
        self.ps, self.ms, self.bufs, self.tbl = ps, ms, bufs, tbl
        self.rd, self.ra, self.rb, self.rs, self.mn, self.tk, self.fc = rd, ra, rb, rs, mn, tk, fc

    def registers(self):
        """The job's command, load progress and query registers."""
        cfg, cw = self.cfg, self.cw
        job = Signal(command_layout(cfg))  # n, k and m clamped (module docstring)
        n_sent = Signal.like(job.n)  # the points the command announces
        loaded = Signal(cfg.count_width + 1)
        presorted, last_key = Signal(), Signal(3 * cw)
        qc = Signal(coord_layout(cfg))  # the query (or FPS's latest pick)
        queries_left = Signal.like(job.queries)
        self.job, self.n_sent, self.loaded = job, n_sent, loaded
        self.presorted, self.last_key = presorted, last_key
        self.qc, self.queries_left = qc, queries_left

    def reader_data(self):
        """Each reader's data: rows of the stores it addresses (``sel_a``/``sel_b`` pick
        the sort buffer of ``ra``/``rb``; ``fetch`` borrows the point store's port)."""
        m, rows = self.m, self.rows
        ps, ms, bufs, rd, ra, rb = self.ps, self.ms, self.bufs, self.rd, self.ra, self.rb
        fetch, fetch_row = Signal(), Signal(range(rows))
        m.d.comb += [ps.r_row[0].eq(Mux(fetch, fetch_row, rd.addr)), ms.r_row[0].eq(rd.addr),
                     rd.data.eq(Cat(*ps.r_data[0], *ms.r_data[0]))]
        sel_a, sel_b = Signal(range(BUFFERS)), Signal(range(BUFFERS))
        for b in bufs:
            m.d.comb += [b.r_row[0].eq(ra.addr), b.r_row[1].eq(rb.addr)]
        m.d.comb += [ra.data.eq(pick(sel_a, [Cat(*b.r_data[0]) for b in bufs])),
                     rb.data.eq(pick(sel_b, [Cat(*b.r_data[1]) for b in bufs]))]
        self.fetch, self.fetch_row, self.sel_a, self.sel_b = fetch, fetch_row, sel_a, sel_b

    def entries(self, reader):
        """The sort entries of ``reader``'s current beat."""
        ew = self.ew
        return [data.View(self.entry, reader.o.payload.data[j * ew:(j + 1) * ew]) for j in range(self.lanes)]

    def live(self, reader):
        return [j < reader.o.payload.count for j in range(self.lanes)]

    def start_whole(self, reader, count):
        """Read the ``count`` entries of a store, as one run."""
        n_rows, n_tail = extent(count, self.lanes)
        self.m.d.comb += [reader.start.eq(1), reader.cfg["first"].eq(0),
                          reader.cfg["step"].eq(0), reader.cfg["length"].eq(n_rows),
                          reader.cfg["pairs"].eq(1), reader.cfg["rows"].eq(n_rows),
                          reader.tail.eq(n_tail)]

    def distance_lanes(self):
        """P squared distances from the query ``qc`` to the points of ``rd``'s row."""
        m, cfg, lanes, rd, qc = self.m, self.cfg, self.lanes, self.rd, self.qc
        cw, dw, iw = self.cw, self.dw, self.iw
        points = [data.View(coord_layout(cfg), rd.o.payload.data[j * 3 * cw:(j + 1) * 3 * cw])
                  for j in range(lanes)]
        base = lanes * 3 * cw  # the running minima follow the coordinates
        mind = [rd.o.payload.data[base + j * dw:base + (j + 1) * dw] for j in range(lanes)]
        d2 = [Signal(dw, name=f"d2_{j}") for j in range(lanes)]
        m.d.comb += [d2[j].eq(dist2(cfg, qc, points[j])) for j in range(lanes)]
        index = [position(rd.o.payload.row, j, lanes, iw) for j in range(lanes)]
        self.mind, self.d2, self.index = mind, d2, index

    def writers(self):
        """The sort buffers' writers: the load writer (the row sorter's rows to buffer
        ``load_buf`` in order) and the sort-pass writer (merge output to buffer ``dst``,
        duplicates dropped in a deduplicating sort's final pass)."""
        m, cfg, lanes, rows, shift = self.m, self.cfg, self.lanes, self.rows, self.shift
        mn, rs, bufs = self.mn, self.rs, self.bufs
        load_buf, load_row = Signal(range(BUFFERS)), Signal(range(rows + 1))
        src, dst = Signal(range(BUFFERS)), Signal(range(BUFFERS))
        w_row, w_off = Signal(range(rows + 1)), Signal(range(max(2, lanes)))
        sort_writing, dedupe, last_pass = Signal(), Signal(), Signal()
        prev_key, prev_have = Signal(sort_key_width(cfg)), Signal()
        out_keys = [mn.o.payload.entries[j].key[1:1 + sort_key_width(cfg)] for j in range(lanes)]
        out_live = [j < mn.o.payload.count for j in range(lanes)]
        dup = [(out_keys[j] == (out_keys[j - 1] if j else prev_key)) & (prev_have if j == 0 else 1)
               for j in range(lanes)]
        keep = Signal(lanes)
        m.d.comb += [keep[j].eq(out_live[j] & ~(dedupe & last_pass & dup[j]))
                     for j in range(lanes)]
        for i, b in enumerate(bufs):
            with m.If(rs.out_valid & (load_buf == i)):
                m.d.comb += [b.w_row.eq(load_row), b.w_off.eq(0),
                             b.w_mask.eq(Cat(*[j < rs.out_count for j in range(lanes)]))]
                m.d.comb += [b.w_items[j].eq(rs.out[j]) for j in range(lanes)]
            with m.Elif(sort_writing & mn.o.valid & (dst == i)):
                m.d.comb += [b.w_row.eq(w_row), b.w_off.eq(w_off), b.w_mask.eq(keep)]
                for j in range(lanes):
                    m.d.comb += [b.w_items[j].key.eq(out_keys[j]),
                                 b.w_items[j].value.eq(mn.o.payload.entries[j].value)]
        with m.If(rs.out_valid):
            m.d.sync += load_row.eq(load_row + 1)
        written = position(w_row, w_off, lanes, cfg.count_width + 1)
        with m.If(sort_writing & mn.o.valid):
            filled = w_off + popcount(keep)
            m.d.sync += [w_row.eq(w_row + (filled >> shift)), w_off.eq(filled & (lanes - 1)),
                         prev_key.eq(pick(mn.o.payload.count - 1, out_keys)),
                         prev_have.eq(mn.o.payload.count != 0)]
        self.load_buf, self.load_row, self.src, self.dst = load_buf, load_row, src, dst
        self.w_row, self.w_off, self.sort_writing, self.dedupe = w_row, w_off, sort_writing, dedupe
        self.last_pass, self.prev_have, self.out_live = last_pass, prev_have, out_live
        self.keep, self.written = keep, written

    def merge_key(self, e, side: int, shifted: bool):
        """The merge node's key of entry ``e``: in a kernel map (``kmap``) the side bit
        under the coordinate fields, each two bits wider and offset by one (shifted:
        c * stride + delta, no wrap at 0 or at the maximum); else the plain key."""
        cfg, delta, stride2 = self.cfg, self.delta, self.job.stride2
        fw = cfg.field_width
        fields = []
        for f, c in zip(range(3), unpack_key(cfg, e.key)):
            scaled = Mux(stride2, c << 1, c) if shifted else c
            fields.append((scaled + (delta[f] if shifted else 0) + 1)[:fw])
        wide = Cat(fields[2], fields[1], fields[0])
        return Mux(self.kmap, Cat(Const(side, 1), wide), Cat(Const(0, 1), e.key))

    def merge_inputs(self):
        """The run readers ``ra`` and ``rb`` into the merge node: sort passes, or
        kernel-map keys (outputs shifted by the offset ``delta`` against inputs)."""
        m, lanes, iw, ra, rb, mn = self.m, self.lanes, self.iw, self.ra, self.rb, self.mn
        kmap = Signal()  # the merge node compares kernel-map keys
        stride2 = self.job.stride2
        delta = [Signal(range(-1, 2), name=f"delta_{f}") for f in "xyz"]
        self.kmap, self.delta = kmap, delta
        for reader, port, side in ((ra, mn.a, 0), (rb, mn.b, 1)):
            es = self.entries(reader)
            for j in range(lanes):
                key = self.merge_key(es[j], side, side == 0)
                m.d.comb += [port.payload.entries[j].key.eq(key),
                             port.payload.entries[j].value.eq(es[j].value)]
            m.d.comb += [port.payload.count.eq(reader.o.payload.count), port.payload.last.eq(reader.o.payload.last)]
        # stride 2: an output's index is its position in the deduplicated buffer
        a_entries = self.entries(ra)
        positions = [position(ra.o.payload.row, j, lanes, iw) for j in range(lanes)]
        for j in range(lanes):
            with m.If(kmap & stride2):
                m.d.comb += mn.a.payload.entries[j].value.eq(positions[j])
        merging = Signal()
        m.d.comb += [mn.a.valid.eq(merging & ra.o.valid), mn.b.valid.eq(merging & rb.o.valid)]
        with m.If(merging):
            m.d.comb += [ra.o.ready.eq(mn.a.ready), rb.o.ready.eq(mn.b.ready)]
        self.a_entries, self.positions, self.merging = a_entries, positions, merging

    def match_detector(self):
        """Kernel-map matches on the merge output: an output entry (side 0) directly
        followed by an input entry (side 1) with the same key, across beats too."""
        m, lanes, iw, mn, kmap = self.m, self.lanes, self.iw, self.mn, self.kmap
        out_live = self.out_live
        side = [mn.o.payload.entries[j].key[0] for j in range(lanes)]
        mkey = [mn.o.payload.entries[j].key[1:] for j in range(lanes)]
        mval = [mn.o.payload.entries[j].value[:iw] for j in range(lanes)]
        c_key, c_side, c_val, c_have = (Signal.like(mkey[0]), Signal(), Signal(iw), Signal())
        match = Signal(lanes)
        for j in range(lanes):
            # the entry before lane j: lane j - 1, or the previous beat's last (carried)
            before_key, before_side, before_have = (mkey[j - 1], side[j - 1], 1) if j else \
                (c_key, c_side, c_have)
            m.d.comb += match[j].eq(out_live[j] & side[j] & before_have & ~before_side
                                    & (before_key == mkey[j]))
        out_of = [mval[j - 1] if j else c_val for j in range(lanes)]
        offset = Signal(5)
        mo_take = mn.o.valid & mn.o.ready
        with m.If(kmap & mo_take):
            m.d.sync += [c_key.eq(pick(mn.o.payload.count - 1, mkey)),
                         c_side.eq(pick(mn.o.payload.count - 1, side)),
                         c_val.eq(pick(mn.o.payload.count - 1, mval)),
                         c_have.eq((mn.o.payload.count != 0) & ~mn.o.payload.last)]
        self.mval, self.c_have, self.match, self.out_of = mval, c_have, match, out_of
        self.offset, self.mo_take = offset, mo_take

    def scatter_path(self):
        """Matches of unsorted inputs -> FIFO -> one table write a cycle, by output index."""
        m, lanes, iw, shift, tbl = self.m, self.lanes, self.iw, self.shift, self.tbl
        mval, match, out_of = self.mval, self.match, self.out_of
        scatter = Signal()
        pair = data.StructLayout({"in_idx": unsigned(iw), "out_idx": unsigned(iw)})
        sfifo = fifo.SyncFIFO(width=lanes * (1 + pair.size), depth=4)
        m.submodules.scatter_fifo = sfifo
        m.d.comb += sfifo.w_data.eq(Cat(match, *[Cat(mval[j], out_of[j]) for j in range(lanes)]))
        cur_mask = Signal(lanes)
        cur = [Signal(pair, name=f"scatter{j}") for j in range(lanes)]
        lowest = [cur_mask[j] & ~cur_mask[:j].any() if j else cur_mask[0] for j in range(lanes)]
        target = Signal(pair)
        for j in range(lanes):
            with m.If(lowest[j]):
                m.d.comb += target.eq(cur[j])
        finishing = (cur_mask & (cur_mask - 1)) == 0
        m.d.comb += sfifo.r_en.eq(finishing)
        with m.If(cur_mask != 0):
            m.d.sync += cur_mask.eq(cur_mask & (cur_mask - 1))
            m.d.comb += [tbl.w_row.eq(target.out_idx >> shift),
                         tbl.w_off.eq(target.out_idx & (lanes - 1)),
                         tbl.w_items.eq(target.in_idx + 1), tbl.w_mask.eq(1)]  # lane 0; others 0
        with m.If(finishing & sfifo.r_rdy):
            m.d.sync += cur_mask.eq(sfifo.r_data[:lanes])
            m.d.sync += [cur[j].eq(sfifo.r_data[lanes + j * pair.size:lanes + (j + 1) * pair.size])
                         for j in range(lanes)]
        scatter_idle = ~sfifo.r_rdy & (cur_mask == 0)
        self.scatter, self.sfifo, self.scatter_idle = scatter, sfifo, scatter_idle

    def table_scan(self):
        """The table's rows in output order (maps out, rows cleared behind)."""
        m, cfg, lanes, rows, tbl = self.m, self.cfg, self.lanes, self.rows, self.tbl
        m.submodules.scan = sc = RowReader(lanes, rows)
        scan_row = Signal(range(rows + 1))
        m.d.comb += tbl.r_row[0].eq(sc.row)
        with m.If(sc.issue):
            m.d.sync += scan_row.eq(sc.row)
        n_out = Signal(cfg.count_width + 1)
        out_rows, out_tail = extent(n_out, lanes)
        self.sc, self.scan_row, self.n_out, self.out_rows, self.out_tail = \
            sc, scan_row, n_out, out_rows, out_tail

    def begin_sort(self, ctx: int, source: int | Value, spare, count, sorted_already, dd):
        """Go sort ``count`` entries of buffer ``source`` (spare buffer ``spare``); ``ctx``
        says what follows: 0 the kernel map's inputs, 1 halved keys, 2 kNN."""
        m, rows = self.m, self.rows
        m.d.sync += [self.sort_ctx.eq(ctx), self.src.eq(source), self.dst.eq(spare),
                     self.n_sort.eq(count), self.run_len.eq(Mux(sorted_already, 2 * rows, 1)),
                     self.passes.eq(0), self.dedupe.eq(dd)]
        m.next = "SORT"

    def result(self, items_mask, values):
        """Result lanes (index, value, offset) into the output frame, where ``items_mask``."""
        fc = self.fc
        self.m.d.comb += fc.mask.eq(items_mask)
        for j, (idx, val, off) in enumerate(values):
            self.m.d.comb += [fc.items[j].index.eq(idx), fc.items[j].value.eq(val),
                              fc.items[j].offset.eq(off)]

    def close_frame(self, state: str, after: str):
        """A state that ends the output frame (when the queue has room)."""
        m, fc = self.m, self.fc
        with m.State(state):
            with m.If(fc.room):
                m.d.comb += fc.close.eq(1)
                m.next = after

    def emit_rows(self, state: str, values, close: str, after: str):
        """States that send the rows read by ``ra`` as result lanes, then end the frame."""
        m, ra, fc = self.m, self.ra, self.fc
        with m.State(state):
            m.d.comb += ra.o.ready.eq(fc.room)
            with m.If(ra.o.valid & fc.room):
                self.result(Cat(*self.live(ra)), values)
                with m.If(ra.o.payload.last):
                    m.next = close
        self.close_frame(close, after)

    def reset_delta(self):
        for f in range(3):
            self.m.d.sync += self.delta[f].eq(Mux(self.job.kernel3, -1, 0))

    def sequencer(self):
        """The job sequencer: one FSM over the shared resources."""
        cfg, rows, dw, lanes = self.cfg, self.rows, self.dw, self.lanes
        iw = self.iw
        self.t = Signal(cfg.count_width)  # FPS picks made
        self.hits = Signal(cfg.count_width + 1)
        self.first_hit, self.found_any = Signal(iw, name="first_hit"), Signal(name="found_any")
        best_v, best_row, best_lane, best_have = (Signal(dw), Signal(range(rows)),
                                                  Signal(range(max(2, lanes))), Signal())
        self.best_v, self.best_row, self.best_lane, self.best_have = \
            best_v, best_row, best_lane, best_have
        self.first_pass = Signal(name="first_pass")
        self.sort_ctx = Signal(2)  # what a finished sort continues with: 0 S, 1 halved, 2 kNN
        run_len, pairs, n_sort = Signal(range(2 * rows + 1)), Signal(range(rows + 1)), \
            Signal(cfg.count_width + 1)
        self.run_len, self.pairs, self.n_sort = run_len, pairs, n_sort
        self.passes = Signal(range(32))
        self.finals = Signal(range(rows + 1))
        s_buf, o_buf = Signal(range(BUFFERS)), Signal(range(BUFFERS))
        self.s_buf, self.o_buf = s_buf, o_buf
        with self.m.FSM():
            self.load_states()
            self.sort_states()
            self.kernel_map_states()
            self.query_states()
            self.fps_states()
            self.close_frame("CLOSE", "IDLE")

    def load_states(self):
        """IDLE (take a command), LOAD (points into the store; kernel maps also into the
        row sorter, noting whether they arrive sorted), LOADED (dispatch by operation)."""
        m, unit, job, lanes, shift, ps, rs = (self.m, self.unit, self.job, self.lanes,
                                              self.shift, self.ps, self.rs)
        loaded, presorted, last_key = self.loaded, self.presorted, self.last_key
        with m.State("IDLE"):
            m.d.comb += unit.cmd.ready.eq(1)
            with m.If(unit.cmd.valid):
                cmd = unit.cmd.payload
                n = Mux(cmd.n > self.cfg.capacity, self.cfg.capacity, cmd.n)
                m.d.sync += [job.eq(cmd), job.n.eq(n), job.k.eq(Mux(cmd.k > n, n, cmd.k)),
                             job.m.eq(Mux(cmd.m > n, n, cmd.m)), self.n_sent.eq(cmd.n),
                             loaded.eq(0), presorted.eq(1),
                             self.load_row.eq(0), self.load_buf.eq(0), self.scan_row.eq(0),
                             self.queries_left.eq(cmd.queries)]
                m.next = "LOAD"
        with m.State("LOAD"):
            beat = unit.p.payload.points
            n_here = Mux(self.n_sent - loaded > lanes, lanes, self.n_sent - loaded)
            n_kept = Mux(loaded >= job.n, 0, Mux(job.n - loaded > lanes, lanes, job.n - loaded))
            with m.If(loaded >= self.n_sent):
                m.next = "LOADED"
            with m.Else():
                m.d.comb += unit.p.ready.eq(1)
            with m.If(unit.p.valid & unit.p.ready):
                m.d.comb += [ps.w_row.eq(loaded >> shift), ps.w_off.eq(0),
                             ps.w_mask.eq(Cat(*[j < n_kept for j in range(lanes)]))]
                m.d.comb += [ps.w_items[j].eq(beat[j]) for j in range(lanes)]
                m.d.comb += [rs.valid.eq((job.op == Op.KERNEL_MAP) & (n_kept != 0)),
                             rs.count.eq(n_kept)]
                for j in range(lanes):
                    m.d.comb += [rs.entries[j].key.eq(plain_key(beat[j])),
                                 rs.entries[j].value.eq(loaded + j)]
                rising = [plain_key(beat[j]) > (plain_key(beat[j - 1]) if j else last_key)
                          for j in range(lanes)]
                rising[0] = rising[0] | (loaded == 0)
                ok = Cat(*[(j >= n_kept) | rising[j] for j in range(lanes)]).all()
                m.d.sync += [loaded.eq(loaded + n_here), presorted.eq(presorted & ok),
                             last_key.eq(pick(n_kept - 1, [plain_key(beat[j])
                                                           for j in range(lanes)]))]
        with m.State("LOADED"):  # the row sorter's final row lands this cycle
            with m.Switch(job.op):
                with m.Case(Op.KERNEL_MAP):
                    self.begin_sort(0, 0, 1, job.n, presorted, 0)
                with m.Case(Op.KNN, Op.BALL_QUERY):
                    m.next = "QUERY"
                with m.Case(Op.FPS):  # m = 0: an empty frame
                    with m.If(job.m == 0):
                        m.next = "CLOSE"
                    with m.Else():
                        m.next = "FPS_FIRST"

    def sort_states(self):
        """Merge sort of ``n_sort`` entries in buffer ``src`` (spare ``dst``): SORT starts
        a pass (runs of ``run_len`` rows merged pairwise) or continues by ``sort_ctx``;
        SORT_PASS runs it."""
        m, lanes, rows, job, ra, rb, mn = (self.m, self.lanes, self.rows, self.job, self.ra,
                                           self.rb, self.mn)
        src, dst, n_sort = self.src, self.dst, self.n_sort
        run_len, pairs = self.run_len, self.pairs
        dedupe, passes, finals, last_pass = self.dedupe, self.passes, self.finals, self.last_pass
        sort_rows = extent(n_sort, lanes)[0]
        with m.State("SORT"):
            more = (run_len < sort_rows) | (dedupe & (passes == 0))
            with m.If(more):
                m.next = "SORT_PASS"
                m.d.sync += [self.w_row.eq(0), self.w_off.eq(0), self.prev_have.eq(0),
                             finals.eq(0), self.sort_writing.eq(1),
                             last_pass.eq((run_len << 1) >= sort_rows)]
                n_pairs = Signal.like(pairs)
                m.d.comb += n_pairs.eq(1)
                for shift_l in range(rows.bit_length() + 1):
                    with m.If(run_len == (1 << shift_l)):
                        runs = (sort_rows + (2 << shift_l) - 1) >> (shift_l + 1)
                        m.d.comb += n_pairs.eq(Mux(sort_rows == 0, 1, runs))
                m.d.sync += pairs.eq(n_pairs)
                for reader, first in ((ra, 0), (rb, run_len)):
                    m.d.comb += [reader.start.eq(1), reader.cfg["first"].eq(first),
                                 reader.cfg["step"].eq(run_len << 1),
                                 reader.cfg["length"].eq(run_len),
                                 reader.cfg["pairs"].eq(n_pairs),
                                 reader.cfg["rows"].eq(sort_rows),
                                 reader.tail.eq(extent(n_sort, lanes)[1])]
                m.d.sync += [self.sel_a.eq(src), self.sel_b.eq(src)]
            with m.Else():
                with m.Switch(self.sort_ctx):
                    with m.Case(0):
                        m.d.sync += self.s_buf.eq(src)
                        with m.If(job.stride2):
                            m.next = "HALVE"
                        with m.Else():
                            m.d.sync += [self.o_buf.eq(src), self.n_out.eq(job.n),
                                         self.scatter.eq(~self.presorted)]
                            m.next = "KMAP_CLEAR"
                    with m.Case(1):
                        m.d.sync += [self.o_buf.eq(src), self.n_out.eq(n_sort),
                                     self.scatter.eq(0)]
                        m.next = "COORDS"
                    with m.Case(2):
                        m.next = "KNN_EMIT"
        with m.State("SORT_PASS"):
            m.d.comb += [self.merging.eq(1), mn.o.ready.eq(1)]
            done = self.mo_take & mn.o.payload.last & (finals + 1 == pairs)
            with m.If(self.mo_take & mn.o.payload.last):
                m.d.sync += finals.eq(finals + 1)
            with m.If(done):
                m.d.sync += [src.eq(dst), dst.eq(src), run_len.eq(run_len << 1),
                             passes.eq(passes + 1), self.sort_writing.eq(0)]
                with m.If(dedupe & last_pass):
                    m.d.sync += n_sort.eq(self.written + popcount(self.keep))
                m.next = "SORT"

    def kernel_map_states(self):
        """Stride 2: HALVE the sorted keys, sort them deduplicated, send them (COORDS).
        Then per offset: clear the scatter table (KMAP_CLEAR), merge outputs against
        inputs (KMAP_MERGE), scan the table when scattering (KMAP_SCAN), next offset."""
        m, cfg, lanes, iw, job = self.m, self.cfg, self.lanes, self.iw, self.job
        ra, rb, rs, mn, fc = self.ra, self.rb, self.rs, self.mn, self.fc
        tbl, sc = self.tbl, self.sc
        scatter, scan_row, offset, delta = self.scatter, self.scan_row, self.offset, self.delta
        s_buf, o_buf, a_entries, mo_take = self.s_buf, self.o_buf, self.a_entries, self.mo_take
        k3 = job.kernel3
        kernel_volume = Mux(k3, 27, 8)
        with m.State("HALVE"):  # sorted S -> halved keys -> buffer 2
            self.start_whole(ra, job.n)
            m.d.sync += self.sel_a.eq(s_buf)
            m.d.sync += [self.load_buf.eq(2), self.load_row.eq(0)]
            m.next = "HALVE_RUN"
        with m.State("HALVE_RUN"):
            m.d.comb += [ra.o.ready.eq(1), rs.valid.eq(ra.o.valid), rs.count.eq(ra.o.payload.count)]
            for j in range(lanes):
                x, y, z = unpack_key(cfg, a_entries[j].key)
                m.d.comb += rs.entries[j].key.eq(Cat(z[1:], Const(0, 1), y[1:], Const(0, 1),
                                                     x[1:], Const(0, 1)))
            with m.If(ra.o.valid & ra.o.payload.last):
                m.next = "HALVE_DONE"
        with m.State("HALVE_DONE"):
            self.begin_sort(1, 2, s_buf ^ 1, job.n, 0, 1)
        with m.State("COORDS"):
            self.start_whole(ra, self.n_out)
            m.d.sync += self.sel_a.eq(o_buf)
            m.next = "COORDS_RUN"
        self.emit_rows("COORDS_RUN", [(self.positions[j], a_entries[j].key, 0)
                                      for j in range(lanes)], "COORDS_CLOSE", "KMAP_CLEAR")
        with m.State("KMAP_CLEAR"):  # scatter table rows to zero (any reset's leftovers)
            m.d.sync += offset.eq(0)
            self.reset_delta()
            with m.If(scatter):
                m.d.comb += [tbl.w_row.eq(scan_row), tbl.w_off.eq(0), tbl.w_mask.eq(-1)]
                m.d.sync += scan_row.eq(scan_row + 1)
            with m.If(~scatter | (scan_row + 1 >= self.out_rows)):
                m.next = "KMAP_START"
        with m.State("KMAP_START"):
            self.start_whole(ra, self.n_out)
            self.start_whole(rb, job.n)
            m.d.sync += [self.sel_a.eq(o_buf), self.sel_b.eq(s_buf)]
            m.d.sync += [self.kmap.eq(1), self.c_have.eq(0)]
            m.next = "KMAP_MERGE"
        with m.State("KMAP_MERGE"):
            m.d.comb += self.merging.eq(1)
            with m.If(scatter):
                m.d.comb += [mn.o.ready.eq(self.sfifo.w_rdy),
                             self.sfifo.w_en.eq(mo_take & (self.match != 0))]
            with m.Else():
                m.d.comb += mn.o.ready.eq(fc.room)
                with m.If(mo_take):
                    self.result(self.match, [(self.mval[j], self.out_of[j], offset)
                                             for j in range(lanes)])
            with m.If(mo_take & mn.o.payload.last):
                m.next = "KMAP_DRAIN"
        with m.State("KMAP_DRAIN"):
            m.d.comb += sc.clear.eq(1)
            with m.If(~scatter):
                m.next = "KMAP_NEXT"
            with m.Elif(self.scatter_idle):
                m.next = "KMAP_SCAN"
        with m.State("KMAP_SCAN"):
            m.d.comb += [sc.rows.eq(self.out_rows), sc.tail.eq(self.out_tail), sc.go.eq(fc.room)]
            found = Cat(*[sc.live[j] & (tbl.r_data[0][j] != 0) for j in range(lanes)])
            with m.If(sc.inflight):
                self.result(found, [(tbl.r_data[0][j] - 1, position(scan_row, j, lanes, iw),
                                     offset) for j in range(lanes)])
                m.d.comb += [tbl.w_row.eq(scan_row), tbl.w_off.eq(0), tbl.w_mask.eq(-1)]
            with m.If(sc.finished):
                m.next = "KMAP_NEXT"
        with m.State("KMAP_NEXT"):
            m.d.sync += offset.eq(offset + 1)
            self.next_delta(k3)
            with m.If(offset + 1 == kernel_volume):
                m.d.sync += self.kmap.eq(0)
                m.next = "CLOSE"
            with m.Else():
                m.next = "KMAP_START"

    def next_delta(self, k3):
        """The next kernel offset in torchsparse's order: x fastest for k = 3, z fastest
        for k = 2."""
        m, delta = self.m, self.delta
        with m.If(k3):
            with m.If(delta[0] != 1):
                m.d.sync += delta[0].eq(delta[0] + 1)
            with m.Elif(delta[1] != 1):
                m.d.sync += [delta[0].eq(-1), delta[1].eq(delta[1] + 1)]
            with m.Else():
                m.d.sync += [delta[0].eq(-1), delta[1].eq(-1), delta[2].eq(delta[2] + 1)]
        with m.Else():
            with m.If(delta[2] != 1):
                m.d.sync += delta[2].eq(1)
            with m.Elif(delta[1] != 1):
                m.d.sync += [delta[2].eq(0), delta[1].eq(1)]
            with m.Else():
                m.d.sync += [delta[2].eq(0), delta[1].eq(0), delta[0].eq(1)]

    def query_states(self):
        """kNN and ball query, one query at a time: QUERY takes it and starts a pass over
        the points (``rd``); ball query sends hits until the k-th, then pads; kNN feeds
        the top-k engine, sorts its k results by (d2, index) and sends them."""
        m, lanes, iw, dw, job, unit = self.m, self.lanes, self.iw, self.dw, self.job, self.unit
        rd, rs, tk, fc, d2, index = self.rd, self.rs, self.tk, self.fc, self.d2, self.index
        hits, found_any, first_hit = self.hits, self.found_any, self.first_hit
        queries_left = self.queries_left
        with m.State("QUERY"):
            with m.If(queries_left == 0):
                m.next = "IDLE"
            with m.Else():
                m.d.comb += unit.q.ready.eq(1)
                with m.If(unit.q.valid):
                    m.d.sync += [self.qc.eq(unit.q.payload), queries_left.eq(queries_left - 1),
                                 hits.eq(0), found_any.eq(0), self.load_row.eq(0),
                                 self.load_buf.eq(0)]
                    with m.If(job.k == 0):  # an empty frame
                        m.next = "KNN_CLOSE"
                    with m.Else():
                        self.start_whole(rd, job.n)
                        m.next = "QUERY_GO"
        with m.State("QUERY_GO"):
            with m.If(job.op == Op.KNN):
                m.next = "KNN_PASS"
            with m.Else():
                m.next = "BALL_PASS"
        with m.State("BALL_PASS"):
            hit = Cat(*[lv & (d < job.radius2) for lv, d in zip(self.live(rd), d2)])
            before = prefix_counts(m, hit, "ball_before")
            take = Cat(*[hit[j] & (hits + before[j] < job.k) for j in range(lanes)])
            m.d.comb += rd.o.ready.eq(fc.room)
            with m.If(rd.o.valid & fc.room):
                self.result(take, [(index[j], 0, 0) for j in range(lanes)])
                got = hits + popcount(take)
                m.d.sync += hits.eq(got)
                with m.If(~found_any & (take != 0)):
                    m.d.sync += found_any.eq(1)
                    for j in reversed(range(lanes)):
                        with m.If(take[j]):
                            m.d.sync += first_hit.eq(index[j])
                with m.If(got >= job.k):
                    m.d.comb += rd.abort.eq(1)
                    m.next = "BALL_DRAIN"
                with m.Elif(rd.o.payload.last):
                    m.next = "BALL_PAD"
        with m.State("BALL_DRAIN"):
            m.d.comb += rd.o.ready.eq(1)
            with m.If(~rd.busy):
                m.next = "BALL_PAD"
        with m.State("BALL_PAD"):
            fill = Mux(found_any, first_hit, 0)
            with m.If(hits >= job.k):
                with m.If(fc.room):
                    m.d.comb += fc.close.eq(1)
                    m.next = "QUERY"
            with m.Elif(fc.room):
                more = Cat(*[hits + j < job.k for j in range(lanes)])
                self.result(more, [(fill, 0, 0) for _ in range(lanes)])
                m.d.sync += hits.eq(hits + popcount(more))
        with m.State("KNN_PASS"):
            m.d.comb += [tk.i.valid.eq(rd.o.valid), rd.o.ready.eq(tk.i.ready),
                         tk.i.payload.count.eq(rd.o.payload.count), tk.i.payload.last.eq(rd.o.payload.last),
                         tk.i.payload.k.eq(job.k)]
            m.d.comb += [tk.i.payload.scores[j].eq(d2[j]) for j in range(lanes)]
            m.d.comb += [tk.o.ready.eq(1), rs.valid.eq(tk.o.valid),
                         rs.count.eq(tk.o.payload.count)]
            for j in range(lanes):
                pr = tk.o.payload.pairs[j]
                m.d.comb += [rs.entries[j].key.eq(Cat(pr.index, pr.value)),
                             rs.entries[j].value.eq(pr.index)]
            with m.If(tk.o.valid & tk.o.payload.last):
                m.next = "KNN_SORT"
        with m.State("KNN_SORT"):
            self.begin_sort(2, 0, 1, job.k, 0, 0)
        with m.State("KNN_EMIT"):
            self.start_whole(self.ra, job.k)
            m.d.sync += self.sel_a.eq(self.src)
            m.next = "KNN_EMIT_RUN"
        a_entries = self.a_entries
        self.emit_rows("KNN_EMIT_RUN", [(a_entries[j].value, a_entries[j].key[iw:iw + dw], 0)
                                        for j in range(lanes)], "KNN_CLOSE", "QUERY")

    def fps_states(self):
        """Farthest point sampling: the first pick is point 0; per further pick, fetch
        the latest pick, then one pass updates each point's running minimum distance
        (store ``ms``) and finds their argmax (ties to the lowest index)."""
        m, lanes, iw, job, rd, ps, ms, fc = (self.m, self.lanes, self.iw, self.job, self.rd,
                                             self.ps, self.ms, self.fc)
        t, best_v, best_row, best_lane, best_have = (self.t, self.best_v, self.best_row,
                                                     self.best_lane, self.best_have)
        d2, mind, first_pass = self.d2, self.mind, self.first_pass
        with m.State("FPS_FIRST"):
            with m.If(fc.room):
                self.result(1, [(0, 0, 0)] * lanes)
                m.d.sync += [t.eq(1), best_row.eq(0), best_lane.eq(0)]
                m.next = "FPS_AFTER_PICK"
        with m.State("FPS_AFTER_PICK"):
            with m.If(t == job.m):
                m.next = "CLOSE"
            with m.Else():
                m.d.comb += [self.fetch.eq(1), self.fetch_row.eq(best_row)]
                m.next = "FPS_FETCH"
        with m.State("FPS_FETCH"):  # the pick's row arrives
            m.d.sync += [self.qc.eq(pick(best_lane, ps.r_data[0])), best_have.eq(0),
                         first_pass.eq(t == 1)]
            self.start_whole(rd, job.n)
            m.next = "FPS_PASS"
        with m.State("FPS_PASS"):
            m.d.comb += rd.o.ready.eq(1)
            new = [Mux(first_pass | (d2[j] < mind[j]), d2[j], mind[j]) for j in range(lanes)]
            v, lane, anyv = lane_argmax(m, new, self.live(rd))
            with m.If(rd.o.valid):
                m.d.comb += [ms.w_row.eq(rd.o.payload.row), ms.w_off.eq(0),
                             ms.w_mask.eq(Cat(*self.live(rd)))]
                m.d.comb += [ms.w_items[j].eq(new[j]) for j in range(lanes)]
                with m.If(anyv & (~best_have | (v > best_v))):
                    m.d.sync += [best_v.eq(v), best_row.eq(rd.o.payload.row), best_lane.eq(lane),
                                 best_have.eq(1)]
                with m.If(rd.o.payload.last):
                    m.next = "FPS_PICK"
        with m.State("FPS_PICK"):
            with m.If(fc.room):
                self.result(1, [(position(best_row, best_lane, lanes, iw), 0, 0)] * lanes)
                m.d.sync += t.eq(t + 1)
                m.next = "FPS_AFTER_PICK"
