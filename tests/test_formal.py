"""Formal stream-rule proofs: every registered block passes, a broken buffer fails."""
import pytest
from buffers import Buffer

from accelgen.registry import BLOCKS
from sim.formal import prove


CONFIGS = [(block, label, cfg) for block in BLOCKS.values()
           for label, cfg in block.formal_configs()]


@pytest.mark.parametrize("block, label, cfg", CONFIGS, ids=[c[1] for c in CONFIGS])
def test_every_block_keeps_the_stream_rules(block, label, cfg, tmp_path):
    outcome = prove(block.component(cfg), label, tmp_path,
                    depth=block.formal_test_depth.get(label, 20))
    assert outcome.passed, outcome.line(label)


def test_a_correct_buffer_is_proven_by_induction(tmp_path):
    outcome = prove(Buffer(), "buffer", tmp_path, depth=10, mode="prove")
    assert outcome.passed, outcome.line("buffer")


def test_a_buffer_that_changes_a_stalled_beat_fails_with_a_trace(tmp_path):
    outcome = prove(Buffer("unstable"), "unstable", tmp_path, depth=10)
    assert not outcome.passed and outcome.trace is not None and outcome.trace.exists()
