"""The top-k golden rule against an independent heap selection, and SpAtten's latency
model against the means the paper's own model reports (papers.md §1)."""
import heapq

import numpy as np
import pytest

from accelgen.golden import topk


def _reference(row, k):
    """heapq: largest by (value, -index), so ties prefer the lower index; then sorted."""
    best = heapq.nlargest(k, range(len(row)), key=lambda i: (int(row[i]), -i))
    return sorted(best)


@pytest.mark.parametrize("n, k, lo, hi", [
    (1, 1, 0, 10), (7, 3, 0, 3), (100, 10, -5, 5), (257, 32, 0, 65536), (64, 64, 0, 4),
    (64, 1, -2**31, 2**31), (16, 40, 0, 2),
])
def test_select_matches_heap_reference(n, k, lo, hi):
    rng = np.random.default_rng(n * 1000 + k)
    for _ in range(20):
        row = rng.integers(lo, hi, n)
        assert topk.select(row, k).tolist() == _reference(row, k)


def test_select_corner_rows():
    assert topk.select(np.full(10, 7), 3).tolist() == [0, 1, 2]  # all equal: lowest indices
    assert topk.select(np.arange(10), 3).tolist() == [7, 8, 9]  # ascending
    assert topk.select(np.arange(10)[::-1], 3).tolist() == [0, 1, 2]  # descending
    assert topk.select(np.array([-3, -1, -2]), 1).tolist() == [1]  # negative values
    assert topk.select(np.array([5, 1]), 9).tolist() == [0, 1]  # k >= n: the whole row


def test_select_rows_per_row_k():
    scores = np.array([[1, 9, 3, 9], [4, 4, 4, 0]])
    idx, val = topk.select_rows(scores, np.array([2, 1]))
    assert [i.tolist() for i in idx] == [[1, 3], [0]] and [v.tolist() for v in val] == [[9, 9], [4]]


@pytest.mark.parametrize("n, k, paper_mean", [(256, 32, 74), (1024, 128, 220),
                                              (1024, 512, 256), (4096, 32, 575)])
def test_spatten_model_reproduces_the_paper_means(n, k, paper_mean):
    mean = topk.spatten_model_mean(n, k, lanes=16, trials=200)
    assert abs(mean - paper_mean) <= 0.05 * paper_mean
    assert mean > topk.bound_cycles(n, 16)


@pytest.mark.parametrize("n, k", [(256, 32), (1024, 128), (4096, 32)])
def test_quickselect_pivot_rule_lands_near_the_papers_model(n, k):
    """The engine's LFSR pivots, in SpAtten's accounting, within 10% of its model mean."""
    ours, paper = topk.quickselect_rounds_mean(n, k, trials=100), topk.spatten_model_mean(n, k)
    assert abs(ours - paper) <= 0.1 * paper, (ours, paper)


@pytest.mark.parametrize("width", [1, 2, 5, 16])
def test_float_keys_keep_order_and_are_one_to_one(width):
    u = np.arange(1 << width)
    keys = topk.float_keys(u, width)
    assert (np.diff(keys) > 0).all()  # strictly increasing: order kept, no collisions
    assert keys.max() < 1 << (width.bit_length() + width - 1)


@pytest.mark.parametrize("kind", ["random", "ascending", "ties"])
def test_fast_filter_never_drops_a_selected_element(kind):
    """Every selected element survives the running-bound filter (the filter is exact)."""
    rng = np.random.default_rng(3)
    for _ in range(30):
        row = {"random": rng.integers(0, 1 << 16, 300),
               "ascending": np.sort(rng.integers(0, 1 << 16, 300)),
               "ties": rng.integers(0, 3, 300)}[kind]
        k = int(rng.integers(1, 300))
        plan = topk.fast_row_plan(row, k, 16, 16, False)
        assert plan["dropped_selected"] == 0 and plan["survivors"] >= k
        assert plan["final_row"] <= (plan["survivors"] - 1) // 16


def test_select_smallest_matches_a_sort():
    """select(..., smallest=True): the k smallest, ties to the lower index, as a stable
    argsort of the values picks them."""
    rng = np.random.default_rng(3)
    for row in [rng.integers(0, 5, 30), rng.integers(-9, 9, 17), np.zeros(8, np.int64)]:
        for k in (1, 4, len(row), len(row) + 2):
            want = sorted(np.argsort(row, kind="stable")[:k].tolist())
            assert topk.select(row, k, smallest=True).tolist() == want
