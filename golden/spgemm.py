"""Memory-side golden model of SpArch's outer-product SpGEMM (papers.md §2).

C = A @ B = sum over columns k of A of the outer product A[:, k] * B[k, :]. Each outer
product is a partial matrix, streamed as (key, value) with key = row * B.shape[1] + col in
ascending order; the merger sums the partial streams. With the condensed representation
(``condensed=True``) partial matrix c is instead built from condensed column c of A: the
c-th stored nonzero of every row of A (rows with fewer nonzeros skip). There are then max
row nnz(A) partial matrices instead of A.shape[1].

DRAM-traffic model (``dram_traffic``), byte sizes:

* A: ``A_ENTRY_BYTES`` = 8 per nonzero (4-byte index + 4-byte value), read once: every
  partial matrix is generated once, on the fly, in the merge round that consumes it
  (pointer arrays are not counted).
* B: ``B_ENTRY_BYTES`` = 8 per nonzero of a fetched row (4-byte column + 4-byte value).
  Row k of B is requested once per nonzero of A in column k. An on-chip buffer holds
  ``buffer_rows`` whole rows; a request that misses fetches the row from DRAM.
* Partial results: ``PARTIAL_ENTRY_BYTES`` = 12 per (row, col, value) entry. The output of
  every merge round but the last is written to DRAM once and read back once. The last
  round's output is C, written once at the same 12 bytes per entry.

Sizes: leaf partial matrices have no duplicate keys, so their size is exact from B's row
lengths. A merged matrix is smaller than the sum of its inputs when keys coincide; the
traffic model always counts the exact merged size (nnz of the symbolic product of the
leaves it covers). The Huffman scheduler orders by the upper bound (sum of input sizes,
what is known before merging) unless ``exact_schedule=True``.
"""
from __future__ import annotations

import heapq
from collections import OrderedDict, deque

import numpy as np
import scipy.sparse as sp

from accelgen.golden.merger import MergedSize, huffman_schedule

A_ENTRY_BYTES = 8
B_ENTRY_BYTES = 8
PARTIAL_ENTRY_BYTES = 12
TRAFFIC_KEYS = ("a_read", "b_read", "partial_write", "partial_read", "c_write")  # add to "total"

Stream = tuple[np.ndarray, np.ndarray]


def canonical(a: sp.spmatrix) -> sp.csr_matrix:
    """CSR copy with sorted column indices and no duplicate entries (explicit zeros kept)."""
    a = sp.csr_matrix(a, copy=True)
    a.sum_duplicates()
    return a


def _labels(a: sp.csr_matrix, condensed: bool) -> np.ndarray:
    """Partial-matrix index of every stored entry of canonical ``a`` (CSR order): its
    position within its row when condensed, else its column."""
    if not condensed:
        return a.indices.astype(np.int64)
    starts = np.repeat(a.indptr[:-1], np.diff(a.indptr))
    return np.arange(a.nnz, dtype=np.int64) - starts


def _n_partials(a: sp.csr_matrix, condensed: bool) -> int:
    """Number of partial matrices: max row nnz (condensed) or number of columns."""
    return int(np.diff(a.indptr).max(initial=0)) if condensed else a.shape[1]


def _entries(a: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, value) of every stored entry of canonical ``a``, in CSR order."""
    rows = np.repeat(np.arange(a.shape[0], dtype=np.int64), np.diff(a.indptr))
    return rows, a.indices.astype(np.int64), a.data.astype(np.int64)


def _columns(a: sp.csr_matrix, condensed: bool) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per partial matrix, the (row, k, value) entries of A it is built from, rows ascending."""
    n = _n_partials(a, condensed)
    if n == 0:
        return []
    labels = _labels(a, condensed)
    order = np.argsort(labels, kind="stable")  # stable: rows stay ascending in each group
    bounds = np.cumsum(np.bincount(labels, minlength=n))[:-1]
    rows, ks, vals = _entries(a)
    return list(zip(*(np.split(x[order], bounds) for x in (rows, ks, vals))))


def condensed_columns(a: sp.spmatrix) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Condensed columns of A: column c holds the c-th nonzero of every row, as arrays
    (row, k = original column, value), rows ascending. len = max row nnz of A."""
    return _columns(canonical(a), condensed=True)


def _expand(rows: np.ndarray, ks: np.ndarray, vals: np.ndarray, b: sp.csr_matrix) -> Stream:
    """Outer product of the entries (rows, ks, vals) of A with rows ks of canonical B.
    Rows are distinct and ascending and B's rows are sorted, so keys come out ascending."""
    lens = np.diff(b.indptr)[ks]
    owner = np.repeat(np.arange(ks.size), lens)
    offsets = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
    at = b.indptr[ks][owner] + offsets
    keys = rows[owner] * b.shape[1] + b.indices[at]
    return keys.astype(np.int64), vals[owner] * b.data[at].astype(np.int64)


def partial_streams(a: sp.spmatrix, b: sp.spmatrix, condensed: bool = True) -> list[Stream]:
    """The sorted partial-product streams (key, value), one per condensed column of A
    (or per original column), key = row * B.shape[1] + col, value = A[r,k] * B[k,col]."""
    a, b = canonical(a), canonical(b)
    return [_expand(rows, ks, vals, b) for rows, ks, vals in _columns(a, condensed)]


def partial_counts(a: sp.spmatrix, b: sp.spmatrix, condensed: bool = True) -> np.ndarray:
    """Length of every partial stream, without building them."""
    a, b = canonical(a), canonical(b)
    weights = np.diff(b.indptr)[a.indices]
    return np.bincount(_labels(a, condensed), weights, _n_partials(a, condensed)).astype(np.int64)


def in_order_schedule(n: int, ways: int) -> list[list[int]]:
    """Baseline schedule without size ordering: a FIFO of ids; each round merges the first
    ``ways`` (or all that remain) and appends its output (id n, n+1, ...) at the back."""
    if ways < 2:
        raise ValueError("ways must be >= 2")
    queue = deque(range(n))
    rounds: list[list[int]] = []
    while len(queue) > 1:
        ids = [queue.popleft() for _ in range(min(ways, len(queue)))]
        queue.append(n + len(rounds))
        rounds.append(ids)
    return rounds


def next_use(seq: np.ndarray) -> np.ndarray:
    """For each position, the next position holding the same value (len(seq) if none)."""
    seq = np.asarray(seq)
    nxt = np.full(seq.size, seq.size, dtype=np.int64)
    order = np.argsort(seq, kind="stable")
    same = seq[order[1:]] == seq[order[:-1]]
    nxt[order[:-1][same]] = order[1:][same]
    return nxt


def belady_misses(seq: np.ndarray, capacity: int) -> np.ndarray:
    """Miss mask of a buffer of ``capacity`` rows that evicts the row whose next use is
    farthest in the future (Belady's MIN; the requested row always enters). O(n log n)."""
    nxt = next_use(seq)
    miss = np.ones(len(seq), dtype=bool)
    if capacity <= 0:
        return miss
    held: dict[int, int] = {}  # row -> its next use
    heap: list[tuple[int, int]] = []  # (-next use, row), stale entries skipped lazily
    for i, (row, nu) in enumerate(zip(np.asarray(seq).tolist(), nxt.tolist())):
        if row in held:
            miss[i] = False
        elif len(held) >= capacity:
            while True:
                far, victim = heapq.heappop(heap)
                if held.get(victim) == -far:
                    del held[victim]
                    break
        held[row] = nu
        heapq.heappush(heap, (-nu, row))
    return miss


def lru_misses(seq: np.ndarray, capacity: int) -> np.ndarray:
    """Miss mask of a least-recently-used buffer of ``capacity`` rows."""
    miss = np.ones(len(seq), dtype=bool)
    if capacity <= 0:
        return miss
    held: OrderedDict[int, None] = OrderedDict()
    for i, row in enumerate(np.asarray(seq).tolist()):
        if row in held:
            miss[i] = False
            held.move_to_end(row)
            continue
        if len(held) >= capacity:
            held.popitem(last=False)
        held[row] = None
    return miss


def _pattern(a: sp.csr_matrix) -> sp.csr_matrix:
    """Structure of canonical ``a`` with every stored entry set to 1.0 (so no cancellation)."""
    return sp.csr_matrix((np.ones(a.nnz), a.indices, a.indptr), shape=a.shape)


class ExactMergedSize:
    """``merged_size`` callback giving the exact nnz of a merged matrix: the symbolic
    product of the entries of A that its leaf partial matrices are built from, with B."""

    def __init__(self, a: sp.spmatrix, b: sp.spmatrix, condensed: bool, leaves: np.ndarray):
        """``leaves[i]`` is the partial-matrix index (column label) of input id i."""
        a = canonical(a)
        self._a, self._b = _pattern(a), _pattern(canonical(b))
        self._labels = _labels(a, condensed)
        self._cover = {i: np.array([label]) for i, label in enumerate(np.asarray(leaves).tolist())}
        self._sizes: dict[int, int] = {}

    def __call__(self, new_id: int, ids: list[int]) -> int:
        if new_id not in self._sizes:
            cover = np.concatenate([self._cover[i] for i in ids])
            self._cover[new_id] = cover
            sub = self._a.copy()
            sub.data = np.isin(self._labels, cover).astype(np.float64)
            sub.eliminate_zeros()
            self._sizes[new_id] = (sub @ self._b).nnz
        return self._sizes[new_id]


def _requests(a: sp.csr_matrix, b: sp.csr_matrix, condensed: bool, leaves: np.ndarray,
              rounds: list[list[int]]) -> np.ndarray:
    """B-row request sequence: rounds in order; within a round the merger advances all its
    leaf partial matrices row by row together, so requests go by (row of A, partial index).
    Requests for empty rows of B are skipped (their length is known, nothing is fetched)."""
    labels = _labels(a, condensed)
    round_of = np.zeros(_n_partials(a, condensed), dtype=np.int64)
    for r, ids in enumerate(rounds):
        for i in ids:
            if i < leaves.size:
                round_of[leaves[i]] = r
    rows, ks, _ = _entries(a)
    keep = np.diff(b.indptr)[ks] > 0
    order = np.lexsort((labels[keep], rows[keep], round_of[labels[keep]]))
    return ks[keep][order]


def dram_traffic(a: sp.spmatrix, b: sp.spmatrix, ways: int = 64, buffer_rows: int = 128,
                 condensed: bool = True, huffman: bool = True, prefetch: bool = True,
                 exact_schedule: bool = False) -> dict[str, int]:
    """DRAM bytes of C = A @ B on SpArch's outer-product dataflow (byte sizes: module doc).

    Partial matrices (condensed or original columns; empty ones are skipped) are merged
    ``ways`` at a time, by the Huffman schedule or the in-order baseline. B rows pass
    through a buffer of ``buffer_rows`` rows: with ``prefetch`` it evicts by Belady from
    A's look-ahead; without, it is LRU of the same capacity, so the comparison isolates the
    look-ahead (``buffer_rows=0`` gives the no-buffer case: every request is fetched).
    """
    a, b = canonical(a), canonical(b)
    counts = partial_counts(a, b, condensed)
    leaves = np.flatnonzero(counts)
    exact = ExactMergedSize(a, b, condensed, leaves)
    if huffman:
        rounds = huffman_schedule(counts[leaves].tolist(), ways, exact if exact_schedule else None)
    else:
        rounds = in_order_schedule(leaves.size, ways)
    spilled = sum(exact(leaves.size + r, ids) for r, ids in enumerate(rounds[:-1]))
    seq = _requests(a, b, condensed, leaves, rounds)
    miss = (belady_misses if prefetch else lru_misses)(seq, buffer_rows)
    row_bytes = np.diff(b.indptr).astype(np.int64) * B_ENTRY_BYTES
    out = {
        "a_read": a.nnz * A_ENTRY_BYTES,
        "b_read": int(row_bytes[seq[miss]].sum()),
        "partial_write": spilled * PARTIAL_ENTRY_BYTES,
        "partial_read": spilled * PARTIAL_ENTRY_BYTES,
        "c_write": (_pattern(a) @ _pattern(b)).nnz * PARTIAL_ENTRY_BYTES,
        "partials": int(leaves.size),
        "rounds": len(rounds),
        "b_requests": int(seq.size),
        "b_misses": int(miss.sum()),
    }
    out["total"] = sum(out[k] for k in TRAFFIC_KEYS)
    return out


def reductions(a: sp.spmatrix, b: sp.spmatrix, ways: int = 64, buffer_rows: int = 128) -> dict:
    """SpArch's cumulative ablation, each step adding one technique (ratios of total bytes):
    condensed: original columns / condensed, both in-order with the LRU buffer;
    huffman: in-order / Huffman, both condensed with the LRU buffer;
    prefetch: LRU / Belady buffer, both condensed + Huffman. ``bytes`` holds the four runs."""
    runs = {
        "baseline": dict(condensed=False, huffman=False, prefetch=False),
        "condensed": dict(condensed=True, huffman=False, prefetch=False),
        "huffman": dict(condensed=True, huffman=True, prefetch=False),
        "sparch": dict(condensed=True, huffman=True, prefetch=True),
    }
    traffic = {name: dram_traffic(a, b, ways, buffer_rows, **cfg) for name, cfg in runs.items()}
    total = {name: t["total"] for name, t in traffic.items()}
    return {
        "condensed": total["baseline"] / total["condensed"],
        "huffman": total["condensed"] / total["huffman"],
        "prefetch": total["huffman"] / total["sparch"],
        "overall": total["baseline"] / total["sparch"],
        "bytes": traffic,
    }
