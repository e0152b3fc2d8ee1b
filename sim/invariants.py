"""Monitors the blocks' formal invariants share (each adapter's ``invariants(m, dut)``,
proven by ``accelgen formal`` with sim/formal.py).

An adapter's ``invariants`` gets the proof's module and the block's component and adds
``Assume``s (what a legal producer sends on the input streams) and ``Assert``s (what
the block promises on its outputs). They watch the ports only, with monitors written
from the block's contract (the stream layouts' docstrings and papers.md), not from
hdl/. A constant but unconstrained value (k, a command) is an ``AnyConst``
(:func:`constant`): the proof covers every value at once.
"""
from __future__ import annotations

from amaranth import Cat, Module, Signal, Value
from amaranth.hdl import Assert, Assume

from accelgen.hdl.compat import AnyConst


def transfer(port) -> Value:
    return port.valid & port.ready


def sorted_beats(m: Module, port, keys: list, count, last, strict: bool, name: str) -> Value:
    """True when the beat on ``port`` (if valid) continues a sorted stream: its first
    ``count`` keys rise (strictly when ``strict``) and the first one follows the
    previous beat's final key, unless that beat ended a stream (``last``)."""
    order = (lambda a, b: a < b) if strict else (lambda a, b: a <= b)
    prev = Signal(len(Value.cast(keys[0])), name=f"{name}_prev_key")
    open_ = Signal(name=f"{name}_open")
    ok = [(count <= j) | order(keys[j - 1], keys[j]) for j in range(1, len(keys))]
    ok.append((count == 0) | ~open_ | order(prev, keys[0]))
    with m.If(transfer(port)):
        m.d.sync += open_.eq(open_ & ~last)
        for j in range(len(keys)):
            with m.If(count == j + 1):
                m.d.sync += [prev.eq(keys[j]), open_.eq(~last)]
    return ~port.valid | Cat(*ok).all()


def framed(port, lanes: int) -> Value:
    """Every beat holds at most ``lanes`` entries, and all of them unless it is last."""
    beat = port.payload
    return ~port.valid | ((beat.count <= lanes) & (beat.last | (beat.count == lanes)))


def constant(m: Module, like, name: str) -> Signal:
    """A value as wide as ``like`` that the solver picks once per trace (callers assume
    the field equals it on every valid beat)."""
    choice = Signal(len(Value.cast(like)), name=name)
    m.d.comb += choice.eq(AnyConst(len(choice)))
    return choice


def merge_contract(m: Module, inputs: dict, o, out_lanes: int, key_of) -> None:
    """Assume framed, sorted inputs; assert a framed, strictly sorted output."""
    for name, (port, lanes) in inputs.items():
        beat = port.payload
        m.d.comb += Assume(framed(port, lanes) & sorted_beats(
            m, port, [key_of(e) for e in beat.entries], beat.count, beat.last,
            strict=False, name=name))
    beat = o.payload
    m.d.comb += Assert(framed(o, out_lanes) & sorted_beats(
        m, o, [e.key for e in beat.entries], beat.count, beat.last, strict=True, name="o"))
