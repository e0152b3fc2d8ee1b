"""The stream players and checkers can fail: deliberately broken DUTs are caught.

Each DUT is a one-beat stream buffer; the correct one must pass on every simulator,
and each broken variant must be flagged by the player that watches for its fault.
"""
import numpy as np
import pytest
from buffers import Buffer

from accelgen.sim import runner
from accelgen.sim.job import Job, Sink, Source
from accelgen.sim.streams import fixed, random_pattern


def _job(beats):
    return Job(sources={"i": Source(beats, random_pattern(0.7, seed=4))},
               sinks={"o": Sink(len(beats), fixed([1, 0, 0, 1, 0]))}, max_cycles=2000)


@pytest.mark.parametrize("fault", [None, "unstable", "drop", "duplicate"])
def test_players_catch_broken_buffers(any_sim, fault, tmp_path):
    beats = [int(x) for x in np.random.default_rng(0).integers(0, 256, 40)]
    result = runner.run(any_sim, Buffer(fault), "buffer", _job(beats), tmp_path)
    faithful = result.beats["o"] == beats and not result.timed_out
    if fault is None:
        assert faithful and not result.violations
        assert len(result.cycles["i"]) == len(beats)
    elif fault == "unstable":
        assert result.violations and "changed before ready" in result.violations[0]
    elif fault == "drop":
        assert result.timed_out and len(result.beats["o"]) < len(beats)
    else:
        assert not faithful and any("beyond the expected" in v for v in result.violations)
