"""SpArch's memory-side golden model (golden/spgemm.py) and the real matrices
(workloads/matrices.py) against independent references: dense NumPy products, a textbook
W-ary Huffman with dummy inputs, brute-force optimal buffer replacement, and the sizes of
the matrix files as read directly with scipy.io."""
import functools
import heapq
import itertools

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from accelgen.golden import spgemm
from accelgen.workloads import matrices


def _random_int(rows, cols, density, seed):
    """Random int64 CSR with values in -3..3: some stored entries are explicit zeros."""
    rng = np.random.default_rng(seed)
    mask = rng.random((rows, cols)) < density
    r, c = np.nonzero(mask)
    return sp.csr_matrix((rng.integers(-3, 4, r.size), (r, c)), shape=(rows, cols), dtype=np.int64)


def _structure(m):
    """Dense 0/1 int64 array of the stored entries of ``m`` (explicit zeros count)."""
    m = sp.coo_matrix(m)
    d = np.zeros(m.shape, dtype=np.int64)
    d[m.row, m.col] = 1
    return d


def _block(m, rows, cols):
    """The leading rows x cols block of ``m``."""
    return matrices.slice_cols(matrices.slice_rows(m, rows), cols)


CASES = [
    ("random", lambda: (_random_int(40, 30, 0.15, 1), _random_int(30, 50, 0.1, 2))),
    ("random-empty-rows", lambda: (_random_int(25, 60, 0.05, 3), _random_int(60, 20, 0.08, 4))),
    ("minnesota-block", lambda: (_block(matrices.load("minnesota"), 300, 400),
                                 _block(matrices.load("minnesota"), 400, 600))),
    ("bar-block", lambda: (_block(matrices.load("bar"), 120, 200),
                           matrices.slice_rows(matrices.load("bar"), 200))),
]


@pytest.mark.parametrize("condensed", [True, False])
@pytest.mark.parametrize("name, make", CASES, ids=[c[0] for c in CASES])
def test_partial_streams_sum_to_the_product(name, make, condensed):
    a, b = make()
    streams = spgemm.partial_streams(a, b, condensed)
    assert len(streams) == (_structure(a).sum(axis=1).max() if condensed else a.shape[1])
    assert [k.size for k, _ in streams] == spgemm.partial_counts(a, b, condensed).tolist()
    for keys, _ in streams:
        assert np.all(np.diff(keys) > 0)  # sorted, and no key twice within one partial
    keys = np.concatenate([k for k, _ in streams])
    values = np.concatenate([v for _, v in streams])
    total = np.zeros(a.shape[0] * b.shape[1], dtype=np.int64)
    np.add.at(total, keys, values)
    dense = a.toarray().astype(np.int64) @ b.toarray().astype(np.int64)
    assert np.array_equal(total.reshape(dense.shape), dense)
    assert np.array_equal(total.reshape(dense.shape), (a @ b).toarray())
    # every structural product appears, including those whose values cancel or are zero
    symbolic = _structure(a) @ _structure(b) > 0
    assert np.array_equal(np.isin(np.arange(total.size), keys).reshape(dense.shape), symbolic)
    assert keys.size == (_structure(a) @ _structure(b)).sum()


def test_condensed_columns_hand_example():
    a = sp.csr_matrix(np.array([[1, 0, 2, 0], [0, 0, 0, 0], [0, 3, 0, 0], [4, 5, 6, 7]]))
    cols = [[x.tolist() for x in col] for col in spgemm.condensed_columns(a)]
    assert cols == [
        [[0, 2, 3], [0, 1, 0], [1, 3, 4]],
        [[0, 3], [2, 1], [2, 5]],
        [[3], [2], [6]],
        [[3], [3], [7]],
    ]


@pytest.mark.parametrize("name", ["minnesota", "bar", "local_disc_galerkin_diffusion"])
def test_condensed_count_is_max_row_nnz(name):
    a = matrices.load(name)
    structure = _structure(a)
    widest = max(len(np.flatnonzero(row)) for row in structure)
    assert len(spgemm.condensed_columns(a)) == widest
    assert len(spgemm.partial_streams(a, a)) == widest


def test_huffman_hand_example():
    # n=6, W=3: the first round takes ((6-2) mod 2) + 2 = 2 inputs, the smallest (1 and 2)
    rounds = spgemm.huffman_schedule([5, 1, 3, 2, 8, 4], 3)
    assert rounds == [[1, 3], [2, 6, 5], [0, 4, 7]]


def _textbook_huffman(sizes, ways):
    """W-ary Huffman by padding with zero-size dummies until (n-1) mod (W-1) == 0 and
    always merging W; returns the merged sizes in order, dummy-only rounds excluded."""
    pool = list(sizes) + [0] * ((ways - 1 - (len(sizes) - 1) % (ways - 1)) % (ways - 1))
    heapq.heapify(pool)
    merged = []
    while len(pool) > 1:
        size = sum(heapq.heappop(pool) for _ in range(ways))
        merged.append(size)
        heapq.heappush(pool, size)
    return merged


@pytest.mark.parametrize("ways", [2, 3, 4, 8, 64])
def test_huffman_matches_textbook_and_round_sizes(ways):
    rng = np.random.default_rng(ways)
    for n in list(range(2, 40)) + [189, 300]:
        sizes = rng.integers(0, 1000, n).tolist()
        rounds = spgemm.huffman_schedule(sizes, ways)
        assert len(rounds[0]) == (n - 2) % (ways - 1) + 2
        assert all(len(r) == ways for r in rounds[1:])
        assert sorted(itertools.chain(*rounds)) == list(range(n + len(rounds) - 1))
        assert len(rounds) == -(-(n - 1) // (ways - 1))
        all_sizes = list(sizes)
        for ids in rounds:  # fewest-first: no pooled input is smaller than a chosen one
            all_sizes.append(sum(all_sizes[i] for i in ids))
        assert all_sizes[n:] == _textbook_huffman(sizes, ways)


def test_huffman_uses_merged_size_callback():
    # with the bound, 3 = 1 + 2 sorts before 4; if merging 0 and 1 yields 9 it sorts last
    assert spgemm.huffman_schedule([1, 2, 4, 5], 2) == [[0, 1], [4, 2], [3, 5]]
    assert spgemm.huffman_schedule([1, 2, 4, 5], 2, lambda new, ids: 9) == [[0, 1], [2, 3], [4, 5]]


def test_trivial_schedules():
    assert spgemm.huffman_schedule([], 4) == [] and spgemm.huffman_schedule([7], 4) == []
    assert spgemm.in_order_schedule(5, 2) == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert spgemm.in_order_schedule(7, 3) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


def _optimal_misses(seq, capacity):
    """Fewest misses of any buffer of ``capacity`` rows that keeps the requested row,
    by exhaustive search over buffer contents."""
    @functools.cache
    def best(i, held):
        if i == len(seq):
            return 0
        if seq[i] in held:
            return best(i + 1, held)
        if len(held) < capacity:
            return 1 + best(i + 1, held | {seq[i]})
        return 1 + min(best(i + 1, (held - {v}) | {seq[i]}) for v in held)
    return best(0, frozenset())


def _lru_reference(seq, capacity):
    """LRU misses with a plain list, most recent last."""
    held, misses = [], 0
    for row in seq:
        if row in held:
            held.remove(row)
        else:
            misses += 1
            if len(held) == capacity:
                held.pop(0)
        held.append(row)
    return misses


def test_belady_is_optimal_and_never_worse_than_lru():
    rng = np.random.default_rng(7)
    for _ in range(300):
        seq = rng.integers(0, rng.integers(2, 7), rng.integers(1, 13))
        capacity = int(rng.integers(1, 4))
        belady = int(spgemm.belady_misses(seq, capacity).sum())
        lru = int(spgemm.lru_misses(seq, capacity).sum())
        assert belady == _optimal_misses(tuple(seq.tolist()), capacity)
        assert lru == _lru_reference(seq.tolist(), capacity)
        assert belady <= lru
    for _ in range(20):  # longer sequences with locality: still never worse than LRU
        seq = np.cumsum(rng.integers(-3, 4, 3000)) % 97
        for capacity in (4, 16, 64):
            belady = spgemm.belady_misses(seq, capacity).sum()
            assert belady <= spgemm.lru_misses(seq, capacity).sum()
            assert belady >= np.unique(seq).size  # every distinct row misses once


def test_next_use():
    assert spgemm.next_use(np.array([3, 1, 3, 3, 1, 2])).tolist() == [2, 4, 3, 6, 6, 6]


@pytest.mark.parametrize("condensed", [True, False])
@pytest.mark.parametrize("huffman", [True, False])
def test_traffic_components_against_streams(condensed, huffman):
    a = matrices.slice_rows(matrices.load("unit_square"), 120)
    b = matrices.load("unit_square")
    ways = 4
    t = spgemm.dram_traffic(a, b, ways, buffer_rows=0, condensed=condensed, huffman=huffman)
    structure_a, structure_b = _structure(a), _structure(b)
    assert t["a_read"] == 8 * structure_a.sum()
    # no buffer: every structural product's B entry is fetched once
    assert t["b_read"] == 8 * (structure_a.sum(axis=0) * structure_b.sum(axis=1)).sum()
    assert t["c_write"] == 12 * np.count_nonzero(structure_a @ structure_b)
    # spilled partials: merge the real streams along the schedule, count distinct keys
    streams = [k for k, _ in spgemm.partial_streams(a, b, condensed) if k.size]
    sizes = [k.size for k in streams]
    rounds = (spgemm.huffman_schedule(sizes, ways) if huffman
              else spgemm.in_order_schedule(len(streams), ways))
    spilled = 0
    for ids in rounds:
        streams.append(np.unique(np.concatenate([streams[i] for i in ids])))
        spilled += streams[-1].size
    spilled -= streams[-1].size  # the last round's output is C
    assert streams[-1].size * 12 == t["c_write"]
    assert t["partial_write"] == t["partial_read"] == 12 * spilled
    # a buffer holding all of B fetches each used row once
    big = spgemm.dram_traffic(a, b, ways, buffer_rows=b.shape[0], condensed=condensed,
                              huffman=huffman)
    used = structure_a.sum(axis=0) > 0
    assert big["b_read"] == 8 * structure_b.sum(axis=1)[used].sum()


@pytest.mark.parametrize("name, ways, buffer_rows", [
    ("minnesota", 4, 64), ("unit_square", 8, 64), ("airfoil", 8, 64),
])
def test_reductions_direction_on_real_matrices(name, ways, buffer_rows):
    a = matrices.load(name)
    r = spgemm.reductions(a, a, ways, buffer_rows)
    assert r["condensed"] > 1 and r["huffman"] > 1 and r["prefetch"] > 1
    assert r["overall"] == pytest.approx(r["condensed"] * r["huffman"] * r["prefetch"])
    assert r["bytes"]["sparch"]["b_read"] <= r["bytes"]["huffman"]["b_read"]


LOADED = {  # (n, nnz) of "A" in each file, as scipy.io reads it
    "minnesota": (2642, 6606), "airfoil": (260, 1682), "bar": (600, 23402),
    "helmholtz_2D": (2880, 52016), "knot": (239, 1667),
    "local_disc_galerkin_diffusion": (966, 35338), "recirc_flow": (225, 1849),
    "unit_cube": (125, 1473), "unit_square": (191, 1243),
}


@pytest.mark.parametrize("name", sorted(LOADED))
def test_loaders(name):
    a = matrices.load(name)
    n, nnz = LOADED[name]
    assert a.shape == (n, n) and a.nnz == nnz and a.dtype == np.int64
    assert matrices.SHAPES[name] == (n, nnz)
    assert set(np.unique(a.data).tolist()) <= set(range(-8, 0)) | set(range(1, 9))
    raw = sp.csr_matrix(scipy.io.loadmat(matrices.path(name))["A"])
    assert np.array_equal(_structure(a), _structure(raw))
    assert np.array_equal(a.toarray(), matrices.load(name).toarray())  # deterministic


def test_names_cover_the_sources():
    assert sorted(matrices.NAMES) == sorted(LOADED)


def test_induced_subgraph_is_connected_and_induced():
    a = matrices.load("minnesota")
    order = matrices.bfs_nodes(a, 200, seed=3)
    assert order.size == np.unique(order).size == 200
    sub = matrices.induced_subgraph(a, 200, seed=3)
    keep = np.sort(order)
    assert np.array_equal(sub.toarray(), a.toarray()[np.ix_(keep, keep)])
    pattern = _structure(a) + _structure(a).T > 0
    for i in range(1, order.size):  # breadth-first: each node touches an earlier one
        assert pattern[order[i], order[:i]].any()
    assert connected_components(sub, directed=False)[0] == 1


def test_scale_case_stats():
    a = matrices.scale_case()
    structure = _structure(a)
    assert a.shape == (1024, 1024) and structure.sum() == a.nnz == 136496
    products = (structure.sum(axis=0) * structure.sum(axis=1)).sum()
    assert products == spgemm.partial_counts(a, a).sum() == 19235732
    assert structure.sum(axis=1).max() == len(spgemm.partial_counts(a, a)) == 189
    assert matrices.stats(a) == {"n": 1024, "nnz": 136496, "max_row_nnz": 189,
                                 "partial_products": 19235732,
                                 "nnz_c": np.count_nonzero(structure.astype(float) @ structure)}


def test_exact_schedule_orders_by_merged_sizes():
    a = matrices.slice_rows(matrices.load("unit_cube"), 90)
    b = matrices.load("unit_cube")
    streams = [k for k, _ in spgemm.partial_streams(a, b) if k.size]

    def merged(new_id, ids):
        streams.append(np.unique(np.concatenate([streams[i] for i in ids])))
        return streams[-1].size

    rounds = spgemm.huffman_schedule([k.size for k in streams], 4, merged)
    spilled = sum(streams[len(streams) - len(rounds) + r].size for r in range(len(rounds) - 1))
    t = spgemm.dram_traffic(a, b, 4, 16, exact_schedule=True)
    assert t["rounds"] == len(rounds) and t["partial_write"] == 12 * spilled
