"""A simulation job: packed beats and patterns per stream port, and what came back.

The same job runs on every backend (Verilator, Icarus, the Amaranth simulator), so a
result never depends on which one produced it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

#: A job's cycle limit: its model's cycles at full rate times STALL_FACTOR (random
#: valid/ready patterns slow every stream to a fraction of its rate), plus SLACK_CYCLES
#: for pipeline fill and drain. Beyond it a run counts as hung.
STALL_FACTOR, SLACK_CYCLES = 20, 2000


def cycle_limit(model_cycles: float) -> int:
    """The cycle limit of a job whose cycle model gives ``model_cycles``."""
    return STALL_FACTOR * math.ceil(model_cycles) + SLACK_CYCLES


@dataclass
class Source:
    """Beats to offer on an input stream, with the valid pattern that gates them."""

    beats: list[int]
    valid: list[bool]


@dataclass
class Sink:
    """How many beats to collect from an output stream, and its ready pattern."""

    count: int
    ready: list[bool]


@dataclass
class Job:
    """Everything a backend needs: per-port streams and a cycle limit."""

    sources: dict[str, Source]
    sinks: dict[str, Sink]
    max_cycles: int


@dataclass
class Result:
    """Transfers as they happened: beats and the cycle of each transfer."""

    beats: dict[str, list[int]] = field(default_factory=dict)
    cycles: dict[str, list[int]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    timed_out: bool = False
    sim_cycles: int = 0
    sim_wall_s: float = 0.0

    def finish(self, job: Job) -> "Result":
        """Fill in empty ports, the last cycle seen, and whether the job ran out of cycles
        (a sink short of its count, or a source with beats left)."""
        for name in list(job.sources) + list(job.sinks):
            self.cycles.setdefault(name, [])
        for name in job.sinks:
            self.beats.setdefault(name, [])
        for name, sink in job.sinks.items():
            if len(self.beats[name]) > sink.count:
                self.violations.append(f"{name}: {len(self.beats[name]) - sink.count} beats "
                                       f"beyond the expected {sink.count}")
        self.sim_cycles = max((c for cs in self.cycles.values() for c in cs), default=0)
        self.timed_out = any(len(self.beats[n]) < s.count for n, s in job.sinks.items()) or \
            any(len(self.cycles[n]) < len(s.beats) for n, s in job.sources.items())
        return self

    @property
    def span(self) -> int:
        """Cycles from the first transfer on any port to the last one, inclusive."""
        stamps = [c for cs in self.cycles.values() for c in cs]
        return max(stamps) - min(stamps) + 1 if stamps else 0


def chain(jobs: list[Job], valid, ready) -> Job:
    """``jobs`` one after another in one simulation: each port's beats concatenated (a
    job's first beat right behind the previous job's last), sink counts and cycle limits
    summed; ``valid(port)`` and ``ready(port)`` give each port's pattern."""
    sources = {port: Source([b for job in jobs for b in job.sources[port].beats], valid(port))
               for port in jobs[0].sources}
    sinks = {port: Sink(sum(job.sinks[port].count for job in jobs), ready(port))
             for port in jobs[0].sinks}
    return Job(sources, sinks, sum(job.max_cycles for job in jobs))


def split(jobs: list[Job], beats: list[int], port: str) -> list[list[int]]:
    """The beats of a chained run's output ``port``, cut into each job's share."""
    parts, at = [], 0
    for job in jobs:
        parts.append(beats[at:at + job.sinks[port].count])
        at += job.sinks[port].count
    return parts
