"""Golden model of the ``mac`` block in every mode, in exact integers, plus its cycle model.

The reference is NumPy's int64 matmul; a result is cast to its output width only after
checking that every element fits (a silent wrap would hide an accumulator bug).

* w8a8: C = A @ W.
* w4a8 (QServe): W8 = q*s2 - z per group, computed as the kernel does in byte arithmetic
  ((q*s2 mod 256) + ((-z) mod 256)) mod 256 read as int8; then C = A @ W8 in int32 over K.
* w4a4 (SVDQuant): C = sum_g a_scale[:, g] * w_scale[g, :] * (A_g @ W_g)
  + lr_scale * (U @ L2), exact in int64 (the fixed-point scales are integers; the
  float output is C * 2**-F for the quantizer's exponent F, see golden/quant.py).
* msb_lsb (SpAtten): C = A @ (B_msb << 4) + lsb_rows * (A @ B_lsb) with
  B_msb = B >> 4 (bits 11..4, signed) and B_lsb = B & 15.
"""
from __future__ import annotations

import math

import numpy as np

from accelgen.params.mac import MacConfig


def matmul(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """C[M,N] = A[M,K] @ W[K,N] for int8 operands, exact, as int32."""
    c = a.astype(np.int64) @ w.astype(np.int64)
    return _fits(c, 32).astype(np.int32)


def _fits(c: np.ndarray, bits: int) -> np.ndarray:
    if c.size and (c.max() >= 1 << (bits - 1) or c.min() < -(1 << (bits - 1))):
        raise OverflowError(f"C does not fit int{bits}")
    return c


def group_rows(per_group: np.ndarray, group: int, k: int) -> np.ndarray:
    """Expand a [G, N] per-group array to [K, N] (group g covers rows g*group ..)."""
    return np.repeat(per_group, group, axis=0)[:k]


def w4a8_weights(q: np.ndarray, s2: np.ndarray, z: np.ndarray, group: int) -> np.ndarray:
    """QServe's dequantization W8 = q*s2 - z in byte arithmetic ("subtraction after
    multiplication"): q*s2 is one unsigned byte, the stored byte (-z) mod 256 is added
    mod 256, the sum is read as int8. [K, N] int8 from q [K, N], s2 and z [G, N]."""
    k = q.shape[0]
    prod = (q.astype(np.int64) * group_rows(s2, group, k)) & 0xFF
    byte = (prod + (-group_rows(z, group, k).astype(np.int64) & 0xFF)) & 0xFF
    return byte.astype(np.uint8).view(np.int8)


def matmul_w4a8(a, q, s2, z, group: int) -> np.ndarray:
    """C[M,N] = A @ W8 with W8 from :func:`w4a8_weights`; INT32 over the whole K."""
    return matmul(a, w4a8_weights(q, s2, z, group))


def matmul_w4a4(a, w, a_scale, w_scale, group: int, lr_u=None, lr_l2=None,
                lr_scale: int = 0) -> np.ndarray:
    """C[M,N] = sum_g (A_g @ W_g) * a_scale[m,g] * w_scale[g,n] + lr_scale * (U @ L2),
    exact, as int64 (a float64 shadow of every term detects any int64 wrap)."""
    a, w = np.asarray(a, np.int64), np.asarray(w, np.int64)
    (m, k), n = a.shape, w.shape[1]
    c = np.zeros((m, n), np.int64)
    shadow = np.zeros((m, n), np.float64)
    for g, k0 in enumerate(range(0, k, group)):
        part = a[:, k0:k0 + group] @ w[k0:k0 + group]
        scale = np.outer(np.asarray(a_scale, np.int64)[:, g], np.asarray(w_scale, np.int64)[g])
        c += part * scale
        shadow += part.astype(np.float64) * scale
    if lr_u is not None and np.size(lr_u):
        c += np.asarray(lr_u, np.int64) @ np.asarray(lr_l2, np.int64) * int(lr_scale)
        shadow += np.asarray(lr_u, np.float64) @ np.asarray(lr_l2, np.float64) * int(lr_scale)
    if shadow.size and np.abs(shadow).max() >= 2.0 ** 63:
        raise OverflowError("C does not fit int64")
    return c


def msb_lsb_split(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 12-bit signed B as its 8 MSBs (bits 11..4, int8) and 4 LSBs (bits 3..0)."""
    b = np.asarray(b, np.int64)
    return b >> 4, b & 0xF


def matmul_msb_lsb(a, b, lsb_rows) -> np.ndarray:
    """SpAtten's progressive product: A @ (B_msb << 4), plus A @ B_lsb on the rows whose
    LSB pass was requested; those rows equal A @ B exactly. int32."""
    msb, lsb = msb_lsb_split(b)
    a = np.asarray(a, np.int64)
    c = a @ (msb << 4) + np.asarray(lsb_rows, bool)[:, None] * (a @ lsb)
    return _fits(c, 32).astype(np.int32)


def fill(cfg: MacConfig) -> int:
    """A tile's first result row leaves R + C + fill cycles after its last beat is
    taken: the beat passes six registers (the edge's, the PE's operand register, the
    multiplier's input and output registers, the product register and the shadow; w4a8
    has a second edge register for its dequantizer) and the skew adds R + C - 2."""
    return 5 if cfg.mode == "w4a8" else 4


def epilogue_depth(cfg: MacConfig) -> int:
    """Registers a w4a4 update passes before the epilogue's bank: its operands, then
    p * a and (p * a) * b, two multipliers of 3 + ceil(log2(DSPs)) cycles, where an
    operand of w > 18 bits takes 1 + ceil((w - 18) / 17) DSPs (17-bit chunks below an
    18-bit signed top); p has max(acc_width, 16) bits, a and b 17."""
    def latency(width: int) -> int:
        dsps = 1 if width <= 18 else 1 + math.ceil((width - 18) / 17)
        return 3 + math.ceil(math.log2(dsps))
    p_width = max(cfg.acc_width, 16)
    return 1 + latency(p_width) + latency(p_width + 17)


def tiles(cfg: MacConfig, m: int, n: int) -> int:
    """Number of R x C output tiles the array computes for an M x N result."""
    return math.ceil(m / cfg.rows) * math.ceil(n / cfg.cols)


def tile_period(cfg: MacConfig, k: int) -> int:
    """Cycles between tile starts with no stalls: K operand beats, or, when K is
    shorter, the wait of a tile's last beat for the previous tile to leave the array
    (R + C + fill cycles of skew and pipeline, then R result rows)."""
    return max(k, 2 * cfg.rows + cfg.cols + fill(cfg))


def sequence_cycles(cfg: MacConfig, lengths: list[int]) -> int:
    """Cycles from the first operand beat to the last result beat for tiles of the given
    beat counts, back to back without stalls: the first tile takes its beats, every
    later one max(its beats, 2R+C+fill) (its last beat waits for the previous tile to
    leave the array), and the final tile's last beat needs 2R+C+fill-1 cycles to sweep
    the skewed array and leave as R rows."""
    return (lengths[0] + sum(tile_period(cfg, n) for n in lengths[1:])
            + 2 * cfg.rows + cfg.cols + fill(cfg) - 1)


def cycles(cfg: MacConfig, m: int, k: int, n: int) -> int:
    """Cycles of an M x K x N product without stalls (w8a8, w4a8): T tiles of K beats,
    (T-1)*period + K + 2R+C+fill-1."""
    return sequence_cycles(cfg, [k] * tiles(cfg, m, n))


def w4a4_cycles(cfg: MacConfig, m: int, k: int, n: int, rank: int) -> int:
    """Cycles of a w4a4 product without stalls: the schedule of the array and the
    epilogue, cycle by cycle at the level of R-row sets (first operand beat = cycle 1).

    The array runs each group as a tile: its last beat is taken at
    x = max(x_prev + beats, y_prev + 1) (y_prev: the cycle the previous group's final
    row left) and its first partial row is ready at x + R + C + fill. The epilogue takes a
    set of R rows at a time: a ready partial set first, else one of the tile's
    max(rank, 1) low-rank beats, else it waits for the next partial set. After the
    tile's last set, the pipeline drains (:func:`epilogue_depth` + 1 cycles), the R
    result rows leave, and the next tile's sets start the cycle after.
    """
    r = cfg.rows
    groups = [min(cfg.group_size, k - k0) for k0 in range(0, k, cfg.group_size)]
    x = y = 0  # last beat of the previous group; the cycle its final row left
    now = 1  # the first cycle the epilogue may take a set
    for _ in range(tiles(cfg, m, n)):
        low_sets = max(rank, 1)
        ready = None
        pending = list(groups)
        while pending or low_sets:
            if pending and ready is None:
                x = max(x + pending[0], y + 1) if x else pending[0]
                ready = x + r + cfg.cols + fill(cfg)
            if pending and ready <= now:
                y = now + r - 1
                pending.pop(0)
                ready = None
            elif low_sets:
                low_sets -= 1
            else:
                now = ready
                continue
            now += r
        now += epilogue_depth(cfg) + 1 + r  # pipeline, drain; the next tile's sets after
    return now - 1


def bound_cycles(cfg: MacConfig, m: int, k: int, n: int) -> int:
    """Physical bound: every useful MAC needs one of the R*C PEs for one cycle."""
    return math.ceil(m * n * k / (cfg.rows * cfg.cols))


def utilization(cfg: MacConfig, m: int, k: int, n: int, measured_cycles: int) -> float:
    """Useful MACs / (R * C * cycles)."""
    return m * n * k / (cfg.rows * cfg.cols * measured_cycles)
