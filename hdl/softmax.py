"""The softmax unit (block ``softmax``): rows of signed fixed-point scores in, P lanes a
beat; each row's probabilities out, P lanes a beat, as unsigned fixed point with 16
fractional bits (golden/softmax.py's arithmetic, bit for bit).

Three passes over each row, each at one beat a cycle, on three rows at once:

1. **Max** (as the row arrives): every beat is written to the row store (block RAM) and
   enters :class:`~hdl.softmax_parts.RowMax`; the row's maximum, length and ``frac`` go
   to the row queue when its last beat has passed.
2. **Exponentials**: the row is read back from the row store; each lane forms d = max -
   x and whether it is live (x > max - 16 << frac, against a bound formed as the row
   entered the row queue), then :class:`~hdl.softmax_parts.Exponential`. Each beat's
   e16 values go to the exponential store (block RAM) and its e values to
   :class:`~hdl.softmax_parts.LaneSum`; the row's sum enters
   :class:`~hdl.softmax_parts.Reciprocal`, whose R = 2^40 // S goes with the row's
   length to the reciprocal queue.
3. **Normalize**: the row's e16 values are read back from the exponential store and
   multiplied by R (:class:`~hdl.softmax_parts.Normalize`) into the output FIFO.

Flow control: no part stalls. Each pass issues a beat only when the space its beat
will take further on is reserved: the input is ready while the row store and the row
queue have room; pass 2 reads a beat while the exponential store has a free place, and
starts a row while the reciprocal queue has one; pass 3 reads a beat while the output
FIFO has one, counting the beats in flight. A pass starts its next row in the cycle it
issues its current row's last beat, so rows follow each other with no gap.

Latency: a row's last probability beat leaves 3 ceil(n/P) + 2 ceil(log2 P) + 50 cycles after
its first score beat at full rate (golden/softmax.py's :func:`cycles` is exact).
"""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from accelgen.params.softmax import CLAMP, MAX_FRAC, SoftmaxConfig

from .checks import require_config
from .softmax_parts import (D_WIDTH, E16_WIDTH, E_WIDTH, FRAC_WIDTH, BeatStore, Exponential,
                            LaneSum, Normalize, Reciprocal, RowMax, delayed, sum_latency)

#: entries of the row queue (pass 1 -> 2) and of the reciprocal queue (pass 2 -> 3)
ROW_QUEUE, RECIP_QUEUE = 4, 16
#: beats of the output FIFO (at least pass 3's latency + 1 for one beat a cycle)
OUT_QUEUE = 16


def input_layout(cfg: SoftmaxConfig) -> data.StructLayout:
    """One input beat: P scores, how many lanes are valid (0..P, P but on a row's final
    beat), the row's fractional bits (read on its final beat; above 13 counts as 13),
    and ``last`` on the row's final beat."""
    return data.StructLayout({
        "scores": data.ArrayLayout(signed(cfg.width), cfg.lanes),
        "count": unsigned(cfg.count_width),
        "frac": unsigned(FRAC_WIDTH),
        "last": unsigned(1),
    })


def output_layout(cfg: SoftmaxConfig) -> data.StructLayout:
    """One output beat: P probabilities (16 fractional bits, 0..2^16; lanes at and
    beyond ``count`` are 0), the valid lanes, and ``last`` on the row's final beat."""
    return data.StructLayout({
        "probs": data.ArrayLayout(unsigned(E16_WIDTH), cfg.lanes),
        "count": unsigned(cfg.count_width),
        "last": unsigned(1),
    })


def _pow2(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


def store_depths(cfg: SoftmaxConfig) -> tuple[int, int]:
    """Beats of the row store (two longest rows) and of the exponential store (the
    longest row and the beats issued while its reciprocal is formed)."""
    beats = cfg.row_beats
    gap = Exponential.latency + sum_latency(cfg.lanes) + Reciprocal.QUOTIENT_BITS
    return _pow2(max(2 * beats, 8)), _pow2(beats + gap + 8)


def total_width(cfg: SoftmaxConfig) -> int:
    """Bits of a row's sum of e (at most capacity 2^24)."""
    return (cfg.capacity << 24).bit_length()


class Softmax(wiring.Component):
    """Softmax of score rows, stream ports ``i`` (score beats) and ``o`` (probability
    beats); see the module docstring."""

    def __init__(self, cfg: SoftmaxConfig):
        require_config(self, cfg, SoftmaxConfig)
        self.cfg = cfg
        super().__init__({"i": In(stream.Signature(input_layout(cfg))),
                          "o": Out(stream.Signature(output_layout(cfg)))})

    def elaborate(self, platform):
        m = Module()
        cfg, lanes = self.cfg, self.cfg.lanes
        row_depth, exp_depth = store_depths(cfg)
        beats_shape = range(cfg.row_beats + 1)
        count_shape = unsigned(cfg.count_width)
        scores_shape = data.ArrayLayout(signed(cfg.width), lanes)

        # ------------------------------------------------ pass 1: store, row maximum
        m.submodules.rows = rows = BeatStore(signed(cfg.width), lanes, row_depth)
        m.submodules.row_max = row_max = RowMax(lanes, cfg.width)
        bound_shape = signed(max(cfg.width, D_WIDTH + 1) + 1)
        ending_info = data.StructLayout({"beats": beats_shape, "count": count_shape,
                                         "frac": unsigned(FRAC_WIDTH),
                                         "clamp": unsigned(D_WIDTH + 1)})
        row_info = data.StructLayout({"max": signed(cfg.width), "bound": bound_shape,
                                      "beats": beats_shape, "count": count_shape,
                                      "frac": unsigned(FRAC_WIDTH)})
        m.submodules.row_queue = row_queue = fifo.SyncFIFO(width=row_info.size,
                                                           depth=ROW_QUEUE)
        row_free = Signal(range(row_depth + 1), init=row_depth)
        rows_queued = Signal(range(ROW_QUEUE + 1))  # rows accepted, not yet started
        take = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq((row_free != 0) & (rows_queued != ROW_QUEUE))
        # the beat taken, registered: the handshake reaches one register, and the
        # store's banks and RowMax see flip-flops
        beat = Signal(input_layout(cfg), reset_less=True)
        lanes_valid = Signal(lanes, reset_less=True)  # all but beyond a final beat's count
        took = Signal()
        payload = self.i.payload
        m.d.sync += [beat.eq(payload), took.eq(take),
                     lanes_valid.eq(Cat(~payload.last | (j < payload.count)
                                        for j in range(lanes)))]
        m.d.comb += [
            rows.w_en.eq(took), rows.w_data.eq(beat.scores),
            row_max.scores.eq(beat.scores), row_max.lanes_valid.eq(lanes_valid),
            row_max.valid.eq(took), row_max.last.eq(beat.last),
        ]
        arrived = Signal(beats_shape)  # beats of the row before this one
        with m.If(took):
            m.d.sync += arrived.eq(Mux(beat.last, 0, arrived + 1))
        # the row's length and scale wait beside RowMax; its bound max - (16 << frac) is
        # formed from registers as the row enters the row queue
        ending_row = Signal(ending_info)
        frac_in = Mux(beat.frac > MAX_FRAC, MAX_FRAC, beat.frac)
        m.d.comb += [ending_row.beats.eq(arrived + 1), ending_row.count.eq(beat.count),
                     ending_row.frac.eq(frac_in), ending_row.clamp.eq(CLAMP << frac_in)]
        ended = delayed(m, ending_row, row_max.latency, "row_info")
        info = Signal(row_info)
        m.d.comb += [info.max.eq(row_max.max), info.bound.eq(row_max.max - ended.clamp),
                     info.beats.eq(ended.beats), info.count.eq(ended.count),
                     info.frac.eq(ended.frac)]
        m.d.comb += [row_queue.w_data.eq(info),
                     row_queue.w_en.eq(row_max.done)]

        # ------------------------------------------------ pass 2: exponentials, sum
        m.submodules.exps = exps = BeatStore(unsigned(E16_WIDTH), lanes, exp_depth)
        exp_free = Signal(range(exp_depth + 1), init=exp_depth)
        recip_free = Signal(range(RECIP_QUEUE + 1), init=RECIP_QUEUE)
        head = data.View(row_info, row_queue.r_data)
        active, left = Signal(), Signal(beats_shape)
        row_top = Signal(signed(cfg.width), reset_less=True)
        bound = Signal(bound_shape, reset_less=True)
        frac = Signal(FRAC_WIDTH, reset_less=True)
        last_mask = Signal(lanes, reset_less=True)
        row_beats, row_count = Signal(beats_shape, reset_less=True), Signal(count_shape,
                                                                            reset_less=True)
        issue = active & (exp_free != 0)
        ending = issue & (left == 1)
        start = row_queue.r_rdy & (recip_free != 0) & (~active | ending)
        m.d.comb += [row_queue.r_en.eq(start), rows.r_en.eq(issue)]
        with m.If(start):
            m.d.sync += [active.eq(1), left.eq(head.beats), row_top.eq(head.max),
                         bound.eq(head.bound),
                         frac.eq(head.frac), row_beats.eq(head.beats),
                         row_count.eq(head.count),
                         last_mask.eq(Cat(j < head.count for j in range(lanes)))]
        with m.Elif(ending):
            m.d.sync += active.eq(0)
        with m.Elif(issue):
            m.d.sync += left.eq(left - 1)

        # the read's tag: a cycle to the block RAM's output, then the data registered
        tag = data.StructLayout({"valid": 1, "last": 1, "mask": lanes, "top": signed(cfg.width),
                                 "bound": bound.shape(), "frac": FRAC_WIDTH,
                                 "beats": beats_shape, "count": count_shape})
        issued = Signal(tag)
        m.d.comb += [issued.valid.eq(issue), issued.last.eq(ending),
                     issued.mask.eq(Mux(ending, last_mask, (1 << lanes) - 1)),
                     issued.top.eq(row_top), issued.bound.eq(bound), issued.frac.eq(frac),
                     issued.beats.eq(row_beats), issued.count.eq(row_count)]
        # the read's data registered twice: the first register becomes the block RAM's
        # output register (synth/outreg.py), the second takes the data across the route
        # from the block RAM row, so the lanes' subtractions start from a near flip-flop
        read_tag = delayed(m, issued, 3, "read_tag", reset_less=False)
        read, scores = (Signal(scores_shape, reset_less=True, name=f"scores{j}")
                        for j in range(2))
        m.d.sync += [read.eq(rows.r_data), scores.eq(read)]
        # d = max - x and x > max - 16 << frac (live), registered into the exponentials
        exp_tag = delayed(m, read_tag, 1, "exp_tag", reset_less=False)
        es, e16s = [], []
        for j in range(lanes):
            m.submodules[f"exp{j}"] = unit = Exponential()
            d = Signal(D_WIDTH, name=f"d{j}", reset_less=True)
            live = Signal(name=f"live{j}", reset_less=True)
            # x > bound as the borrow of bound - x: a carry chain, beside d's
            m.d.sync += [d.eq((read_tag.top - scores[j])[:D_WIDTH]),
                         live.eq(read_tag.mask[j] & (read_tag.bound - scores[j])[-1])]
            m.d.comb += [unit.d.eq(d), unit.live.eq(live), unit.frac.eq(exp_tag.frac)]
            es.append(unit.e)
            e16s.append(unit.e16)
        out_tag = delayed(m, exp_tag, Exponential.latency, "sum_tag", reset_less=False)
        m.d.comb += [exps.w_en.eq(out_tag.valid), exps.w_data.eq(Cat(*e16s))]

        m.submodules.sum = lane_sum = LaneSum(lanes, E_WIDTH, total_width(cfg))
        m.d.comb += [lane_sum.e.eq(Cat(*es)), lane_sum.valid.eq(out_tag.valid),
                     lane_sum.last.eq(out_tag.last)]
        passenger = Cat(out_tag.beats, out_tag.count)
        passenger_late = delayed(m, passenger, lane_sum.latency, "passenger")
        m.submodules.recip = recip = Reciprocal(total_width(cfg), len(passenger))
        m.d.comb += [recip.total.eq(lane_sum.total), recip.valid.eq(lane_sum.done),
                     recip.passenger.eq(passenger_late)]
        recip_info = data.StructLayout({"r": recip.r.shape(), "beats": beats_shape,
                                        "count": count_shape})
        m.submodules.recip_queue = recip_queue = fifo.SyncFIFO(width=recip_info.size,
                                                               depth=RECIP_QUEUE)
        m.d.comb += [recip_queue.w_data.eq(Cat(recip.r, recip.passenger_out)),
                     recip_queue.w_en.eq(recip.valid_out)]

        # ------------------------------------------------ pass 3: normalize
        m.submodules.out = out = fifo.SyncFIFOBuffered(width=output_layout(cfg).size,
                                                       depth=OUT_QUEUE)
        out_free = Signal(range(OUT_QUEUE + 1), init=OUT_QUEUE)
        recip_head = data.View(recip_info, recip_queue.r_data)
        c_active, c_left = Signal(), Signal(beats_shape)
        c_r = Signal(recip.r.shape(), reset_less=True)
        c_count = Signal(count_shape, reset_less=True)
        c_issue = c_active & (out_free != 0)
        c_ending = c_issue & (c_left == 1)
        c_start = recip_queue.r_rdy & (~c_active | c_ending)
        m.d.comb += [recip_queue.r_en.eq(c_start), exps.r_en.eq(c_issue)]
        with m.If(c_start):
            m.d.sync += [c_active.eq(1), c_left.eq(recip_head.beats), c_r.eq(recip_head.r),
                         c_count.eq(recip_head.count)]
        with m.Elif(c_ending):
            m.d.sync += c_active.eq(0)
        with m.Elif(c_issue):
            m.d.sync += c_left.eq(c_left - 1)
        c_tag_layout = data.StructLayout({"valid": 1, "last": 1, "count": count_shape,
                                          "r": recip.r.shape()})
        c_issued = Signal(c_tag_layout)
        m.d.comb += [c_issued.valid.eq(c_issue), c_issued.last.eq(c_ending),
                     c_issued.count.eq(Mux(c_ending, c_count, lanes)), c_issued.r.eq(c_r)]
        c_tag = delayed(m, c_issued, 2, "norm_tag", reset_less=False)
        e16_read = Signal(data.ArrayLayout(E16_WIDTH, lanes), reset_less=True)
        m.d.sync += e16_read.eq(exps.r_data)
        m.submodules.normalize = normalize = Normalize(lanes)
        m.d.comb += [normalize.e16.eq(e16_read), normalize.r.eq(c_tag.r)]
        done_tag = delayed(m, c_tag, normalize.latency, "done_tag", reset_less=False)
        beat = Signal(output_layout(cfg))
        m.d.comb += [beat.probs.eq(normalize.p), beat.count.eq(done_tag.count),
                     beat.last.eq(done_tag.last),
                     out.w_data.eq(beat), out.w_en.eq(done_tag.valid),
                     self.o.payload.eq(out.r_data), self.o.valid.eq(out.r_rdy),
                     out.r_en.eq(self.o.ready)]

        # ------------------------------------------------ credits
        sent = self.o.valid & self.o.ready
        m.d.sync += [
            row_free.eq(row_free - take + issue),
            rows_queued.eq(rows_queued + (take & self.i.payload.last) - start),
            exp_free.eq(exp_free - issue + c_issue),
            recip_free.eq(recip_free - start + c_start),
            out_free.eq(out_free - c_issue + sent),
        ]
        return m

