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
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.mapping import MappingConfig
from accelgen.params.merger import MergerConfig
from accelgen.params.topk import TopkConfig

from .checks import require_config
from .lanes import BankedStore, RowReader, SlotQueue, pick, popcount, prefix_counts
from .mapping_layouts import (Op, command_layout, coord_layout, entry_layout, merge_key_width,
                              output_layout, points_layout, result_layout, sort_key_width)
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
        cfg, lanes = self.cfg, self.cfg.lanes
        shift = lanes.bit_length() - 1
        iw, dw, cw = cfg.index_width, cfg.dist_width, cfg.coord_width
        rows = cfg.rows
        entry = entry_layout(cfg)
        ew = entry.size

        # ---- resources
        ps = BankedStore(coord_layout(cfg), lanes, rows, 1, "ps")
        ms = BankedStore(unsigned(dw), lanes, rows, 1, "ms")
        bufs = [BankedStore(entry, lanes, rows, 2, f"sb{i}") for i in range(BUFFERS)]
        tbl = BankedStore(unsigned(iw + 1), lanes, rows, 1, "tb")
        for store in (ps, ms, *bufs, tbl):
            store.elaborate(m)
        rd = RunReader(lanes, rows, lanes * (3 * cw + dw), "rd")
        ra = RunReader(lanes, rows, lanes * ew, "ra")
        rb = RunReader(lanes, rows, lanes * ew, "rb")
        for r in (rd, ra, rb):
            r.elaborate(m)
        rs = RowSorter(entry, lanes)
        rs.elaborate(m)
        m.submodules.merge = mn = MergeNode(merge_config(cfg), lanes)
        m.submodules.topk = tk = TopK(topk_config(cfg))
        oq = SlotQueue(result_layout(cfg), lanes, "oq")
        oq.elaborate(m)
        fc = FrameCloser(oq)
        fc.elaborate(m)
        m.d.comb += [self.o.valid.eq(oq.valid), oq.ready.eq(self.o.ready),
                     self.o.payload.count.eq(oq.count), self.o.payload.last.eq(oq.last)]
        m.d.comb += [self.o.payload.lanes[j].eq(oq.items[j]) for j in range(lanes)]

        # ---- job registers
        job = Signal(command_layout(cfg))
        loaded = Signal(cfg.count_width + 1)
        presorted, last_key = Signal(), Signal(3 * cw)
        qc = Signal(coord_layout(cfg))  # the query (or FPS's latest pick)
        queries_left = Signal.like(job.queries)

        # ---- reader data: rows of the stores they address
        fetch, fetch_row = Signal(), Signal(range(rows))
        m.d.comb += [ps.r_row[0].eq(Mux(fetch, fetch_row, rd.addr)), ms.r_row[0].eq(rd.addr),
                     rd.data.eq(Cat(*ps.r_data[0], *ms.r_data[0]))]
        sel_a, sel_b = Signal(range(BUFFERS)), Signal(range(BUFFERS))
        for b in bufs:
            m.d.comb += [b.r_row[0].eq(ra.addr), b.r_row[1].eq(rb.addr)]
        m.d.comb += [ra.data.eq(pick(sel_a, [Cat(*b.r_data[0]) for b in bufs])),
                     rb.data.eq(pick(sel_b, [Cat(*b.r_data[1]) for b in bufs]))]

        def entries(reader):
            return [data.View(entry, reader.out[j * ew:(j + 1) * ew]) for j in range(lanes)]

        def live(reader):
            return [j < reader.count for j in range(lanes)]

        def start_whole(reader, count):
            """Read the ``count`` entries of a store, as one run."""
            n_rows, n_tail = extent(count, lanes)
            m.d.comb += [reader.start.eq(1), reader.cfg["first"].eq(0),
                         reader.cfg["step"].eq(0), reader.cfg["length"].eq(n_rows),
                         reader.cfg["pairs"].eq(1), reader.cfg["rows"].eq(n_rows),
                         reader.tail.eq(n_tail)]

        # distance lanes on the reader rd's rows
        points = [data.View(coord_layout(cfg), rd.out[j * 3 * cw:(j + 1) * 3 * cw])
                  for j in range(lanes)]
        mind = [rd.out[lanes * 3 * cw + j * dw:lanes * 3 * cw + (j + 1) * dw] for j in range(lanes)]
        d2 = [Signal(dw, name=f"d2_{j}") for j in range(lanes)]
        m.d.comb += [d2[j].eq(dist2(cfg, qc, points[j])) for j in range(lanes)]
        index = [position(rd.row, j, lanes, iw) for j in range(lanes)]

        # ---- the load writer: the row sorter's rows go to buffer load_buf, in order
        load_buf, load_row = Signal(range(BUFFERS)), Signal(range(rows + 1))
        # ---- the sort-pass writer: merge output to buffer dst (deduplicated if asked)
        src, dst = Signal(range(BUFFERS)), Signal(range(BUFFERS))
        w_row, w_off = Signal(range(rows + 1)), Signal(range(max(2, lanes)))
        sort_writing, dedupe, last_pass = Signal(), Signal(), Signal()
        prev_key, prev_have = Signal(sort_key_width(cfg)), Signal()
        out_keys = [mn.o.payload.entries[j].key[1:1 + sort_key_width(cfg)] for j in range(lanes)]
        out_live = [j < mn.o.payload.count for j in range(lanes)]
        dup = [(out_keys[j] == (out_keys[j - 1] if j else prev_key)) & (prev_have if j == 0 else 1)
               for j in range(lanes)]
        keep = Signal(lanes)
        m.d.comb += [keep[j].eq(out_live[j] & ~(dedupe & last_pass & dup[j])) for j in range(lanes)]
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

        # ---- merge inputs: sort passes, or kernel-map keys
        kmap = Signal()  # the merge node compares kernel-map keys
        stride2 = job.stride2
        delta = [Signal(range(-1, 2), name=f"delta_{f}") for f in "xyz"]

        def merge_key(e, side: int, shifted: bool):
            fw = cfg.field_width
            fields = []
            for f, c in zip(range(3), unpack_key(cfg, e.key)):
                scaled = Mux(stride2, c << 1, c) if shifted else c
                fields.append((scaled + (delta[f] if shifted else 0) + 1)[:fw])
            wide = Cat(fields[2], fields[1], fields[0])
            return Mux(kmap, Cat(Const(side, 1), wide), Cat(Const(0, 1), e.key))

        for reader, port, side in ((ra, mn.a, 0), (rb, mn.b, 1)):
            es = entries(reader)
            for j in range(lanes):
                m.d.comb += [port.payload.entries[j].key.eq(merge_key(es[j], side, side == 0)),
                             port.payload.entries[j].value.eq(es[j].value)]
            m.d.comb += [port.payload.count.eq(reader.count), port.payload.last.eq(reader.last)]
        # stride 2: an output's index is its position in the deduplicated buffer
        a_entries = entries(ra)
        positions = [position(ra.row, j, lanes, iw) for j in range(lanes)]
        for j in range(lanes):
            with m.If(kmap & stride2):
                m.d.comb += mn.a.payload.entries[j].value.eq(positions[j])
        merging = Signal()
        m.d.comb += [mn.a.valid.eq(merging & ra.valid), mn.b.valid.eq(merging & rb.valid)]
        with m.If(merging):
            m.d.comb += [ra.ready.eq(mn.a.ready), rb.ready.eq(mn.b.ready)]

        # ---- kernel-map match detector on the merge output
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

        # scatter path: matches -> FIFO -> one table write a cycle
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
                         tbl.w_items[0].eq(target.in_idx + 1), tbl.w_mask.eq(1)]
        with m.If(finishing & sfifo.r_rdy):
            m.d.sync += cur_mask.eq(sfifo.r_data[:lanes])
            m.d.sync += [cur[j].eq(sfifo.r_data[lanes + j * pair.size:lanes + (j + 1) * pair.size])
                         for j in range(lanes)]
        scatter_idle = ~sfifo.r_rdy & (cur_mask == 0)

        # table scan: rows in output order, maps out, rows cleared behind
        sc = RowReader(lanes, rows, "sc")
        sc.elaborate(m)
        scan_row = Signal(range(rows + 1))
        m.d.comb += tbl.r_row[0].eq(sc.row)
        with m.If(sc.issue):
            m.d.sync += scan_row.eq(sc.row)
        n_out = Signal(cfg.count_width + 1)
        out_rows, out_tail = extent(n_out, lanes)

        # ---- the job sequencer
        k3 = job.kernel3
        kernel_volume = Mux(k3, 27, 8)
        t = Signal(cfg.count_width)  # FPS picks made
        hits = Signal(cfg.count_width + 1)
        first_hit, found_any = Signal(iw), Signal()
        best_v, best_row, best_lane, best_have = (Signal(dw), Signal(range(rows)),
                                                  Signal(range(max(2, lanes))), Signal())
        first_pass = Signal()
        sort_ctx = Signal(2)  # what a finished sort continues with: 0 S, 1 halved, 2 kNN
        run_len, pairs, n_sort = Signal(range(2 * rows + 1)), Signal(range(rows + 1)), \
            Signal(cfg.count_width + 1)
        passes = Signal(range(32))
        finals = Signal(range(rows + 1))
        s_buf, o_buf = Signal(range(BUFFERS)), Signal(range(BUFFERS))

        def begin_sort(ctx: int, source: int | Value, spare, count, sorted_already, dd):
            m.d.sync += [sort_ctx.eq(ctx), src.eq(source), dst.eq(spare), n_sort.eq(count),
                         run_len.eq(Mux(sorted_already, 2 * rows, 1)), passes.eq(0),
                         dedupe.eq(dd)]
            m.next = "SORT"

        def result(items_mask, values):
            m.d.comb += fc.mask.eq(items_mask)
            for j, (idx, val, off) in enumerate(values):
                m.d.comb += [fc.items[j].index.eq(idx), fc.items[j].value.eq(val),
                             fc.items[j].offset.eq(off)]

        def close_frame(state: str, after: str):
            """A state that ends the output frame (when the queue has room)."""
            with m.State(state):
                with m.If(fc.room):
                    m.d.comb += fc.close.eq(1)
                    m.next = after

        def emit_rows(state: str, values, close: str, after: str):
            """States that send the rows read by ``ra`` as result lanes, then end the frame."""
            with m.State(state):
                m.d.comb += ra.ready.eq(fc.room)
                with m.If(ra.valid & fc.room):
                    result(Cat(*live(ra)), values)
                    with m.If(ra.last):
                        m.next = close
            close_frame(close, after)

        def reset_delta():
            for f in range(3):
                m.d.sync += delta[f].eq(Mux(k3, -1, 0))

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [job.eq(self.cmd.payload), loaded.eq(0), presorted.eq(1),
                                 load_row.eq(0), load_buf.eq(0), scan_row.eq(0),
                                 queries_left.eq(self.cmd.payload.queries)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                beat = self.p.payload.points
                n_here = Mux(job.n - loaded > lanes, lanes, job.n - loaded)
                with m.If(loaded >= job.n):
                    m.next = "LOADED"
                with m.Else():
                    m.d.comb += self.p.ready.eq(1)
                with m.If(self.p.valid & self.p.ready):
                    m.d.comb += [ps.w_row.eq(loaded >> shift), ps.w_off.eq(0),
                                 ps.w_mask.eq(Cat(*[j < n_here for j in range(lanes)]))]
                    m.d.comb += [ps.w_items[j].eq(beat[j]) for j in range(lanes)]
                    m.d.comb += [rs.valid.eq(job.op == Op.KERNEL_MAP), rs.count.eq(n_here)]
                    for j in range(lanes):
                        m.d.comb += [rs.entries[j].key.eq(plain_key(beat[j])),
                                     rs.entries[j].value.eq(loaded + j)]
                    rising = [plain_key(beat[j]) > (plain_key(beat[j - 1]) if j else last_key)
                              for j in range(lanes)]
                    rising[0] = rising[0] | (loaded == 0)
                    ok = Cat(*[(j >= n_here) | rising[j] for j in range(lanes)]).all()
                    m.d.sync += [loaded.eq(loaded + n_here), presorted.eq(presorted & ok),
                                 last_key.eq(pick(n_here - 1, [plain_key(beat[j])
                                                               for j in range(lanes)]))]
            with m.State("LOADED"):  # the row sorter's final row lands this cycle
                with m.Switch(job.op):
                    with m.Case(Op.KERNEL_MAP):
                        begin_sort(0, 0, 1, job.n, presorted, 0)
                    with m.Case(Op.KNN, Op.BALL_QUERY):
                        m.next = "QUERY"
                    with m.Case(Op.FPS):
                        m.next = "FPS_FIRST"

            # ---- merge sort of n_sort entries in buffer src (spare dst)
            sort_rows = extent(n_sort, lanes)[0]
            with m.State("SORT"):
                more = (run_len < sort_rows) | (dedupe & (passes == 0))
                with m.If(more):
                    m.next = "SORT_PASS"
                    m.d.sync += [w_row.eq(0), w_off.eq(0), prev_have.eq(0), finals.eq(0),
                                 sort_writing.eq(1), last_pass.eq((run_len << 1) >= sort_rows)]
                    n_pairs = Signal.like(pairs)
                    m.d.comb += n_pairs.eq(1)
                    for shift_l in range(rows.bit_length() + 1):
                        with m.If(run_len == (1 << shift_l)):
                            m.d.comb += n_pairs.eq(Mux(sort_rows == 0, 1, (sort_rows + (2 << shift_l) - 1)
                                                       >> (shift_l + 1)))
                    m.d.sync += pairs.eq(n_pairs)
                    for reader, first in ((ra, 0), (rb, run_len)):
                        m.d.comb += [reader.start.eq(1), reader.cfg["first"].eq(first),
                                     reader.cfg["step"].eq(run_len << 1),
                                     reader.cfg["length"].eq(run_len),
                                     reader.cfg["pairs"].eq(n_pairs),
                                     reader.cfg["rows"].eq(sort_rows),
                                     reader.tail.eq(extent(n_sort, lanes)[1])]
                    m.d.sync += [sel_a.eq(src), sel_b.eq(src)]
                with m.Else():
                    with m.Switch(sort_ctx):
                        with m.Case(0):
                            m.d.sync += s_buf.eq(src)
                            with m.If(stride2):
                                m.next = "HALVE"
                            with m.Else():
                                m.d.sync += [o_buf.eq(src), n_out.eq(job.n),
                                             scatter.eq(~presorted)]
                                m.next = "KMAP_CLEAR"
                        with m.Case(1):
                            m.d.sync += [o_buf.eq(src), n_out.eq(n_sort), scatter.eq(0)]
                            m.next = "COORDS"
                        with m.Case(2):
                            m.next = "KNN_EMIT"
            with m.State("SORT_PASS"):
                m.d.comb += [merging.eq(1), mn.o.ready.eq(1)]
                done = mo_take & mn.o.payload.last & (finals + 1 == pairs)
                with m.If(mo_take & mn.o.payload.last):
                    m.d.sync += finals.eq(finals + 1)
                with m.If(done):
                    m.d.sync += [src.eq(dst), dst.eq(src), run_len.eq(run_len << 1),
                                 passes.eq(passes + 1), sort_writing.eq(0)]
                    with m.If(dedupe & last_pass):
                        m.d.sync += n_sort.eq(written + popcount(keep))
                    m.next = "SORT"

            # ---- kernel map
            with m.State("HALVE"):  # sorted S -> halved keys -> buffer 2
                start_whole(ra, job.n)
                m.d.sync += sel_a.eq(s_buf)
                m.d.sync += [load_buf.eq(2), load_row.eq(0)]
                m.next = "HALVE_RUN"
            with m.State("HALVE_RUN"):
                m.d.comb += [ra.ready.eq(1), rs.valid.eq(ra.valid), rs.count.eq(ra.count)]
                for j in range(lanes):
                    x, y, z = unpack_key(cfg, a_entries[j].key)
                    m.d.comb += rs.entries[j].key.eq(Cat(z[1:], Const(0, 1), y[1:], Const(0, 1),
                                                         x[1:], Const(0, 1)))
                with m.If(ra.valid & ra.last):
                    m.next = "HALVE_DONE"
            with m.State("HALVE_DONE"):
                begin_sort(1, 2, s_buf ^ 1, job.n, 0, 1)
            with m.State("COORDS"):
                start_whole(ra, n_out)
                m.d.sync += sel_a.eq(o_buf)
                m.next = "COORDS_RUN"
            emit_rows("COORDS_RUN", [(positions[j], a_entries[j].key, 0) for j in range(lanes)],
                      "COORDS_CLOSE", "KMAP_CLEAR")
            with m.State("KMAP_CLEAR"):  # scatter table rows to zero (any reset's leftovers)
                m.d.sync += offset.eq(0)
                reset_delta()
                m.d.comb += sc.clear.eq(1)
                with m.If(scatter):
                    m.d.comb += [tbl.w_row.eq(scan_row), tbl.w_off.eq(0), tbl.w_mask.eq(-1)]
                    m.d.sync += scan_row.eq(scan_row + 1)
                with m.If(~scatter | (scan_row + 1 >= out_rows)):
                    m.next = "KMAP_START"
            with m.State("KMAP_START"):
                start_whole(ra, n_out)
                start_whole(rb, job.n)
                m.d.sync += [sel_a.eq(o_buf), sel_b.eq(s_buf)]
                m.d.sync += [kmap.eq(1), c_have.eq(0)]
                m.next = "KMAP_MERGE"
            with m.State("KMAP_MERGE"):
                m.d.comb += merging.eq(1)
                with m.If(scatter):
                    m.d.comb += [mn.o.ready.eq(sfifo.w_rdy), sfifo.w_en.eq(mo_take & (match != 0))]
                with m.Else():
                    m.d.comb += mn.o.ready.eq(fc.room)
                    with m.If(mo_take):
                        result(match, [(mval[j], out_of[j], offset) for j in range(lanes)])
                with m.If(mo_take & mn.o.payload.last):
                    m.next = "KMAP_DRAIN"
            with m.State("KMAP_DRAIN"):
                m.d.comb += sc.clear.eq(1)
                with m.If(~scatter):
                    m.next = "KMAP_NEXT"
                with m.Elif(scatter_idle):
                    m.next = "KMAP_SCAN"
            with m.State("KMAP_SCAN"):
                m.d.comb += [sc.rows.eq(out_rows), sc.tail.eq(out_tail), sc.go.eq(fc.room)]
                found = Cat(*[sc.live[j] & (tbl.r_data[0][j] != 0) for j in range(lanes)])
                with m.If(sc.inflight):
                    result(found, [(tbl.r_data[0][j] - 1, position(scan_row, j, lanes, iw), offset)
                                   for j in range(lanes)])
                    m.d.comb += [tbl.w_row.eq(scan_row), tbl.w_off.eq(0), tbl.w_mask.eq(-1)]
                with m.If(sc.finished):
                    m.next = "KMAP_NEXT"
            with m.State("KMAP_NEXT"):
                m.d.sync += offset.eq(offset + 1)
                # torchsparse's order: x fastest for k = 3; z fastest for k = 2
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
                with m.If(offset + 1 == kernel_volume):
                    m.d.sync += kmap.eq(0)
                    m.next = "CLOSE"
                with m.Else():
                    m.next = "KMAP_START"

            # ---- kNN and ball query: one query at a time
            with m.State("QUERY"):
                with m.If(queries_left == 0):
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += self.q.ready.eq(1)
                    with m.If(self.q.valid):
                        m.d.sync += [qc.eq(self.q.payload), queries_left.eq(queries_left - 1),
                                     hits.eq(0), found_any.eq(0), load_row.eq(0), load_buf.eq(0)]
                        start_whole(rd, job.n)
                        m.next = "QUERY_GO"
            with m.State("QUERY_GO"):
                with m.If(job.op == Op.KNN):
                    m.next = "KNN_PASS"
                with m.Else():
                    m.next = "BALL_PASS"
            with m.State("BALL_PASS"):
                hit = Cat(*[lv & (d < job.radius2) for lv, d in zip(live(rd), d2)])
                before = prefix_counts(m, hit, "ball_before")
                take = Cat(*[hit[j] & (hits + before[j] < job.k) for j in range(lanes)])
                m.d.comb += rd.ready.eq(fc.room)
                with m.If(rd.valid & fc.room):
                    result(take, [(index[j], 0, 0) for j in range(lanes)])
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
                    with m.Elif(rd.last):
                        m.next = "BALL_PAD"
            with m.State("BALL_DRAIN"):
                m.d.comb += rd.ready.eq(1)
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
                    result(more, [(fill, 0, 0) for _ in range(lanes)])
                    m.d.sync += hits.eq(hits + popcount(more))
            with m.State("KNN_PASS"):
                m.d.comb += [tk.i.valid.eq(rd.valid), rd.ready.eq(tk.i.ready),
                             tk.i.payload.count.eq(rd.count), tk.i.payload.last.eq(rd.last),
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
                begin_sort(2, 0, 1, job.k, 0, 0)
            with m.State("KNN_EMIT"):
                start_whole(ra, job.k)
                m.d.sync += sel_a.eq(src)
                m.next = "KNN_EMIT_RUN"
            emit_rows("KNN_EMIT_RUN", [(a_entries[j].value, a_entries[j].key[iw:iw + dw], 0)
                                       for j in range(lanes)], "KNN_CLOSE", "QUERY")

            # ---- farthest point sampling
            with m.State("FPS_FIRST"):
                with m.If(fc.room):
                    result(1, [(0, 0, 0)] * lanes)
                    m.d.sync += [t.eq(1), best_row.eq(0), best_lane.eq(0)]
                    m.next = "FPS_AFTER_PICK"
            with m.State("FPS_AFTER_PICK"):
                with m.If(t == job.m):
                    m.next = "CLOSE"
                with m.Else():
                    m.d.comb += [fetch.eq(1), fetch_row.eq(best_row)]
                    m.next = "FPS_FETCH"
            with m.State("FPS_FETCH"):  # the pick's row arrives
                m.d.sync += [qc.eq(pick(best_lane, ps.r_data[0])), best_have.eq(0),
                             first_pass.eq(t == 1)]
                start_whole(rd, job.n)
                m.next = "FPS_PASS"
            with m.State("FPS_PASS"):
                m.d.comb += rd.ready.eq(1)
                new = [Mux(first_pass | (d2[j] < mind[j]), d2[j], mind[j]) for j in range(lanes)]
                v, lane, anyv = lane_argmax(m, new, live(rd))
                with m.If(rd.valid):
                    m.d.comb += [ms.w_row.eq(rd.row), ms.w_off.eq(0),
                                 ms.w_mask.eq(Cat(*live(rd)))]
                    m.d.comb += [ms.w_items[j].eq(new[j]) for j in range(lanes)]
                    with m.If(anyv & (~best_have | (v > best_v))):
                        m.d.sync += [best_v.eq(v), best_row.eq(rd.row), best_lane.eq(lane),
                                     best_have.eq(1)]
                    with m.If(rd.last):
                        m.next = "FPS_PICK"
            with m.State("FPS_PICK"):
                with m.If(fc.room):
                    result(1, [(position(best_row, best_lane, lanes, iw), 0, 0)] * lanes)
                    m.d.sync += t.eq(t + 1)
                    m.next = "FPS_AFTER_PICK"

            close_frame("CLOSE", "IDLE")
        return m
