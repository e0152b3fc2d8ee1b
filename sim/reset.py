"""Reset in the middle of a stream, then a full job (Amaranth simulator).

The DUT gets a reset input through ``ResetInserter``. Before the real job, a junk job
runs several times, each cut off after a given number of cycles by a 2-cycle reset
(mid-tile, mid-drain, wherever it falls). The real job then runs to completion; its
result must equal the golden model, with nothing of the junk leaking out.
For blocks with one input and one output stream.
"""
from __future__ import annotations

from amaranth import Signal, Value
from amaranth.hdl import ResetInserter
from amaranth.sim import Simulator

from .job import Job, Result
from .player import SETTLE_CYCLES
from .streams import PATTERN_CYCLES, materialize


async def _drive(ctx, src, snk, job: Job, cycles: int, beats: list[int]) -> int:
    """Play ``job`` for at most ``cycles`` cycles (or, when ``cycles`` is None, until the
    sink has its count and SETTLE_CYCLES more); collect output beats. Returns the
    cycles used."""
    (source,), (sink,) = job.sources.values(), job.sinks.values()
    valid, ready = materialize(source.valid), materialize(sink.ready)
    todo, offering, cycle = list(source.beats), False, 0
    end = cycles if cycles is not None else job.max_cycles
    while cycle < end:
        offering = offering or (bool(todo) and valid[cycle % PATTERN_CYCLES])
        ctx.set(src.valid, offering)
        if offering:
            ctx.set(Value.cast(src.payload), todo[0])
        ctx.set(snk.ready, ready[cycle % PATTERN_CYCLES])
        _, _, taken, out_valid, out = await ctx.tick().sample(
            src.ready, snk.valid, Value.cast(snk.payload))
        if offering and taken:
            todo.pop(0)
            offering = False
        if out_valid and ready[cycle % PATTERN_CYCLES]:
            beats.append(out)
            if cycles is None and len(beats) == sink.count:
                end = min(end, cycle + 1 + SETTLE_CYCLES)
        cycle += 1
    ctx.set(src.valid, 0)
    ctx.set(snk.ready, 0)
    return cycle


def run_after_resets(component, junk: Job, job: Job, reset_after: list[int]) -> Result:
    """Run ``junk`` cut off by a reset after each count in ``reset_after``, then ``job``."""
    rst = Signal()
    top = ResetInserter({"sync": rst})(component)
    (src_name,), (snk_name,) = job.sources, job.sinks
    src, snk = getattr(component, src_name), getattr(component, snk_name)
    result = Result()

    async def testbench(ctx):
        for cycles in reset_after:
            await _drive(ctx, src, snk, junk, cycles, [])
            ctx.set(rst, 1)
            await ctx.tick().repeat(2)
            ctx.set(rst, 0)
        result.beats[snk_name] = beats = []
        await _drive(ctx, src, snk, job, None, beats)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return result
