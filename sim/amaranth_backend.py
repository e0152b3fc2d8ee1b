"""Run a :class:`~sim.job.Job` in Amaranth's own simulator (no compiler, instant start).

The same players as sim/player.py, written as async testbenches: sources gate valid
with their pattern and hold each beat until it is taken; sinks gate ready with theirs,
log every transfer with its cycle and check the outputs' stream rules. Cycle numbers
and pattern phases match the Verilog players, so all backends report the same cycles.

A :class:`Resets` schedule runs a junk job first, cut off by a reset after each of its
cycle counts (wherever that falls: mid-beat, mid-drain), then the real job: every
player plays the junk for exactly that many cycles, idles through the reset, and
starts over, so the real job's result shows whether anything of the junk survived.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from amaranth import Signal, Value
from amaranth.hdl import ResetInserter
from amaranth.sim import Simulator

from .job import Job, Result
from .player import SETTLE_CYCLES
from .streams import PATTERN_CYCLES, materialize

#: Cycles a schedule's reset is held.
RESET_CYCLES = 2


@dataclass
class Resets:
    """Play ``junk`` and reset after each count of ``after`` cycles, before the job."""

    junk: Job
    after: list[int]

    def segments(self, job: Job) -> list[tuple[Job, int | None]]:
        """(job, cycle the segment ends) per segment; the real job's runs to its end."""
        ends, at = [], 1  # the players idle in cycle 0
        for cycles in self.after:
            at += cycles
            ends.append(at)
            at += RESET_CYCLES
        return [(self.junk, end) for end in ends] + [(job, None)]


class _Clock:
    """A player's cycle count: ``tick`` waits one clock edge (sampling ``signals``)."""

    def __init__(self, ctx):
        self.ctx, self.cycle = ctx, 0

    async def tick(self, *signals):
        sampled = await self.ctx.tick().sample(*signals)
        self.cycle += 1
        return sampled[2:]

    async def idle_until(self, end: int):
        while self.cycle < end:
            await self.tick()


def _source(port, name, segments, result):
    async def process(ctx):
        clock = _Clock(ctx)
        await clock.tick()  # like the Verilog player, idle in cycle 0
        for job, end in segments:
            src = job.sources[name]
            limit = end if end is not None else job.max_cycles
            log = result.cycles.setdefault(name, []) if end is None else []
            pattern = materialize(src.valid)
            for beat in src.beats:
                while clock.cycle < limit and not pattern[clock.cycle % PATTERN_CYCLES]:
                    ctx.set(port.valid, 0)
                    await clock.tick()
                ctx.set(Value.cast(port.payload), beat)
                ctx.set(port.valid, clock.cycle < limit)
                while clock.cycle < limit:
                    (ready,) = await clock.tick(port.ready)
                    if ready:
                        log.append(clock.cycle - 1)
                        break
                if clock.cycle >= limit:
                    break
            ctx.set(port.valid, 0)
            if end is not None:
                await clock.idle_until(end + RESET_CYCLES)
    return process


def _sink(port, name, segments, result):
    async def process(ctx):
        clock = _Clock(ctx)
        await clock.tick()  # like the Verilog player, not ready in cycle 0
        for job, end in segments:
            count, pattern = job.sinks[name].count, materialize(job.sinks[name].ready)
            real = end is None
            beats = result.beats.setdefault(name, []) if real else []
            log = result.cycles.setdefault(name, []) if real else []
            limit = job.max_cycles if real else end
            limit = limit if count or not real else clock.cycle + SETTLE_CYCLES
            held = None
            while clock.cycle < limit:
                ready = pattern[clock.cycle % PATTERN_CYCLES]
                ctx.set(port.ready, ready)
                valid, payload = await clock.tick(port.valid, Value.cast(port.payload))
                if real and held is not None and (not valid or payload != held):
                    result.violations.append(f"{name}: beat withdrawn or changed before "
                                             f"ready at cycle {clock.cycle - 1}")
                held = payload if valid and not ready else None
                if valid and ready:
                    beats.append(payload)
                    log.append(clock.cycle - 1)
                    if real and len(beats) == count:  # stay open: surplus beats are caught
                        limit = min(limit, clock.cycle + SETTLE_CYCLES)
            ctx.set(port.ready, 0)
            if not real:
                await clock.idle_until(end + RESET_CYCLES)
    return process


def _resetter(rst, segments):
    async def process(ctx):
        clock = _Clock(ctx)
        for _, end in segments[:-1]:
            await clock.idle_until(end)
            ctx.set(rst, 1)
            await clock.idle_until(end + RESET_CYCLES)
            ctx.set(rst, 0)
    return process


def run_amaranth(component, job: Job, waves: Path | None = None,
                 resets: Resets | None = None) -> Result:
    """Simulate ``component`` cycle by cycle in Python; slow but needs no toolchain.
    With ``resets``, the junk job and its resets come first (the reported cycles then
    count from the start of the junk)."""
    result = Result()
    start = time.perf_counter()
    segments = resets.segments(job) if resets else [(job, None)]
    top = component
    if resets:
        rst = Signal()
        top = ResetInserter({"sync": rst})(component)
    sim = Simulator(top)
    sim.add_clock(1e-8)
    if resets:
        sim.add_testbench(_resetter(rst, segments))
    for name in job.sources:
        sim.add_testbench(_source(getattr(component, name), name, segments, result))
    for name in job.sinks:
        sim.add_testbench(_sink(getattr(component, name), name, segments, result))
    if waves is not None:
        waves.parent.mkdir(parents=True, exist_ok=True)
        with sim.write_vcd(str(waves)):
            sim.run()
    else:
        sim.run()
    result.sim_wall_s = time.perf_counter() - start
    return result.finish(job)
