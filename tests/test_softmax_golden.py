"""The softmax golden model against float64 softmax: on real MiniLM attention rows (the
bound of #20: max abs error <= 2^-12) and on rows built to be hard (long flat rows,
one dominant score over a long tail, every fractional-bit count)."""
import numpy as np
import pytest

from accelgen.golden import softmax
from accelgen.sim.softmax import real_workload

MAX_ERROR = 2.0 ** -12


def _reference(scores, frac):
    x = np.asarray(scores, np.float64) / 2.0 ** frac
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _error(scores, frac):
    got = softmax.softmax_rows(scores, frac) / 2.0 ** softmax.PROB_FRAC
    return np.abs(got - _reference(scores, frac))


@pytest.mark.parametrize("n, frac", [(128, 8), (512, 8), (1024, 10), (256, 4)])
def test_real_attention_rows_are_within_the_bound(n, frac):
    work = real_workload(rows=64, n=n, frac=frac)
    error = _error(work["scores"], frac)
    assert error.max() <= MAX_ERROR
    assert error.mean() <= 2.0 ** -16  # a quarter of a unit of the 16 fractional bits


@pytest.mark.parametrize("frac", range(0, 14))
def test_hard_rows_at_every_frac(frac):
    rng = np.random.default_rng(frac)
    lo, hi = -(1 << 15), (1 << 15) - 1
    flat = rng.integers(-4, 5, (2, 1024))                       # a flat row of 1024
    tail = np.full((2, 1024), hi - (3 << frac))                 # one at 1 - e^-3 ...
    tail[:, 7] = hi                                              # ... over 1023 small ones
    near = np.clip(rng.integers(-(16 << frac), 1, (4, 1024)), lo, hi)
    rows = np.clip(np.concatenate([flat, tail, near]), lo, hi)
    assert _error(rows, frac).max() <= MAX_ERROR


def test_exact_cases():
    """A one-score row is 1; equal scores split evenly (up to the reciprocal's floor);
    a score 16 or more below the maximum is 0."""
    assert softmax.softmax_row(np.array([123]), 8).tolist() == [1 << 16]
    assert softmax.softmax_row(np.array([5, 5, 5, 5]), 0).tolist() == [1 << 14] * 4
    assert softmax.softmax_row(np.array([0, -(16 << 3), -(16 << 3) + 1]), 3)[1] == 0
    e, _ = softmax.exponentials(np.array([7, 7 - (16 << 2)]), 2)
    assert e.tolist() == [1 << 24, 0]


def test_cycle_model_is_one_beat_a_cycle_after_its_fill():
    """Long runs of rows approach the bound (one beat a cycle); a single row takes its
    three passes' beats plus the pipeline."""
    many = softmax.cycles(1000, 128, 16)["total"]
    assert softmax.bound_cycles(1000, 128, 16) <= many <= softmax.bound_cycles(1000, 128, 16) + 100
    one = softmax.cycles(1, 256, 16)
    assert one["total"] == one["latency"] >= 3 * 16
