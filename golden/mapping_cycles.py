"""Cycle models of the mapping unit (hdl/mapping.py), its physical bound, and the
hash-table model the bench compares it with.

The unit model follows the hardware's phases with the output always ready: the command,
the point load (one beat of P a cycle), then per operation:

- merge sort of r rows: ceil(log2 r) passes (none when the inputs arrive sorted), each
  reading every row once plus one cycle per merged pair and a fixed pipeline latency;
- kernel map: per offset one merge of the outputs' and the inputs' rows (plus, for
  inputs that did not arrive sorted, stride 1, one table write per map and a table scan);
- kNN: a distance pass per query into the top-k engine (golden/topk.py's model), then a
  sort of the k results; ball query: a distance pass up to the k-th hit; FPS: one
  distance pass per pick. k = 0 and m = 0 (the unit clamps k, m to n): an empty frame.
"""
from __future__ import annotations

import math

import numpy as np

from . import mapping as ref
from . import topk as topk_model

#: Fixed cycles of a merge-sort pass (start, reader and merge-node latency, end).
SORT_PASS = 6
#: Fixed cycles of a kernel-map offset's merge (start, latency, flush, next offset).
OFFSET = 8
#: Fixed cycles of a distance pass (start, read, FIFO) and of a query's bookkeeping.
PASS = 4


def rows(n: int, lanes: int) -> int:
    return -(-n // lanes)


def sort_cycles(n: int, lanes: int, presorted: bool = False, dedupe: bool = False) -> int:
    """Merge sort of n entries (rows already sorted within); ``dedupe`` forces a pass."""
    r = rows(n, lanes)
    passes = 0 if presorted else max(0, math.ceil(math.log2(r))) if r > 1 else 0
    passes = max(passes, 1) if dedupe else passes
    total, run = 1, 1
    for _ in range(passes):
        pairs = max(1, -(-r // (2 * run)))
        total += 1 + r + pairs + SORT_PASS
        run *= 2
    return total


def unit_cycles(lanes: int, job: dict, coord_width: int = 16) -> dict[str, int]:
    """``total``: modelled cycles from the command to the last result beat; ``bound``:
    the physical bound for P lanes (points in and results out at P a cycle, P distances
    a cycle)."""
    c, op, p = np.asarray(job["coords"], np.int64), job["op"], lanes
    n = len(c)
    queries = np.asarray(job.get("queries", np.zeros((0, 3))), np.int64)
    d2 = ref.dist2(c, queries)  # [Q, N]
    total = 2 + rows(n, p) + 1  # command, load, dispatch
    bound = rows(n, p)
    if op == "kernel_map":
        stride, ks = job["stride"], job["kernel_size"]
        keys = ref.coord_keys(c, coord_width) if n else np.zeros(0, np.int64)
        presorted = bool(np.all(keys[1:] > keys[:-1]))
        maps = ref.kernel_map(c, ks, stride, coord_width) if n else \
            {"offset": np.zeros(0), "out_coords": np.zeros((0, 3))}
        n_out = len(maps["out_coords"]) if stride == 2 else n
        total += sort_cycles(n, p, presorted)
        if stride == 2:
            total += 3 + rows(n, p) + sort_cycles(n, p, dedupe=True) + 4 + rows(n_out, p)
        scatter = stride == 1 and not presorted
        total += 1 + (rows(n_out, p) if scatter else 0)
        per_offset = np.bincount(maps["offset"].astype(np.int64), minlength=ks ** 3)
        for hits in per_offset:
            merge = rows(n_out, p) + rows(n, p) + OFFSET
            total += max(merge, int(hits) + 3) + 3 + rows(n_out, p) if scatter else merge
        total += 1
        bound += rows(len(maps["offset"]), p) + (rows(n_out, p) if stride == 2 else 0)
    elif op in ("knn", "ball_query") and job["k"] == 0:
        total += 2 * len(queries)  # each query taken, an empty frame
    elif op == "knn":
        k = job["k"]
        width = (3 * ((1 << coord_width) - 1) ** 2).bit_length()
        for row in d2:
            tk = topk_model.engine_cycles("fast", row[None, :], [k], p, width, False,
                                          smallest=True)
            total += 2 + PASS + int(tk["latency"][0]) + sort_cycles(k, p) + 4 + rows(k, p)
            bound += rows(n, p)
    elif op == "ball_query":
        k, r2 = job["k"], job["radius2"]
        for row in d2:
            hit = np.flatnonzero(row < r2)
            scanned = rows(int(hit[k - 1]) + 1, p) if len(hit) >= k else rows(n, p)
            pad = rows(k - min(k, len(hit)), p) if len(hit) < k else 0
            total += 2 + PASS // 2 + scanned + pad + 1
            bound += scanned
    else:
        m = job["m"]
        total += 1 + max(0, m - 1) * (1 + PASS + rows(n, p)) + (1 if m else 0)
        bound += max(0, m - 1) * rows(n, p)
    return {"total": int(total), "bound": int(bound)}


def hash_cycles(job: dict, coord_width: int = 16) -> int:
    """A hash-table kernel map (torchsparse's GPU method as one pipelined unit): one
    insert per input, then one probe per (output, offset), a cycle each."""
    n = len(job["coords"])
    ks, stride = job["kernel_size"], job["stride"]
    n_out = len(ref.output_coords(job["coords"], stride, coord_width)) if n else 0
    return n + ks ** 3 * n_out
