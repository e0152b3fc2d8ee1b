"""SpAtten's top-k engine (``engine: quickselect``): quick-select rounds, then replay.

One row at a time. Round 1 is the ingest: each accepted beat is written to the row
store and compared, P lanes at once, with a pivot drawn from the row's first beat;
zero-eliminators compact the greater and the less lanes into the G and L stores and
the equal ones are counted. Each later round reads the side holding the k-th largest
element (G or L, rewritten in place, the other side overwritten), after drawing its
pivot from the first row of that side. When the pivot is the k-th largest, θ is known,
and the replay pass (:class:`hdl.topk.Replayer`) streams the row store in order.

Pivot lane: ``(r * c) >> b`` for the low b bits r of a 16-bit Galois LFSR (taps 0xB400,
seed 1, stepped once per pivot, never reset between rows) and c = valid lanes of the
row the pivot is drawn from. Cycles per row: one per input beat, 1 to decide, for each
later round ``rows + 3`` (pivot read, pivot latch, one per row, decide), then the replay
(one per row store row up to the row holding the k_eff-th kept element, plus 1).
"""
from __future__ import annotations

import math

from amaranth import Module, Mux, Signal
from amaranth.lib import enum, wiring

from accelgen.params.topk import TopkConfig

from .lanes import BankedStore, RowReader, advance, popcount
from .topk import Ingest, Replayer, item_layout, pointer_extent, select_lane

LFSR_TAPS = 0xB400


class State(enum.Enum, shape=3):
    INGEST = 0
    DECIDE = 1
    PIVOT_READ = 2
    PIVOT_LATCH = 3
    ROUND = 4
    REPLAY = 5


def lfsr_step(state):
    """One step of the 16-bit Galois LFSR."""
    return Mux(state[0], (state >> 1) ^ LFSR_TAPS, state >> 1)


def pivot_lane(lfsr, count, lanes: int):
    """A pseudo-random lane below ``count``."""
    bits = max(1, (lanes - 1).bit_length())
    return (lfsr[:bits] * count) >> bits


class QuickSelectEngine:
    def __init__(self, cfg: TopkConfig):
        self.cfg = cfg
        self.rows = math.ceil(cfg.capacity / cfg.lanes)

    def build(self, m: Module, i, o) -> None:
        cfg, lanes, rows = self.cfg, self.cfg.lanes, self.rows
        kw = cfg.width
        item = item_layout(cfg, kw)
        m.submodules.row_store = row_store = BankedStore(item, lanes, rows, 1)
        m.submodules.g_store = g_store = BankedStore(item, lanes, rows, 1)
        m.submodules.l_store = l_store = BankedStore(item, lanes, rows, 1)
        m.submodules.replay = replay = Replayer(cfg, kw, rows)
        wiring.connect(m, replay.o, wiring.flipped(o))
        m.d.comb += [row_store.r_row[0].eq(replay.r_row), replay.r_data.eq(row_store.r_data[0])]

        state = Signal(State, name="qs_state")
        lfsr = Signal(16, init=1, name="qs_lfsr")
        in_row = Signal(name="qs_in_row")
        n = Signal(range(cfg.capacity + 1), name="qs_n")
        k = Signal(cfg.k_width, name="qs_k")
        rank = Signal(cfg.k_width, name="qs_rank")
        pivot = Signal(kw, name="qs_pivot")
        cnt = {c: Signal(cfg.k_width, name=f"qs_c{c}") for c in ("gt", "eq", "lt")}
        ptr = {s: (Signal(range(rows + 1), name=f"qs_{s}_row"),
                   Signal(range(max(2, lanes)), name=f"qs_{s}_off")) for s in ("row", "g", "l")}
        src_l = Signal(name="qs_src_l")            # current candidates: L (else G)
        src_rows = Signal(range(rows + 1), name="qs_src_rows")
        src_tail = Signal(range(lanes + 1), name="qs_src_tail")
        m.submodules.reader = reader = RowReader(lanes, rows)  # candidate rows (G or L)
        m.d.comb += [reader.rows.eq(src_rows), reader.tail.eq(src_tail)]

        # ---- the lanes being classified: an input beat (round 1) or a candidate row
        first = ~in_row
        ingest = Ingest(m, cfg, i.payload, Mux(first, 0, n), lambda u: u, kw)
        accept = Signal(name="qs_accept")
        m.d.comb += [i.ready.eq(state == State.INGEST), accept.eq(i.valid & i.ready)]
        cand = [Mux(src_l, l_item.as_value(), g_item.as_value())
                for g_item, l_item in zip(g_store.r_data[0], l_store.r_data[0])]
        cand_items = [Signal(item, name=f"qs_cand{j}") for j in range(lanes)]
        m.d.comb += [c.eq(v) for c, v in zip(cand_items, cand)]
        in_round = state == State.ROUND
        round_live = Mux(in_round, reader.live, 0)
        items = [Mux(in_round, c.as_value(), x.as_value())
                 for c, x in zip(cand_items, ingest.items)]
        live = Mux(in_round, round_live, ingest.valid & accept.replicate(lanes))

        first_pivot = select_lane(m, [x.key for x in ingest.items],
                                  pivot_lane(lfsr, i.payload.count, lanes), "qs_first_pivot")
        pivot_now = Mux(accept & first, first_pivot, pivot)
        keys = [item(x).key for x in items]
        gt = Signal(lanes, name="qs_gt")
        lt = Signal(lanes, name="qs_lt")
        eq = Signal(lanes, name="qs_eq")
        for j, key in enumerate(keys):
            m.d.comb += [gt[j].eq(live[j] & (key > pivot_now)),
                         lt[j].eq(live[j] & (key < pivot_now)),
                         eq[j].eq(live[j] & (key == pivot_now))]

        restart = accept & first | (state == State.PIVOT_LATCH)
        for store, name, mask in ((g_store, "g", gt), (l_store, "l", lt)):
            row, off = ptr[name]
            m.d.comb += [store.w_row.eq(Mux(restart, 0, row)), store.w_off.eq(Mux(restart, 0, off)),
                         store.w_mask.eq(mask)]
            m.d.comb += [w.eq(x) for w, x in zip(store.w_items, items)]
            new_row, new_off = advance(store.w_row, store.w_off, store.w_count, lanes)
            m.d.sync += [row.eq(new_row), off.eq(new_off)]
        row, off = ptr["row"]
        m.d.comb += [row_store.w_row.eq(Mux(accept & first, 0, row)),
                     row_store.w_off.eq(Mux(accept & first, 0, off)),
                     row_store.w_mask.eq(ingest.valid & accept.replicate(lanes))]
        m.d.comb += [w.eq(x) for w, x in zip(row_store.w_items, ingest.items)]
        new_row, new_off = advance(row_store.w_row, row_store.w_off, row_store.w_count, lanes)
        with m.If(accept):
            m.d.sync += [row.eq(new_row), off.eq(new_off)]
        for name, mask in (("gt", gt), ("eq", eq), ("lt", lt)):
            m.d.sync += cnt[name].eq(Mux(restart, 0, cnt[name]) + popcount(mask))

        # ---- candidate reads (G and L share the address)
        m.d.comb += [g_store.r_row[0].eq(reader.row), l_store.r_row[0].eq(reader.row),
                     reader.go.eq((state == State.PIVOT_LATCH) | in_round)]

        # ---- the schedule
        k_eff = Signal(cfg.k_width, name="qs_k_eff")
        m.d.comb += k_eff.eq(Mux(k < n, k, n))
        below = cnt["gt"] + cnt["eq"]
        row_rows, row_tail = pointer_extent(*ptr["row"], lanes)
        m.d.comb += [replay.base.eq(0), replay.rows.eq(row_rows), replay.tail.eq(row_tail),
                     replay.k_eff.eq(k_eff), replay.theta.eq(pivot),
                     replay.mask.eq((1 << kw) - 1), replay.need.eq(rank - cnt["gt"])]

        def go_round(side_l):
            rows_, tail_ = pointer_extent(*ptr["l" if side_l else "g"], lanes)
            m.d.comb += reader.clear.eq(1)
            m.d.sync += [src_l.eq(side_l), src_rows.eq(rows_), src_tail.eq(tail_),
                         state.eq(State.PIVOT_READ)]

        with m.Switch(state):
            with m.Case(State.INGEST):
                with m.If(accept):
                    m.d.sync += [n.eq(ingest.n_next), in_row.eq(~i.payload.last)]
                    with m.If(first):
                        m.d.sync += [k.eq(i.payload.k), pivot.eq(first_pivot),
                                     lfsr.eq(lfsr_step(lfsr))]
                    with m.If(i.payload.last):
                        k_now = Mux(first, i.payload.k, k)
                        m.d.sync += [state.eq(State.DECIDE),
                                     rank.eq(Mux(k_now < ingest.n_next, k_now, ingest.n_next))]
            with m.Case(State.DECIDE):
                with m.If(k_eff == 0):
                    m.d.comb += replay.start.eq(1)
                    m.d.sync += state.eq(State.REPLAY)
                with m.Elif(rank <= cnt["gt"]):
                    go_round(False)
                with m.Elif(rank <= below):
                    m.d.comb += replay.start.eq(1)
                    m.d.sync += state.eq(State.REPLAY)
                with m.Else():
                    m.d.sync += rank.eq(rank - below)
                    go_round(True)
            with m.Case(State.PIVOT_READ):
                m.d.sync += state.eq(State.PIVOT_LATCH)
            with m.Case(State.PIVOT_LATCH):
                rows_here = Mux(src_rows == 1, src_tail, lanes)
                m.d.sync += [pivot.eq(select_lane(m, [c.key for c in cand_items],
                                                  pivot_lane(lfsr, rows_here, lanes), "qs_pivot_pick")),
                             lfsr.eq(lfsr_step(lfsr)), state.eq(State.ROUND)]
            with m.Case(State.ROUND):
                with m.If(reader.row == src_rows):  # the final row's data is counted now
                    m.d.sync += state.eq(State.DECIDE)
            with m.Case(State.REPLAY):
                with m.If(~replay.busy):
                    m.d.sync += state.eq(State.INGEST)
