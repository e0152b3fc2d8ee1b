"""golden/merger.py against independent computations: the merge rule, saturation, the
Huffman round schedule."""
import heapq
from collections import Counter

import numpy as np

from accelgen.golden import merger


def test_merge_sums_equal_keys_and_keeps_zero_sums():
    streams = [(np.array([1, 3, 3, 9]), np.array([5, 1, 2, -4])),
               (np.array([], np.int64), np.array([], np.int64)),
               (np.array([3, 9, 12]), np.array([-3, 4, 7]))]
    keys, values = merger.merge(streams, (-128, 127), saturate=True)
    assert keys.tolist() == [1, 3, 9, 12]
    assert values.tolist() == [5, 0, 0, 7]  # 1 + 2 - 3 and -4 + 4 stay as entries


def test_merge_clamps_only_the_final_sum():
    """Saturation clamps the exact sum (an intermediate excursion does not stick)."""
    streams = [(np.array([7, 7]), np.array([127, 127])), (np.array([7]), np.array([-128]))]
    _, values = merger.merge(streams, (-128, 127), saturate=True)
    assert values.tolist() == [126]
    streams = [(np.array([7] * 3), np.array([100] * 3))]
    assert merger.merge(streams, (-128, 127), saturate=True)[1].tolist() == [127]
    assert merger.overflows(streams, (-128, 127))
    assert not merger.overflows(streams, (-512, 511))


def test_merge_matches_a_counter_on_random_streams():
    rng = np.random.default_rng(0)
    streams = [(np.sort(rng.integers(0, 50, n)), rng.integers(-9, 10, n))
               for n in rng.integers(0, 30, 12)]
    total = Counter()
    for k, v in streams:
        for key, value in zip(k.tolist(), v.tolist()):
            total[key] += value
    keys, values = merger.merge(streams, (-(1 << 31), (1 << 31) - 1), saturate=False)
    assert keys.tolist() == sorted(total)
    assert values.tolist() == [total[k] for k in sorted(total)]


def test_schedule_first_round_then_full_rounds_fewest_first():
    sizes = [9, 0, 30, 4, 4, 17, 1, 25, 8, 3, 11, 2]
    rounds = merger.schedule(sizes, 5)
    assert [len(r) for r in rounds] == [(12 - 2) % 4 + 2, 5, 5]
    # an independent heap simulation of "merge the smallest first"
    pool = [(s, i) for i, s in enumerate(sizes)]
    heapq.heapify(pool)
    want, take, new = [], 4, len(sizes)
    while len(pool) > 1:
        picked = [heapq.heappop(pool) for _ in range(take)]
        want.append(sorted(i for _, i in picked))
        heapq.heappush(pool, (sum(s for s, _ in picked), new))
        new, take = new + 1, 5
    assert [sorted(r) for r in rounds] == want
    assert rounds[-1][-1] == len(sizes) + len(rounds) - 2  # the final round takes the previous result


def test_schedule_single_round_cases():
    assert merger.schedule([3], 4) == [[0]]
    assert sorted(merger.schedule([3, 1, 2], 4)[0]) == [0, 1, 2]
    assert len(merger.schedule([1] * 64, 64)) == 1 and len(merger.schedule([1] * 65, 64)) == 2


def test_run_rounds_equals_one_merge_without_overflow():
    rng = np.random.default_rng(1)
    streams = [(np.sort(rng.integers(0, 40, n)), rng.integers(-5, 6, n)) for n in range(1, 14)]
    rng_ = (-1000, 1000)
    got = merger.run_rounds(streams, 3, rng_, True)
    want = merger.merge(streams, rng_, True)
    assert got[0].tolist() == want[0].tolist() and got[1].tolist() == want[1].tolist()
