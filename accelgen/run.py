"""``accelgen run``: simulate a block on given inputs, compare with golden, report."""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from accelgen.configure import UsageError
from accelgen.params.base import as_dict
from accelgen.registry import Block
from accelgen.sim import runner
from accelgen.sim.streams import always


def compare(expected: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> int:
    """Number of differing elements over all outputs (shape mismatch counts all)."""
    bad = 0
    for key, ref in expected.items():
        out = got.get(key)
        if out is None or np.shape(out) != np.shape(ref):
            bad += int(np.size(ref))
        else:
            bad += int(np.count_nonzero(np.asarray(out) != ref))
    return bad


def run_block(block: Block, cfg, inputs: dict[str, np.ndarray], sim: str = "verilator",
              valid=None, ready=None, waves: Path | None = None,
              workdir: Path | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Run ``inputs`` through the block's RTL on ``sim``; return (outputs, report)."""
    bench = block.bench
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="accelgen-") as tmp:
        if hasattr(bench, "simulate"):  # several jobs (e.g. merge rounds) on the same RTL
            job, result = bench.simulate(cfg, inputs, sim, valid or always(),
                                         ready or always(), Path(workdir or tmp), waves)
        else:
            job = bench.job(cfg, inputs, valid or always(), ready or always())
            result = runner.run(sim, block.component(cfg), block.name, job,
                                Path(workdir or tmp), waves)
    wall = time.perf_counter() - start
    got = {name: result.beats.get(name, []) for name in job.sinks}
    # A short run is decoded with zero beats in the gaps; the missing beats count as
    # mismatches, so a hang is reported (exit 1), not a crash.
    padded = {name: (got[name] + [0] * sink.count)[:sink.count]
              for name, sink in job.sinks.items()}
    outputs = bench.decode(cfg, inputs, _per_stream(padded))
    expected = bench.expected(cfg, inputs)
    mismatches = compare(expected, outputs) + sum(abs(len(got[name]) - sink.count)
                                                  for name, sink in job.sinks.items())
    error_flags = bench.flagged(cfg, inputs, _per_stream(got))
    model = bench.model(cfg, inputs)
    timed_outputs, timed_report = bench.timing(cfg, inputs, job, result)
    outputs.update(timed_outputs)
    cycles = result.span
    report = {
        "block": block.name, "sim": sim, "params": as_dict(cfg),
        "match": (mismatches == 0 and error_flags == 0 and not result.timed_out
                  and not result.violations),
        "mismatches": mismatches,
        "cycles": cycles,
        "model_cycles": model["model_cycles"],
        "bound_cycles": model["bound_cycles"],
        **timed_report,
        "input_beats": sum(len(src.beats) for src in job.sources.values()),
        "error_flags": error_flags,
        "stream_violations": len(result.violations),
        "timed_out": result.timed_out,
        "wall_s": round(wall, 3),
        "sim_wall_s": round(result.sim_wall_s, 3),
        "sim_cycles_per_s": round(result.sim_cycles / result.sim_wall_s, 1)
        if result.sim_wall_s else 0.0,
    }
    return outputs, report


def _per_stream(beats: dict[str, list[int]]):
    """What an adapter's decode and flagged take: the output stream's beats, or for a
    block with several output streams the beats by stream name."""
    return next(iter(beats.values())) if len(beats) == 1 else beats


def pick_sim(sim: str) -> str:
    """``sim`` if it can run here; Icarus (with a note on stderr) when Verilator cannot;
    else a UsageError naming why."""
    reason = runner.unavailable(sim)
    if reason and sim == "verilator" and not runner.unavailable("icarus"):
        print(f"accelgen: verilator unavailable ({reason}); using icarus", file=sys.stderr)
        return "icarus"
    if reason:
        raise UsageError(f"--sim {sim}: {reason}")
    return sim
