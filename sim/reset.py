"""Reset in the middle of a stream, then a full job (Amaranth simulator).

The DUT gets a reset input through ``ResetInserter``. Before the real job, a junk job
runs several times, each cut off after a given number of cycles by a 2-cycle reset
(mid-tile, mid-drain, wherever it falls). The real job then runs to completion; its
result must equal the golden model, with nothing of the junk leaking out.
For blocks with any number of input streams and one output stream.
"""
from __future__ import annotations

from amaranth import Signal, Value
from amaranth.hdl import ResetInserter
from amaranth.sim import Simulator

from .job import Job, Result
from .player import SETTLE_CYCLES
from .streams import PATTERN_CYCLES, materialize


async def _drive(ctx, srcs: dict, snk, job: Job, cycles: int, beats: list[int]) -> int:
    """Play ``job`` for at most ``cycles`` cycles (or, when ``cycles`` is None, until the
    sink has its count and SETTLE_CYCLES more); collect output beats. ``srcs`` maps
    the job's source names to the DUT's input streams. Returns the cycles used."""
    (sink,) = job.sinks.values()
    ready = materialize(sink.ready)
    plays = [(srcs[name], list(s.beats), materialize(s.valid)) for name, s in job.sources.items()]
    offering = [False] * len(plays)
    cycle = 0
    end = cycles if cycles is not None else job.max_cycles
    while cycle < end:
        for n, (src, todo, valid) in enumerate(plays):
            offering[n] = offering[n] or (bool(todo) and valid[cycle % PATTERN_CYCLES])
            ctx.set(src.valid, offering[n])
            if offering[n]:
                ctx.set(Value.cast(src.payload), todo[0])
        ctx.set(snk.ready, ready[cycle % PATTERN_CYCLES])
        *taken, out_valid, out = (await ctx.tick().sample(
            *[src.ready for src, _, _ in plays], snk.valid, Value.cast(snk.payload)))[2:]
        for n, (_, todo, _) in enumerate(plays):
            if offering[n] and taken[n]:
                todo.pop(0)
                offering[n] = False
        if out_valid and ready[cycle % PATTERN_CYCLES]:
            beats.append(out)
            if cycles is None and len(beats) == sink.count:
                end = min(end, cycle + 1 + SETTLE_CYCLES)
        cycle += 1
    for src, _, _ in plays:
        ctx.set(src.valid, 0)
    ctx.set(snk.ready, 0)
    return cycle


def run_after_resets(component, junk: Job, job: Job, reset_after: list[int]) -> Result:
    """Run ``junk`` cut off by a reset after each count in ``reset_after``, then ``job``."""
    rst = Signal()
    top = ResetInserter({"sync": rst})(component)
    (snk_name,) = job.sinks
    srcs = {name: getattr(component, name) for name in job.sources}
    snk = getattr(component, snk_name)
    result = Result()

    async def testbench(ctx):
        for cycles in reset_after:
            await _drive(ctx, srcs, snk, junk, cycles, [])
            ctx.set(rst, 1)
            await ctx.tick().repeat(2)
            ctx.set(rst, 0)
        result.beats[snk_name] = beats = []
        await _drive(ctx, srcs, snk, job, None, beats)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return result
