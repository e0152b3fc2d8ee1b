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

Each is a component (hdl/mapping_parts.py, hdl/lanes.py, the merger's and top-k's), as
are the datapath sections between them: the merge node's feeds, the sort buffers'
writer, the kernel map's match detector, offsets and map table, ball query's hits and
FPS's lane. :meth:`MappingUnit.elaborate` wires them (streams with ``wiring.connect``);
one FSM (:class:`_Sequencer`) drives their control ports.

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
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.mapping import MappingConfig
from accelgen.params.topk import TopkConfig

from .checks import require_config
from .lanes import BankedStore, pick
from .mapping_layouts import (Op, command_layout, coord_layout, entry_layout, output_layout,
                              points_layout)
from .mapping_parts import (BallHits, BufferWriter, DistanceLanes, FpsLane, FrameCloser,
                            KernelOffsets, MapTable, MatchDetector, MergeFeed, RowSorter,
                            RunReader, entry_row, merge_config, point_row, position, unpack_key)
from .merger import MergeNode
from .topk import TopK

#: Sort buffers: S (the sorted inputs), and two more for the stride-2 outputs and kNN.
BUFFERS = 3


def topk_config(cfg: MappingConfig) -> TopkConfig:
    """The top-k engine over rows of n squared distances, the k smallest. The unit sends
    it one row at a time, so two survivor regions (half its block RAM) lose no cycle."""
    return TopkConfig(lanes=cfg.lanes, width=cfg.dist_width, capacity=cfg.capacity,
                      engine="fast", smallest=True, regions=2)


def plain_key(c):
    """A coordinate's sort key: x most significant."""
    return Cat(c.z, c.y, c.x)


def extent(count, lanes: int):
    """(rows, tail) of ``count`` entries in rows of P (P a power of two)."""
    shift = lanes.bit_length() - 1
    return (count + lanes - 1) >> shift, ((count - 1) & (lanes - 1)) + 1


def live(port, lanes: int):
    """The lanes of a stream's current beat that hold entries."""
    return [j < port.payload.count for j in range(lanes)]


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
        """The parts and the datapath between them; :class:`_Sequencer` drives the rest."""
        m = Module()
        cfg, lanes, rows = self.cfg, self.cfg.lanes, self.cfg.rows
        m.submodules.points = ps = BankedStore(coord_layout(cfg), lanes, rows, 1)
        m.submodules.minimum = ms = BankedStore(unsigned(cfg.dist_width), lanes, rows, 1)
        bufs = [BankedStore(entry_layout(cfg), lanes, rows, 2) for _ in range(BUFFERS)]
        for i, buf in enumerate(bufs):
            m.submodules[f"sort_buffer{i}"] = buf
        m.submodules.point_reader = rd = RunReader(lanes, rows, point_row(cfg))
        m.submodules.distances = dl = DistanceLanes(cfg)
        m.submodules.fps = fps = FpsLane(cfg)
        m.submodules.ball = bh = BallHits(cfg)
        m.submodules.run_reader_a = ra = RunReader(lanes, rows, entry_row(cfg))
        m.submodules.run_reader_b = rb = RunReader(lanes, rows, entry_row(cfg))
        m.submodules.feed_a = fa = MergeFeed(cfg, 0)
        m.submodules.feed_b = fb = MergeFeed(cfg, 1)
        m.submodules.merge = mn = MergeNode(merge_config(cfg), lanes)
        m.submodules.row_sorter = rs = RowSorter(entry_layout(cfg), lanes)
        m.submodules.writer = wr = BufferWriter(cfg, BUFFERS)
        m.submodules.match_detector = md = MatchDetector(cfg)
        m.submodules.map_table = mt = MapTable(cfg)
        m.submodules.offsets = ko = KernelOffsets()
        m.submodules.topk = tk = TopK(topk_config(cfg))
        m.submodules.out_frames = fc = FrameCloser(output_layout(cfg), "lanes")
        wiring.connect(m, rd.o, dl.i)
        wiring.connect(m, ra.o, fa.i)
        wiring.connect(m, rb.o, fb.i)
        wiring.connect(m, fa.o, mn.a)
        wiring.connect(m, fb.o, mn.b)
        wiring.connect(m, fc.o, wiring.flipped(self.o))
        # the point reader's rows: points and running minima (the sequencer borrows the
        # point store's port to fetch FPS's pick)
        m.d.comb += [ps.r_row[0].eq(rd.addr), ms.r_row[0].eq(rd.addr),
                     rd.data.points.eq(ps.r_data[0]), rd.data.minima.eq(ms.r_data[0])]
        # the distance rows into ball query's hits and FPS's lane; FPS's new running
        # minima back to their store
        m.d.comb += [bh.beat.eq(dl.o.payload), fps.beat.eq(dl.o.payload),
                     ms.w_row.eq(dl.o.payload.row),
                     ms.w_items.eq(fps.minima),
                     ms.w_mask.eq(Mux(fps.valid, Cat(*live(dl.o, lanes)), 0))]
        # the sort buffers: written by the row sorter's rows or the merge output, read by
        # the run readers
        m.d.comb += [wr.rows.eq(rs.out), wr.rows_count.eq(rs.out_count),
                     wr.rows_valid.eq(rs.out_valid), wr.merged.eq(mn.o.payload)]
        for i, buf in enumerate(bufs):
            m.d.comb += [buf.w_row.eq(wr.w_row), buf.w_off.eq(wr.w_off),
                         buf.w_items.eq(wr.w_items),
                         buf.w_mask.eq(Mux(wr.w_buf == i, wr.w_mask, 0)),
                         buf.r_row[0].eq(ra.addr), buf.r_row[1].eq(rb.addr)]
        # kernel maps: the offset into the outputs' keys, matches into the table
        m.d.comb += [fa.delta.eq(ko.delta), md.beat.eq(mn.o.payload),
                     mt.i.payload.eq(md.matches)]
        _Sequencer(self, m, ps=ps, bufs=bufs, rd=rd, dl=dl, fps=fps, bh=bh, ra=ra, rb=rb,
                   fa=fa, fb=fb, mn=mn, rs=rs, wr=wr, md=md, mt=mt, ko=ko, tk=tk,
                   fc=fc).build()
        return m


class _Sequencer:
    """The job sequencer: one FSM over the unit's parts (named as in
    :meth:`MappingUnit.elaborate`) and the job's registers."""

    def __init__(self, unit: MappingUnit, m: Module, **parts):
        self.unit, self.m, self.cfg = unit, m, unit.cfg
        self.lanes, rows, cfg = unit.cfg.lanes, unit.cfg.rows, unit.cfg
        self.__dict__.update(parts)
        self.job = Signal(command_layout(cfg))  # n, k and m clamped (module docstring)
        self.n_sent = Signal.like(self.job.n)  # the points the command announces
        self.loaded = Signal(cfg.count_width + 1)
        self.presorted, self.last_key = Signal(), Signal(3 * cfg.coord_width)
        self.qc = Signal(coord_layout(cfg))  # the query (or FPS's latest pick)
        self.queries_left = Signal.like(self.job.queries)
        self.sel_a, self.sel_b = Signal(range(BUFFERS)), Signal(range(BUFFERS))  # ra's, rb's
        # the sort: ``n_sort`` entries of buffer ``src`` (spare ``dst``) in runs of
        # ``run_len`` rows, ``pairs`` of them merged a pass (``finals`` so far); what
        # follows: ``sort_ctx`` 0 the kernel map's inputs, 1 halved keys, 2 kNN
        self.src, self.dst = Signal(range(BUFFERS)), Signal(range(BUFFERS))
        self.n_sort = Signal(cfg.count_width + 1)
        self.run_len, self.pairs = Signal(range(2 * rows + 1)), Signal(range(rows + 1))
        self.passes, self.finals = Signal(range(32)), Signal(range(rows + 1))
        self.dedupe, self.last_pass, self.sort_ctx = Signal(), Signal(), Signal(2)
        # kernel maps: the sorted inputs (``s_buf``), the outputs (``o_buf``, ``n_out``)
        self.s_buf, self.o_buf = Signal(range(BUFFERS)), Signal(range(BUFFERS))
        self.n_out = Signal(cfg.count_width + 1)
        self.kmap, self.scatter = Signal(), Signal()  # kernel-map keys; maps via the table
        self.t = Signal(cfg.count_width)  # FPS picks made
        self.mo_take = self.mn.o.valid & self.mn.o.ready

    def build(self):
        """The parts' inputs that follow the job's registers, and the FSM."""
        m, bufs = self.m, self.bufs
        m.d.comb += [self.ra.data.eq(pick(self.sel_a, [b.r_data[0] for b in bufs])),
                     self.rb.data.eq(pick(self.sel_b, [b.r_data[1] for b in bufs])),
                     self.dl.query.eq(self.qc)]
        m.d.comb += [self.bh.radius2.eq(self.job.radius2), self.bh.k.eq(self.job.k)]
        m.d.comb += [self.fa.kmap.eq(self.kmap), self.fb.kmap.eq(self.kmap),
                     self.fa.stride2.eq(self.job.stride2), self.ko.kernel3.eq(self.job.kernel3)]
        out_rows, out_tail = extent(self.n_out, self.lanes)
        m.d.comb += [self.mt.rows.eq(out_rows), self.mt.tail.eq(out_tail)]
        with m.FSM():
            self.load_states()
            self.sort_states()
            self.kernel_map_states()
            self.query_states()
            self.fps_states()
            self.close_frame("CLOSE", "IDLE")

    def start_whole(self, reader, count):
        """Read the ``count`` entries of a store, as one run."""
        n_rows, n_tail = extent(count, self.lanes)
        self.m.d.comb += [reader.start.eq(1), reader.cfg["first"].eq(0),
                          reader.cfg["step"].eq(0), reader.cfg["length"].eq(n_rows),
                          reader.cfg["pairs"].eq(1), reader.cfg["rows"].eq(n_rows),
                          reader.tail.eq(n_tail)]

    def merge_runs(self):
        """The run readers feed the merge node this cycle."""
        self.m.d.comb += [self.fa.merging.eq(1), self.fb.merging.eq(1)]

    def begin_sort(self, ctx: int, source: int | Value, spare, count, sorted_already, dd):
        """Go sort ``count`` entries of buffer ``source`` (spare buffer ``spare``); ``ctx``
        says what follows: 0 the kernel map's inputs, 1 halved keys, 2 kNN."""
        m, rows = self.m, self.cfg.rows
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
        m, rows, fc = self.m, self.fa.rows, self.fc
        with m.State(state):
            m.d.comb += rows.ready.eq(fc.room)
            with m.If(rows.valid & fc.room):
                self.result(Cat(*live(rows, self.lanes)), values)
                with m.If(rows.payload.last):
                    m.next = close
        self.close_frame(close, after)

    def load_states(self):
        """IDLE (take a command), LOAD (points into the store; kernel maps also into the
        row sorter, noting whether they arrive sorted), LOADED (dispatch by operation)."""
        m, unit, job, lanes, ps, rs = self.m, self.unit, self.job, self.lanes, self.ps, self.rs
        loaded, presorted, last_key = self.loaded, self.presorted, self.last_key
        with m.State("IDLE"):
            m.d.comb += unit.cmd.ready.eq(1)
            with m.If(unit.cmd.valid):
                cmd = unit.cmd.payload
                n = Mux(cmd.n > self.cfg.capacity, self.cfg.capacity, cmd.n)
                m.d.sync += [job.eq(cmd), job.n.eq(n), job.k.eq(Mux(cmd.k > n, n, cmd.k)),
                             job.m.eq(Mux(cmd.m > n, n, cmd.m)), self.n_sent.eq(cmd.n),
                             loaded.eq(0), presorted.eq(1), self.queries_left.eq(cmd.queries)]
                m.d.comb += [self.wr.load_start.eq(1), self.mt.restart.eq(1)]
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
                m.d.comb += [ps.w_row.eq(loaded >> (lanes.bit_length() - 1)), ps.w_off.eq(0),
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
        SORT_PASS runs it, the writer putting the merge output into ``dst``."""
        m, lanes, rows, job, mn, wr = (self.m, self.lanes, self.cfg.rows, self.job, self.mn,
                                       self.wr)
        src, dst, n_sort = self.src, self.dst, self.n_sort
        run_len, pairs = self.run_len, self.pairs
        dedupe, passes, finals, last_pass = self.dedupe, self.passes, self.finals, self.last_pass
        sort_rows, sort_tail = extent(n_sort, lanes)
        with m.State("SORT"):
            more = (run_len < sort_rows) | (dedupe & (passes == 0))
            with m.If(more):
                m.next = "SORT_PASS"
                m.d.comb += wr.pass_start.eq(1)
                m.d.sync += [finals.eq(0), last_pass.eq((run_len << 1) >= sort_rows)]
                n_pairs = Signal.like(pairs)
                m.d.comb += n_pairs.eq(1)
                for shift_l in range(rows.bit_length() + 1):
                    with m.If(run_len == (1 << shift_l)):
                        runs = (sort_rows + (2 << shift_l) - 1) >> (shift_l + 1)
                        m.d.comb += n_pairs.eq(Mux(sort_rows == 0, 1, runs))
                m.d.sync += pairs.eq(n_pairs)
                for reader, first in ((self.ra, 0), (self.rb, run_len)):
                    m.d.comb += [reader.start.eq(1), reader.cfg["first"].eq(first),
                                 reader.cfg["step"].eq(run_len << 1),
                                 reader.cfg["length"].eq(run_len),
                                 reader.cfg["pairs"].eq(n_pairs),
                                 reader.cfg["rows"].eq(sort_rows), reader.tail.eq(sort_tail)]
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
            self.merge_runs()
            m.d.comb += [mn.o.ready.eq(1), wr.take.eq(mn.o.valid), wr.pass_buf.eq(dst),
                         wr.dedupe.eq(dedupe & last_pass)]
            done = self.mo_take & mn.o.payload.last & (finals + 1 == pairs)
            with m.If(self.mo_take & mn.o.payload.last):
                m.d.sync += finals.eq(finals + 1)
            with m.If(done):
                m.d.sync += [src.eq(dst), dst.eq(src), run_len.eq(run_len << 1),
                             passes.eq(passes + 1)]
                with m.If(dedupe & last_pass):
                    m.d.sync += n_sort.eq(wr.total)
                m.next = "SORT"

    def kernel_map_states(self):
        """Stride 2: HALVE the sorted keys, sort them deduplicated, send them (COORDS).
        Then per offset: wipe the map table (KMAP_CLEAR), merge outputs against inputs
        (KMAP_MERGE), scan the table when scattering (KMAP_SCAN), next offset."""
        m, cfg, lanes, iw, job = self.m, self.cfg, self.lanes, self.cfg.index_width, self.job
        fa, rs, mn, fc, md, mt, ko = self.fa, self.rs, self.mn, self.fc, self.md, self.mt, self.ko
        scatter, s_buf, o_buf, mo_take = self.scatter, self.s_buf, self.o_buf, self.mo_take
        rows = fa.rows.payload
        with m.State("HALVE"):  # sorted S -> halved keys -> buffer 2
            self.start_whole(self.ra, job.n)
            m.d.sync += self.sel_a.eq(s_buf)
            m.d.comb += [self.wr.load_start.eq(1), self.wr.load_buf.eq(2)]
            m.next = "HALVE_RUN"
        with m.State("HALVE_RUN"):
            m.d.comb += [fa.rows.ready.eq(1), rs.valid.eq(fa.rows.valid), rs.count.eq(rows.count)]
            for j in range(lanes):
                x, y, z = unpack_key(cfg, rows.data[j].key)
                m.d.comb += rs.entries[j].key.eq(Cat(z[1:], Const(0, 1), y[1:], Const(0, 1),
                                                     x[1:], Const(0, 1)))
            with m.If(fa.rows.valid & rows.last):
                m.next = "HALVE_DONE"
        with m.State("HALVE_DONE"):
            self.begin_sort(1, 2, s_buf ^ 1, job.n, 0, 1)
        with m.State("COORDS"):
            self.start_whole(self.ra, self.n_out)
            m.d.sync += self.sel_a.eq(o_buf)
            m.next = "COORDS_RUN"
        self.emit_rows("COORDS_RUN", [(position(rows.row, j, lanes, iw), rows.data[j].key, 0)
                                      for j in range(lanes)], "COORDS_CLOSE", "KMAP_CLEAR")
        with m.State("KMAP_CLEAR"):  # the table's rows to zero (any reset's leftovers)
            m.d.comb += [ko.restart.eq(1), mt.wipe.eq(scatter)]
            with m.If(~scatter | mt.wiping_last):
                m.next = "KMAP_START"
        with m.State("KMAP_START"):
            self.start_whole(self.ra, self.n_out)
            self.start_whole(self.rb, job.n)
            m.d.sync += [self.sel_a.eq(o_buf), self.sel_b.eq(s_buf), self.kmap.eq(1)]
            m.next = "KMAP_MERGE"
        with m.State("KMAP_MERGE"):
            self.merge_runs()
            m.d.comb += md.take.eq(mo_take)
            with m.If(scatter):
                m.d.comb += [mn.o.ready.eq(mt.i.ready),
                             mt.i.valid.eq(mn.o.valid & (md.matches.mask != 0))]
            with m.Else():
                m.d.comb += mn.o.ready.eq(fc.room)
                with m.If(mo_take):
                    self.result(md.matches.mask, [(p.in_idx, p.out_idx, ko.offset)
                                                  for p in md.matches.pairs])
            with m.If(mo_take & mn.o.payload.last):
                m.next = "KMAP_DRAIN"
        with m.State("KMAP_DRAIN"):
            m.d.comb += mt.restart.eq(1)
            with m.If(~scatter):
                m.next = "KMAP_NEXT"
            with m.Elif(mt.idle):
                m.next = "KMAP_SCAN"
        with m.State("KMAP_SCAN"):
            m.d.comb += mt.scan.eq(fc.room)
            self.result(mt.found, [(p.in_idx, p.out_idx, ko.offset) for p in mt.maps])
            with m.If(mt.finished):
                m.next = "KMAP_NEXT"
        with m.State("KMAP_NEXT"):
            m.d.comb += ko.step.eq(1)
            with m.If(ko.final):
                m.d.sync += self.kmap.eq(0)
                m.next = "CLOSE"
            with m.Else():
                m.next = "KMAP_START"

    def query_states(self):
        """kNN and ball query, one query at a time: QUERY takes it and starts a pass over
        the points (``rd``, the distance lanes ``dl``); ball query sends hits until the
        k-th, then pads; kNN feeds the top-k engine, sorts its k results by (d2, index)
        and sends them."""
        m, lanes, job, unit = self.m, self.lanes, self.job, self.unit
        iw, dw = self.cfg.index_width, self.cfg.dist_width
        rd, dl, bh, rs, tk, fc = self.rd, self.dl, self.bh, self.rs, self.tk, self.fc
        d2 = dl.o.payload.data.d2
        index = [position(dl.o.payload.row, j, lanes, iw) for j in range(lanes)]
        queries_left = self.queries_left
        with m.State("QUERY"):
            with m.If(queries_left == 0):
                m.next = "IDLE"
            with m.Else():
                m.d.comb += unit.q.ready.eq(1)
                with m.If(unit.q.valid):
                    m.d.sync += [self.qc.eq(unit.q.payload), queries_left.eq(queries_left - 1)]
                    m.d.comb += [self.wr.load_start.eq(1), bh.restart.eq(1)]
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
            m.d.comb += dl.o.ready.eq(fc.room)
            with m.If(dl.o.valid & fc.room):
                self.result(bh.take, [(index[j], 0, 0) for j in range(lanes)])
                m.d.comb += bh.valid.eq(1)
                with m.If(bh.reached):
                    m.d.comb += rd.abort.eq(1)
                    m.next = "BALL_DRAIN"
                with m.Elif(dl.o.payload.last):
                    m.next = "BALL_PAD"
        with m.State("BALL_DRAIN"):
            m.d.comb += dl.o.ready.eq(1)
            with m.If(~rd.busy):
                m.next = "BALL_PAD"
        with m.State("BALL_PAD"):
            with m.If(bh.full):
                with m.If(fc.room):
                    m.d.comb += fc.close.eq(1)
                    m.next = "QUERY"
            with m.Elif(fc.room):
                self.result(bh.more, [(bh.fill, 0, 0) for _ in range(lanes)])
                m.d.comb += bh.pad.eq(1)
        with m.State("KNN_PASS"):
            m.d.comb += [tk.i.valid.eq(dl.o.valid), dl.o.ready.eq(tk.i.ready),
                         tk.i.payload.count.eq(dl.o.payload.count),
                         tk.i.payload.last.eq(dl.o.payload.last), tk.i.payload.k.eq(job.k)]
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
        entries = self.fa.rows.payload.data
        self.emit_rows("KNN_EMIT_RUN", [(entries[j].value, entries[j].key[iw:iw + dw], 0)
                                        for j in range(lanes)], "KNN_CLOSE", "QUERY")

    def fps_states(self):
        """Farthest point sampling: the first pick is point 0; per further pick, fetch
        the latest pick, then one pass of the distance lanes through FPS's lane (``fps``:
        each point's running minimum distance and their argmax)."""
        m, lanes, iw, job, ps, dl, fps = (self.m, self.lanes, self.cfg.index_width, self.job,
                                          self.ps, self.dl, self.fps)
        t, fc = self.t, self.fc
        with m.State("FPS_FIRST"):
            with m.If(fc.room):
                self.result(1, [(0, 0, 0)] * lanes)
                m.d.sync += t.eq(1)
                m.d.comb += fps.seed.eq(1)
                m.next = "FPS_AFTER_PICK"
        with m.State("FPS_AFTER_PICK"):
            with m.If(t == job.m):
                m.next = "CLOSE"
            with m.Else():
                m.d.comb += ps.r_row[0].eq(fps.row)
                m.next = "FPS_FETCH"
        with m.State("FPS_FETCH"):  # the pick's row arrives
            m.d.sync += self.qc.eq(pick(fps.lane, ps.r_data[0]))
            m.d.comb += [fps.start.eq(1), fps.first.eq(t == 1)]
            self.start_whole(self.rd, job.n)
            m.next = "FPS_PASS"
        with m.State("FPS_PASS"):
            m.d.comb += [dl.o.ready.eq(1), fps.valid.eq(dl.o.valid)]
            with m.If(dl.o.valid & dl.o.payload.last):
                m.next = "FPS_PICK"
        with m.State("FPS_PICK"):
            with m.If(fc.room):
                self.result(1, [(position(fps.row, fps.lane, lanes, iw), 0, 0)] * lanes)
                m.d.sync += t.eq(t + 1)
                m.next = "FPS_AFTER_PICK"
