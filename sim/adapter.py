"""The testbench adapter protocol: what ``sim/<block>.py`` provides for its block, and
the pieces every adapter shares (framing checks, jobs that take several merge rounds).

``accelgen run``, the bench, the demo and the tests drive a block only through these
members (``Block.bench`` is the adapter module); ``tests/test_adapters.py`` checks that
every registered block's adapter has them, with these parameters.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import numpy as np
from amaranth.lib import wiring

from . import runner
from .job import Job, Result


@runtime_checkable
class Adapter(Protocol):
    """A block's testbench adapter. Its run is one of two: ``job(cfg, inputs, valid,
    ready, max_cycles=None)`` -> the Job of every input beat and the expected output
    beat counts with their stall patterns, which ``accelgen run`` runs once; or, for a
    block whose answer takes several jobs on the same RTL, ``simulate(cfg, inputs, sim,
    valid, ready, workdir, waves)`` -> (the final job, one Result over all of them),
    which ``accelgen run`` calls instead. A block with a real workload also has
    ``real_workload(**options)`` -> run inputs and ``WORKLOAD_OPTIONS`` (the argparse
    keyword arguments of each option): ``accelgen workloads BLOCK`` is built from them.
    A block with formal invariants has ``invariants(m, dut)``: ``Assume``s on what a
    legal producer sends and ``Assert``s on what the block promises, added to the
    proof's module ``m`` (monitors of the ports, written from the contract;
    sim/invariants.py)."""

    #: the ``accelgen run`` contract: input arrays, output arrays
    INPUTS: str
    OUTPUTS: str

    def component(self, cfg) -> wiring.Component:
        """A fresh component for ``cfg``."""

    def check_inputs(self, cfg, arrays) -> dict:
        """The run inputs, validated (a one-line InputError names the field)."""

    def decode(self, cfg, inputs, beats) -> dict:
        """Output arrays from the output beats (a list; for a block with several output
        streams, a dict of lists by stream name)."""

    def flagged(self, cfg, inputs, beats) -> int:
        """Output beats the hardware marked as errors or framed wrongly (``beats`` as for
        ``decode``)."""

    def expected(self, cfg, inputs) -> dict:
        """The golden model's output arrays."""

    def timing(self, cfg, inputs, job_: Job, result: Result) -> tuple[dict, dict]:
        """(extra output arrays, extra report fields) from the transfer cycles."""

    def model(self, cfg, inputs) -> dict:
        """``model_cycles`` and ``bound_cycles`` (and block-specific model values)."""

    def default_workload(self, cfg, seed: int = 0) -> dict:
        """The inputs ``accelgen demo`` runs."""

    def soak_workload(self, cfg, items: int, seed: int = 0) -> dict:
        """Inputs of at least ``items`` input beats for ``accelgen soak``."""


def row_beat_fields(rows: np.ndarray, lanes: int) -> dict[str, np.ndarray]:
    """The beats of rows [R, n] of items, ``lanes`` a beat: ``items`` [R ceil(n/P), P]
    (each row's final beat zero-padded), ``count`` (P, but n - (beats - 1) P on a row's
    final beat) and ``last`` (on it)."""
    r, n = rows.shape
    beats = -(-n // lanes)
    padded = np.zeros((r, beats * lanes), np.int64)
    padded[:, :n] = rows
    counts = np.full(beats, lanes)
    counts[-1] = n - (beats - 1) * lanes
    return {"items": padded.reshape(r * beats, lanes), "count": np.tile(counts, r),
            "last": np.tile(np.arange(beats) == beats - 1, r).astype(np.int64)}


def misplaced_lasts(last: np.ndarray, frame_beats) -> int:
    """Beats whose ``last`` flag is wrong, for frames of ``frame_beats`` beats each in
    order: ``last`` belongs on every frame's final beat and nowhere else (frames beyond
    the beats received are not counted)."""
    want = np.zeros(len(last), np.int64)
    ends = np.cumsum(np.asarray(list(frame_beats), np.int64))
    want[ends[(ends > 0) & (ends <= len(last))] - 1] = 1
    return int(np.count_nonzero(np.asarray(last) != want))


def add_round(total: Result, got: Result, output: str = "o") -> None:
    """Append one job's result to ``total``: cycle stamps continue after the jobs
    before (so the span is the sum of the spans); the output is the latest job's."""
    offset = total.span
    start = min((c for cs in got.cycles.values() for c in cs), default=0)
    for name, cs in got.cycles.items():
        total.cycles.setdefault(name, []).extend(c - start + offset for c in cs)
    total.beats[output] = got.beats[output]
    total.violations += got.violations
    total.timed_out |= got.timed_out
    total.sim_wall_s += got.sim_wall_s


def run_rounds(sim: str, dut: wiring.Component, module: str, rounds: list,
               round_job: Callable[[list], Job], merged: Callable[[list[int]], None],
               workdir: Path, waves: Path | None) -> tuple[Job, Result]:
    """Run one job a round on the same RTL: ``round_job(ids)`` builds round r's job from
    the ids in ``rounds[r]``; ``merged(beats)`` takes its output beats (which later
    rounds may name). Returns the final round's job and one Result over all rounds,
    its cycle stamps running on across them."""
    total, final_job = Result(), None
    for r, ids in enumerate(rounds):
        final_job = round_job(ids)
        got = runner.run(sim, dut, module, final_job, workdir / f"round{r}", waves)
        merged(got.beats["o"])
        add_round(total, got)
    total.sim_cycles = total.span
    return final_job, total
