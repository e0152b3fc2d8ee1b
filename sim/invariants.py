"""Block invariants for the formal proofs (sim/formal.py), one function per block name.

Each function gets the proof's module and the block's component and adds ``Assume``s
(what a legal producer sends on the input streams) and ``Assert``s (what the block
promises on its outputs). They watch the ports only, with monitors written here from
the block's contract (the stream layouts' docstrings and papers.md), not from hdl/:

- topk: a row never yields more than its k pairs, and their indices rise strictly;
- merger, spgemm: every output beat but a stream's last is full, and the output keys
  rise strictly (equal keys were combined) when every input stream is sorted;
- mac: each result row equals its tile's sums computed here one bit wider than the
  accumulators (so a wrapped accumulator is caught) for tiles of up to ``k_max`` beats
  (w8a8, msb_lsb and w4a8 with its dequantizer), no result is flagged as overflowed,
  and at most one finished tile waits for the output;
- mapping: result frames are full but for their last beat and every index names one of
  the job's points (the first ``capacity`` of them), for every command, also those the
  CLI refuses (n above capacity or 0, k and m above n or 0).

A constant but unconstrained value (k, a command) is an ``AnyConst``: the proof covers
every value at once.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.hdl import Assert, Assume

from accelgen.hdl.compat import AnyConst


def _transfer(port) -> Value:
    return port.valid & port.ready


def _sorted_beats(m: Module, port, keys: list, count, last, strict: bool, name: str) -> Value:
    """True when the beat on ``port`` (if valid) continues a sorted stream: its first
    ``count`` keys rise (strictly when ``strict``) and the first one follows the
    previous beat's final key, unless that beat ended a stream (``last``)."""
    order = (lambda a, b: a < b) if strict else (lambda a, b: a <= b)
    prev = Signal(len(Value.cast(keys[0])), name=f"{name}_prev_key")
    open_ = Signal(name=f"{name}_open")
    ok = [(count <= j) | order(keys[j - 1], keys[j]) for j in range(1, len(keys))]
    ok.append((count == 0) | ~open_ | order(prev, keys[0]))
    with m.If(_transfer(port)):
        m.d.sync += open_.eq(open_ & ~last)
        for j in range(len(keys)):
            with m.If(count == j + 1):
                m.d.sync += [prev.eq(keys[j]), open_.eq(~last)]
    return ~port.valid | Cat(*ok).all()


def _framed(port, lanes: int) -> Value:
    """Every beat holds at most ``lanes`` entries, and all of them unless it is last."""
    beat = port.payload
    return ~port.valid | ((beat.count <= lanes) & (beat.last | (beat.count == lanes)))


def _constant(m: Module, like, name: str) -> Signal:
    """A value as wide as ``like`` that the solver picks once per trace (callers assume
    the field equals it on every valid beat)."""
    choice = Signal(len(Value.cast(like)), name=name)
    m.d.comb += choice.eq(AnyConst(len(choice)))
    return choice


def topk(m: Module, dut) -> None:
    cfg, i, o = dut.cfg, dut.i, dut.o
    k = _constant(m, i.payload.k, "any_k")
    m.d.comb += Assume(~i.valid | ((i.payload.k == k) & (i.payload.count <= cfg.lanes)))
    pairs = o.payload.pairs
    sent = Signal(cfg.index_width + 2, name="row_sent")
    with m.If(_transfer(o)):
        m.d.sync += sent.eq(Mux(o.payload.last, 0, sent + o.payload.count))
    m.d.comb += [
        Assert(~o.valid | ((o.payload.count <= cfg.lanes) & (sent + o.payload.count <= k))),
        Assert(_sorted_beats(m, o, [p.index for p in pairs], o.payload.count,
                             o.payload.last, strict=True, name="o")),
    ]


def _merge_contract(m: Module, inputs: dict, o, out_lanes: int, key_of) -> None:
    """Assume framed, sorted inputs; assert a framed, strictly sorted output."""
    for name, (port, lanes) in inputs.items():
        beat = port.payload
        m.d.comb += Assume(_framed(port, lanes) & _sorted_beats(
            m, port, [key_of(e) for e in beat.entries], beat.count, beat.last,
            strict=False, name=name))
    beat = o.payload
    m.d.comb += Assert(_framed(o, out_lanes) & _sorted_beats(
        m, o, [e.key for e in beat.entries], beat.count, beat.last, strict=True, name="o"))


def merger(m: Module, dut) -> None:
    cfg = dut.cfg
    _merge_contract(m, {f"i{w}": (getattr(dut, f"i{w}"), cfg.in_lanes)
                        for w in range(cfg.ways)}, dut.o, cfg.lanes, lambda e: e.key)


def spgemm(m: Module, dut) -> None:
    cfg = dut.cfg
    _merge_contract(m, {f"i{w}": (getattr(dut, f"i{w}"), cfg.in_lanes)
                        for w in range(cfg.ways)}, dut.o, cfg.lanes,
                    lambda e: Cat(e.col, e.row))


def mac(m: Module, dut) -> None:
    cfg, i, o = dut.cfg, dut.i, dut.o
    beat = i.payload
    # legal tiles: up to k_max beats (w4a4: groups of up to `group` beats; msb_lsb: up
    # to k_max beats in each pass)
    limit = cfg.group_size if cfg.mode == "w4a4" else cfg.k_max
    kinds = [beat.msb, ~beat.msb] if cfg.mode == "msb_lsb" else [Const(1, 1)]
    for n, kind in enumerate(kinds):
        beats = Signal(range(limit + 1), name=f"tile_beats{n}")
        with m.If(_transfer(i)):
            m.d.sync += beats.eq(Mux(beat.last, 0, beats + kind))
        m.d.comb += Assume(~i.valid | ~kind | (beats < limit))
    m.d.comb += Assert(~o.valid | ~o.payload.overflow)
    if cfg.mode != "w4a4":
        _sums_match(m, dut)


def _one_of(x, values) -> Value:
    return Cat(*[x == v for v in values]).any()


def _worst_operands(dut) -> Value:
    """Operands restricted to 0 and the value of largest product magnitude (int8: -128,
    so every product is 0 or 16384; w4a8: W8 = -128 or 0 from q in {0, 1} and s2, -z
    in {0, 128}; an LSB beat of msb_lsb carries a nibble: 0 or 8). The sums reach their
    worst magnitudes, and every multiplier has one live partial product, which keeps
    the solver fast (with any operands it takes minutes per step past depth 8)."""
    cfg, beat = dut.cfg, dut.i.payload
    ok = [_one_of(a, (0, -128)) for a in beat.a]
    if cfg.mode == "w4a8":
        s = dut.s.payload
        ok += [_one_of(q, (0, 1)) for q in beat.w] + [_one_of(v, (0, 128))
                                                       for v in (*s.s2, *s.neg_z)]
    elif cfg.mode == "msb_lsb":
        ok += [Mux(beat.msb, _one_of(w, (0, -128)), _one_of(w, (0, 8))) for w in beat.w]
    else:
        ok += [_one_of(w, (0, -128)) for w in beat.w]
    return Cat(*ok).all()


def _sums_match(m: Module, dut) -> None:
    """Each result row equals its tile's sum of A[r] * W[c], computed here one bit wider
    than the accumulators; at most one finished tile waits for the output."""
    cfg, i, o = dut.cfg, dut.i, dut.o
    beat, width = i.payload, cfg.acc_width + 1
    w = [beat.w[c] for c in range(cfg.cols)]
    if cfg.mode == "w4a8":  # QServe: (q * s2 mod 256 + (-z mod 256)) mod 256 as int8
        s = dut.s.payload
        w = [((w[c] * s.s2[c])[:8] + s.neg_z[c])[:8].as_signed() for c in range(cfg.cols)]
    m.d.comb += Assume(~i.valid | _worst_operands(dut))
    tile = [[Signal(signed(width), name=f"sum_{r}_{c}") for c in range(cfg.cols)]
            for r in range(cfg.rows)]
    done = [[Signal(signed(width), name=f"done_{r}_{c}") for c in range(cfg.cols)]
            for r in range(cfg.rows)]
    waiting, row = Signal(name="tile_waiting"), Signal(range(cfg.rows), name="result_row")
    with m.If(_transfer(o)):
        m.d.sync += row.eq(Mux(o.payload.last, 0, row + 1))
        with m.If(o.payload.last):
            m.d.sync += waiting.eq(0)
    with m.If(_transfer(i)):
        for r in range(cfg.rows):
            for c in range(cfg.cols):
                product = beat.a[r] * w[c]
                if cfg.mode == "msb_lsb":  # an MSB beat's product counts 16 times
                    product = Mux(beat.msb, product << 4, product)
                total = tile[r][c] + product
                m.d.sync += tile[r][c].eq(Mux(beat.last, 0, total))
                with m.If(beat.last):
                    m.d.sync += done[r][c].eq(total)
        with m.If(beat.last):
            m.d.sync += waiting.eq(1)
    finishing = _transfer(o) & o.payload.last
    m.d.comb += Assert(~(_transfer(i) & beat.last & waiting & ~finishing))
    for r in range(cfg.rows):
        equal = Cat(*[o.payload.c[c] == done[r][c] for c in range(cfg.cols)]).all()
        m.d.comb += Assert(~o.valid | (row != r) | (
            waiting & equal & (o.payload.last == (r == cfg.rows - 1))))


def mapping(m: Module, dut) -> None:
    cfg, cmd, o = dut.cfg, dut.cmd, dut.o
    layout = cmd.payload.shape()
    command = _constant(m, cmd.payload, "any_command")
    job = layout(command)
    m.d.comb += Assume(~cmd.valid | (Value.cast(cmd.payload) == command))
    kept = Mux(job.n > cfg.capacity, cfg.capacity, job.n)  # any n, k, m: the unit clamps
    lanes = o.payload.lanes
    named = [(o.payload.count <= j) | (lanes[j].index < kept) for j in range(cfg.lanes)]
    m.d.comb += Assert(_framed(o, cfg.lanes) & (~o.valid | Cat(*named).all()))
