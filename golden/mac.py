"""Golden model of the ``mac`` block: C = A @ W in exact integers, plus its cycle model.

The reference is NumPy's int64 matmul; the result is cast to int32 only after checking
that every element fits (a silent wrap would hide an accumulator bug).
"""
from __future__ import annotations

import math

import numpy as np

from accelgen.params.mac import MacConfig


def matmul(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """C[M,N] = A[M,K] @ W[K,N] for int8 operands, exact, as int32."""
    c = a.astype(np.int64) @ w.astype(np.int64)
    if c.size and (c.max() > np.iinfo(np.int32).max or c.min() < np.iinfo(np.int32).min):
        raise OverflowError("C does not fit int32")
    return c.astype(np.int32)


def tiles(cfg: MacConfig, m: int, n: int) -> int:
    """Number of R x C output tiles the array computes for an M x N result."""
    return math.ceil(m / cfg.rows) * math.ceil(n / cfg.cols)


def tile_period(cfg: MacConfig, k: int) -> int:
    """Cycles between tile starts with no stalls: K operand beats, or, when K is
    shorter, the wait of a tile's last beat for the previous tile to leave the array
    (R + C + 3 cycles of skew and pipeline, then R result rows)."""
    return max(k, 2 * cfg.rows + cfg.cols + 3)


def cycles(cfg: MacConfig, m: int, k: int, n: int) -> int:
    """Cycles from the first operand beat to the last result beat, without stalls.

    Tiles stream back to back, one every ``tile_period``; the last tile's final beat
    needs R + C + 2 cycles to sweep the skewed array and its R result rows then leave
    one per cycle: (T-1)*period + K + 2R + C + 2.
    """
    t = tiles(cfg, m, n)
    return (t - 1) * tile_period(cfg, k) + k + 2 * cfg.rows + cfg.cols + 2


def bound_cycles(cfg: MacConfig, m: int, k: int, n: int) -> int:
    """Physical bound: every useful MAC needs one of the R*C PEs for one cycle."""
    return math.ceil(m * n * k / (cfg.rows * cfg.cols))


def utilization(cfg: MacConfig, m: int, k: int, n: int, measured_cycles: int) -> float:
    """Useful MACs / (R * C * cycles)."""
    return m * n * k / (cfg.rows * cfg.cols * measured_cycles)
