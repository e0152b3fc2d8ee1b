"""Golden model of SpArch's merger and its merge-round scheduler.

Golden rule (papers.md §2, binding): the output is sorted by key ascending; the values
of equal keys are summed as integers (clamped to the value range when the config says
saturate); an entry that sums to zero is still emitted (a structural nonzero).

More streams than the merger's ways are merged in rounds: SpArch's Huffman scheduler
merges the streams with the fewest entries first, W at a time, the first round taking
((n - 2) mod (W - 1)) + 2 streams so that every later round is full; a round's result
re-enters the pool with the size bound sum of its inputs.
"""
from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import numpy as np

#: size of a round's output (new id, input ids) -> entries
MergedSize = Callable[[int, list[int]], int]


def merge(streams: list[tuple[np.ndarray, np.ndarray]], value_range: tuple[int, int],
          saturate: bool) -> tuple[np.ndarray, np.ndarray]:
    """(keys, values) of the merge of ``streams`` of (keys, values); sums are exact
    Python integers, then clamped to ``value_range`` if ``saturate``."""
    keys = np.concatenate([np.asarray(k).astype(np.uint64) for k, _ in streams]
                          or [np.zeros(0, np.uint64)])
    values = [int(v) for _, vs in streams for v in np.asarray(vs).tolist()]
    uniq, inverse = np.unique(keys, return_inverse=True)
    sums = [0] * len(uniq)
    for slot, v in zip(inverse.tolist(), values):
        sums[slot] += v
    lo, hi = value_range
    if saturate:
        sums = [min(hi, max(lo, s)) for s in sums]
    return uniq, np.array(sums, dtype=object if lo < -(1 << 62) else np.int64)


def overflows(streams, value_range) -> bool:
    """Whether some key's exact sum falls outside ``value_range``."""
    _, sums = merge(streams, (-(1 << 200), 1 << 200), saturate=False)
    lo, hi = value_range
    return any(s < lo or s > hi for s in sums.tolist())


def huffman_schedule(sizes: list[int], ways: int,
                     merged_size: MergedSize | None = None) -> list[list[int]]:
    """SpArch's Huffman merge schedule: repeatedly merge the ``ways`` smallest inputs.

    Inputs are ids 0..n-1; round i outputs id n + i, which re-enters the pool. The first
    round takes ((n-2) mod (ways-1)) + 2 inputs so every later round is full. Each round
    lists its inputs smallest first (ties: lower id first). An output's size is the sum of
    its inputs (an upper bound) unless ``merged_size(new_id, inputs)`` gives it.
    """
    if ways < 2:
        raise ValueError("ways must be >= 2")
    n = len(sizes)
    pool = [(int(s), i) for i, s in enumerate(sizes)]
    heapq.heapify(pool)
    rounds: list[list[int]] = []
    take = (n - 2) % (ways - 1) + 2 if n > 1 else 0
    while len(pool) > 1:
        group = [heapq.heappop(pool) for _ in range(take)]
        ids = [i for _, i in group]
        new_id = n + len(rounds)
        size = merged_size(new_id, ids) if merged_size else sum(s for s, _ in group)
        heapq.heappush(pool, (size, new_id))
        rounds.append(ids)
        take = ways
    return rounds


def schedule(sizes: list[int], ways: int) -> list[list[int]]:
    """The merger's rounds: :func:`huffman_schedule`, and one round for a lone stream."""
    return huffman_schedule(sizes, ways) or [list(range(len(sizes)))]


def run_rounds(streams, ways: int, value_range, saturate: bool):
    """The merge of ``streams`` done as :func:`schedule` says, clamping every round."""
    pool = list(streams)
    for ids in schedule([len(k) for k, _ in streams], ways):
        pool.append(merge([pool[i] for i in ids], value_range, saturate))
    return pool[-1]


def bound_cycles(total: int, lanes: int) -> int:
    """Physical limit: the root takes at most P input entries a cycle."""
    return math.ceil(total / lanes)


#: Pipeline fill of the merge tree, fitted on one-entry streams: a node below the root
#: (its lane queues, the fire decided a cycle ahead, its sorting layers and output FIFO;
#: 7 cycles at 4 lanes); the root node and the combiner together take
#: FILL_ROOT + FILL_ROOT_PER_LAYER x ceil(log2 P) (its layers, the combiner's prefix sum
#: and its output queue's networks grow with log2 P).
FILL_PER_LEVEL, FILL_ROOT, FILL_ROOT_PER_LAYER = 7, 14, 5
#: Root beats per window of the key-aware model: imbalance within a window is absorbed
#: by the lane queues. Fitted on the bench's real partial-product streams: 32 beats
#: overestimate the 64-way, 16-lane tree by 34%, 256 by 2.1%.
WINDOW_BEATS = 256


def fill_cycles(depth: int, lanes: int) -> int:
    """Cycles from a job's first entries to its last output beat beyond the entries'
    own beats, for a tree of ``depth`` levels and P = ``lanes``."""
    layers = max(1, (lanes - 1).bit_length())
    return FILL_PER_LEVEL * (depth - 1) + FILL_ROOT + FILL_ROOT_PER_LAYER * layers


def tree_cycles(port_keys: list[np.ndarray], cfg) -> int:
    """Cycles of one merge job from the keys on each input port (``cfg`` a
    MergerConfig: ways, lanes, node_lanes): the key order is cut into windows of
    WINDOW_BEATS root beats; in each window every subtree delivers at most its root
    node's lanes per cycle (an input port: ``in_lanes``) and the root P, and the window
    takes as long as its slowest constraint. Tree shape as the hardware: the first
    ceil(n/2) ports on the left."""
    ports = [np.sort(np.asarray(k).astype(np.uint64)) for k in port_keys]
    ports += [np.zeros(0, np.uint64)] * (cfg.ways - len(ports))
    merged = np.sort(np.concatenate(ports))
    if merged.size == 0:
        return 1 + fill_cycles(cfg.depth, cfg.lanes)
    edges = merged[::WINDOW_BEATS * cfg.lanes][1:]
    counts = np.stack([np.diff(np.searchsorted(k, edges, side="left"), prepend=0,
                               append=k.size) for k in ports]).astype(np.float64)
    worst = counts.sum(axis=0) / cfg.lanes

    def visit(lo: int, hi: int, level: int) -> np.ndarray:
        nonlocal worst
        if hi - lo == 1:
            here = counts[lo]
            rate = cfg.in_lanes
        else:
            half = lo + (hi - lo + 1) // 2
            here = visit(lo, half, level + 1) + visit(half, hi, level + 1)
            rate = cfg.node_lanes(level)
        worst = np.maximum(worst, here / rate)
        return here

    visit(0, cfg.ways, 0)
    return int(math.ceil(worst.sum())) + fill_cycles(cfg.depth, cfg.lanes)
