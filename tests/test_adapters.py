"""Every registered block's testbench adapter keeps the adapter protocol
(sim/adapter.py), with the parameters the callers pass; the shared framing check
against hand-made cases."""
import inspect

import numpy as np
import pytest

from accelgen.registry import BLOCKS
from accelgen.sim.adapter import Adapter, misplaced_lasts


def _params(function) -> list[str]:
    return list(inspect.signature(function).parameters)


@pytest.mark.parametrize("name", list(BLOCKS))
def test_every_adapter_keeps_the_protocol(name):
    adapter = BLOCKS[name].bench
    assert isinstance(adapter, Adapter)
    for member, want in inspect.getmembers(Adapter, inspect.isfunction):
        if not member.startswith("_"):
            assert _params(getattr(adapter, member)) == _params(want)[1:], member
    assert hasattr(adapter, "job") or hasattr(adapter, "simulate")
    if hasattr(adapter, "job"):
        assert _params(adapter.job) == ["cfg", "inputs", "valid", "ready", "max_cycles"]
    if hasattr(adapter, "invariants"):
        assert _params(adapter.invariants) == ["m", "dut"]
    if hasattr(adapter, "simulate"):
        assert _params(adapter.simulate) == ["cfg", "inputs", "sim", "valid", "ready",
                                             "workdir", "waves"]


@pytest.mark.parametrize("last, frames, wrong", [
    ([0, 1, 0, 0, 1], [2, 3], 0),
    ([0, 0, 0, 0, 1], [2, 3], 1),         # a frame's end unmarked
    ([1, 1, 0, 0, 1], [2, 3], 1),         # a beat marked inside a frame
    ([0, 1, 1], [2, 0, 1], 0),            # an empty frame ends where the one before did
    ([0, 1], [2, 3], 0),                  # frames beyond the beats received are not counted
    ([], [], 0),
])
def test_misplaced_lasts(last, frames, wrong):
    assert misplaced_lasts(np.array(last, np.int64), frames) == wrong
