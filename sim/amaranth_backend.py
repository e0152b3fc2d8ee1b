"""Run a :class:`~sim.job.Job` in Amaranth's own simulator (no compiler, instant start).

The same players as sim/player.py, written as async testbenches: sources gate valid
with their pattern and hold each beat until it is taken; sinks gate ready with theirs,
log every transfer with its cycle and check the outputs' stream rules. Cycle numbers
and pattern phases match the Verilog players, so all backends report the same cycles.
"""
from __future__ import annotations

import time
from pathlib import Path

from amaranth import Value
from amaranth.sim import Simulator

from .job import Job, Result
from .player import SETTLE_CYCLES
from .streams import PATTERN_CYCLES, materialize


def _source(port, name, beats, pattern, result, limit):
    async def process(ctx):
        await ctx.tick()  # like the Verilog player, idle in cycle 0
        cycle = 1
        log = result.cycles.setdefault(name, [])
        for beat in beats:
            while not pattern[cycle % PATTERN_CYCLES]:
                ctx.set(port.valid, 0)
                await ctx.tick()
                cycle += 1
            ctx.set(Value.cast(port.payload), beat)
            ctx.set(port.valid, 1)
            while cycle < limit:
                _, _, ready = await ctx.tick().sample(port.ready)
                cycle += 1
                if ready:
                    log.append(cycle - 1)
                    break
            if cycle >= limit:
                return
        ctx.set(port.valid, 0)
    return process


def _sink(port, name, count, pattern, result, limit):
    async def process(ctx):
        beats = result.beats.setdefault(name, [])
        log = result.cycles.setdefault(name, [])
        held = None
        await ctx.tick()  # like the Verilog player, not ready in cycle 0
        cycle, end = 0, limit if count else SETTLE_CYCLES + 1
        while (cycle := cycle + 1) < end:
            ready = pattern[cycle % PATTERN_CYCLES]
            ctx.set(port.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(port.valid, Value.cast(port.payload))
            if held is not None and (not valid or payload != held):
                result.violations.append(
                    f"{name}: beat withdrawn or changed before ready at cycle {cycle}")
            held = payload if valid and not ready else None
            if valid and ready:
                beats.append(payload)
                log.append(cycle)
                if len(beats) == count:  # stay open a while: surplus beats are caught
                    end = min(end, cycle + 1 + SETTLE_CYCLES)
        ctx.set(port.ready, 0)
    return process


def run_amaranth(component, job: Job, waves: Path | None = None) -> Result:
    """Simulate ``component`` cycle by cycle in Python; slow but needs no toolchain."""
    result = Result()
    start = time.perf_counter()
    sim = Simulator(component)
    sim.add_clock(1e-8)
    for name, src in job.sources.items():
        sim.add_testbench(_source(getattr(component, name), name, src.beats,
                                  materialize(src.valid), result, job.max_cycles))
    for name, snk in job.sinks.items():
        sim.add_testbench(_sink(getattr(component, name), name, snk.count,
                                materialize(snk.ready), result, job.max_cycles))
    if waves is not None:
        waves.parent.mkdir(parents=True, exist_ok=True)
        with sim.write_vcd(str(waves)):
            sim.run()
    else:
        sim.run()
    result.sim_wall_s = time.perf_counter() - start
    return result.finish(job)
