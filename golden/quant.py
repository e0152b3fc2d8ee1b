"""Quantizers of the mac block's modes (golden: the float-to-integer maps the hardware's
inputs come from).

* QServe W4A8 (papers.md §4): two-level weights (:func:`qserve_weight`), per-token INT8
  activations (:func:`per_token_int8`), fp16 epilogue (:func:`qserve_epilogue`).
* SVDQuant W4A4 (papers.md §5): per-group INT4 weights and activations, a low-rank branch
  fitted by SVD (:func:`svdquant_lowrank`), the hardware's fixed-point form of the float
  scales (:func:`w4a4_fixed_point`) and nunchaku's fp16 accumulation for comparison.
* W8A8: symmetric INT8, per output channel for weights, per token for activations.
* SpAtten progressive quantization (papers.md §1): per-tensor fixed point
  (:func:`symmetric_per_tensor`).

Their real operands and the error study on MiniLM are in data/mac_cases.py.

Conventions: weights are ``[K, N]`` = ``[in, out]``, activations ``[M, K]``, groups run
along K (the last one may be short).  This module only maps floats to integers and back;
every integer product is computed by :mod:`golden.mac`, the model of the hardware.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from accelgen.golden import mac

U16_MAX = 65535
I16_MIN, I16_MAX = -32768, 32767
#: largest power-of-two exponent of the w4a4 low-rank scale: lr_scale = 2**shift <= 65535
LR_SHIFT_MAX = 15


# --------------------------------------------------------------------------- groups
def group_amax(v: np.ndarray, group: int, axis: int) -> np.ndarray:
    """max |v| over each run of ``group`` entries along ``axis`` (G = ceil(len/group))."""
    return np.maximum.reduceat(np.abs(v), np.arange(0, v.shape[axis], group), axis=axis)


def expand_groups(per_group: np.ndarray, group: int, k: int, axis: int) -> np.ndarray:
    """A per-group array ([G, N] for axis 0, [M, G] for axis 1) repeated to length K."""
    if axis == 0:
        return mac.group_rows(per_group, group, k)
    return mac.group_rows(per_group.T, group, k).T


def divide_or_zero(v: np.ndarray, s: np.ndarray) -> np.ndarray:
    """v / s, and 0 where s == 0 (an all-zero slice quantizes to 0)."""
    v, s = np.broadcast_arrays(np.asarray(v, np.float64), np.asarray(s, np.float64))
    return np.divide(v, s, out=np.zeros(v.shape), where=s != 0)


def rel_error(y: np.ndarray, ref: np.ndarray) -> float:
    """Relative Frobenius error ||y - ref|| / ||ref||, in float64."""
    ref = np.asarray(ref, np.float64)
    return float(np.linalg.norm(np.asarray(y, np.float64) - ref) / np.linalg.norm(ref))


# --------------------------------------------------------------------------- QServe W4A8
def qserve_weight(w_kn: np.ndarray, group: int = 128, protect: int = 119) -> dict:
    """QServe's two-level 4-bit weight (papers.md §4), groups of ``group`` along K.

    s1[n] = amax over k / P (float32; 1 for an all-zero channel); T = clamp(W / s1, -P, P),
    not rounded; per group s2 = clamp(round((max T - min T) / 15), 1, 127),
    z = clamp(round(-min T), -128, 127), q = clamp(round((T + z) / s2), 0, 15); round is
    half to even.  P = 119 keeps q*s2 <= 240 and W8 = q*s2 - z in [-128, 127].
    Returns {"s1": float32 [N], "s2": uint8 [G, N], "z": int8 [G, N], "q": uint8 [K, N]}.
    """
    w = np.asarray(w_kn, np.float64)
    k = w.shape[0]
    amax = np.abs(w).max(axis=0)
    s1 = np.where(amax > 0, amax / protect, 1.0).astype(np.float32)
    t = np.clip(w / s1, -protect, protect)
    starts = np.arange(0, k, group)
    t_max, t_min = np.maximum.reduceat(t, starts, axis=0), np.minimum.reduceat(t, starts, axis=0)
    s2 = np.clip(np.rint((t_max - t_min) / 15), 1, 127)
    z = np.clip(np.rint(-t_min), -128, 127)
    q = np.clip(np.rint((t + mac.group_rows(z, group, k)) / mac.group_rows(s2, group, k)), 0, 15)
    return {"s1": s1, "s2": s2.astype(np.uint8), "z": z.astype(np.int8), "q": q.astype(np.uint8)}


def per_token_int8(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """QServe's per-token symmetric INT8 activation (papers.md §4), in float64:
    sx = fp16(amax / 127), q = round-half-even(x * 127 / amax) saturated to [-128, 127].
    An all-zero row gives q = 0 and sx = 0 (its product is exactly 0).
    Returns (q int8 [M, K], sx float16 [M])."""
    x = np.asarray(x, np.float64)
    amax = np.abs(x).max(axis=1)
    q = np.clip(np.rint(divide_or_zero(x * 127, amax[:, None])), -128, 127)
    return q.astype(np.int8), (amax / 127).astype(np.float16)


def qserve_epilogue(c_int32: np.ndarray, s1: np.ndarray, sx: np.ndarray) -> np.ndarray:
    """y[m, n] = fp16(acc[m, n] * s1[n] * sx[m]): the product in float64, one rounding."""
    y = np.asarray(c_int32, np.float64) * np.asarray(s1, np.float64) * np.asarray(sx, np.float64)[:, None]
    return y.astype(np.float16)


def qserve_dequantized_weight(wq: dict, group: int = 128) -> np.ndarray:
    """The weight the W4A8 GEMM really uses, W8 * s1 (float64 [K, N]); W8 from
    :func:`golden.mac.w4a8_weights`."""
    w8 = mac.w4a8_weights(wq["q"], wq["s2"], wq["z"], group)
    return w8.astype(np.float64) * wq["s1"].astype(np.float64)


def w4a8_output(x: np.ndarray, w_kn: np.ndarray, group: int = 128) -> np.ndarray:
    """QServe W4A8 Linear without bias: fp16 [M, N] via golden.mac.matmul_w4a8."""
    a, sx = per_token_int8(x)
    wq = qserve_weight(w_kn, group)
    return qserve_epilogue(mac.matmul_w4a8(a, wq["q"], wq["s2"], wq["z"], group), wq["s1"], sx)


# --------------------------------------------------------------------------- W8A8
def _symmetric_int8(x: np.ndarray, axis: int, lo: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric INT8 with one scale per slice along ``axis`` (reduced over it).

    All in float32: ``scale = max |x| / 127`` (1 where that max is 0),
    ``q = clip(rint(x / scale), lo, 127)`` (round half to even, saturating).
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError("expected a 2-D array")
    amax = np.max(np.abs(x), axis=axis)
    scale = (amax / np.float32(127)).astype(np.float32)
    scale[amax == 0] = np.float32(1)
    q = np.clip(np.rint(x / np.expand_dims(scale, axis)), lo, 127).astype(np.int8)
    return q, scale


def quantize_weight_per_channel_int8(w_kn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel INT8 of a ``[K, N]`` weight: scale[n] over k, q in -127..127.
    Returns ``(q int8 [K, N], scale float32 [N])``."""
    return _symmetric_int8(w_kn, axis=0, lo=-127)


def quantize_activation_per_token_int8(x_mk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-token INT8 of a ``[M, K]`` activation: scale[m] over k, q in -128..127.
    Returns ``(q int8 [M, K], scale float32 [M])``."""
    return _symmetric_int8(x_mk, axis=1, lo=-128)


def w8a8_output(x: np.ndarray, w_kn: np.ndarray) -> np.ndarray:
    """Per-token INT8 activations and per-channel INT8 weights, product by golden.mac.matmul, rescaled in float64."""
    a, sa = quantize_activation_per_token_int8(x)
    w, sw = quantize_weight_per_channel_int8(w_kn)
    return mac.matmul(a, w) * sa.astype(np.float64)[:, None] * sw.astype(np.float64)


# --------------------------------------------------------------------------- SVDQuant W4A4
def svdquant_weight(w_kn: np.ndarray, group: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric INT4 weight per group of ``group`` along K (papers.md §5): s = amax/7,
    q = clamp(round(W / s), -7, 7).  Returns (q int8 [K, N], s float64 [G, N])."""
    w = np.asarray(w_kn, np.float64)
    s = group_amax(w, group, axis=0) / 7
    q = np.clip(np.rint(divide_or_zero(w, expand_groups(s, group, w.shape[0], 0))), -7, 7)
    return q.astype(np.int8), s


def svdquant_activation(x: np.ndarray, group: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Signed INT4 activation per (token, group of ``group`` along K) (papers.md §5):
    s = amax/7, q = round-half-even(x / s) saturated to [-8, 7].
    Returns (q int8 [M, K], s float64 [M, G])."""
    x = np.asarray(x, np.float64)
    s = group_amax(x, group, axis=1) / 7
    q = np.clip(np.rint(divide_or_zero(x, expand_groups(s, group, x.shape[1], 1))), -8, 7)
    return q.astype(np.int8), s


def dequantize_weight(q: np.ndarray, s: np.ndarray, group: int) -> np.ndarray:
    """q * s with s per group along K: float64 [K, N]."""
    return q * expand_groups(s, group, q.shape[0], 0)


def best_rank_r(e: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Truncated SVD of e [K, N] in float64: (down [K, r] = U[:, :r], orthonormal columns;
    up [r, N] = S[:r] * Vh[:r]); down @ up is the best rank-r approximation of e."""
    u, s, vh = np.linalg.svd(np.asarray(e, np.float64), full_matrices=False)
    return u[:, :rank], s[:rank, None] * vh[:rank]


@dataclass(frozen=True)
class LowRankSplit:
    """W ~ dequant(q, s) + down @ up; ``error`` = ||W - that|| (Frobenius)."""
    q: np.ndarray      # int8 [K, N] in -7..7
    s: np.ndarray      # float64 [G, N]
    down: np.ndarray   # float64 [K, r]: L1^T in SVDQuant's [out, in] notation
    up: np.ndarray     # float64 [r, N]: L2^T
    error: float


def svdquant_lowrank(w_kn: np.ndarray, rank: int, group: int = 64,
                     iterations: int = 4) -> LowRankSplit:
    """SVDQuant's low-rank branch (papers.md §5; deepcompressor calib/lowrank.py).

    Torch's weight is [out, in] = W^T and SVDQuant writes W^T ~ Q(R) + L2 . L1 with
    L1 = Vh[:r], L2 = U[:, :r] S[:r] from the SVD of W^T - Q(W^T).  In our [K, N]
    convention the SVD is taken of W - Q(W) itself, so the factors come out transposed:
    down = L1^T = U[:, :r] and up = L2^T = S[:r] Vh[:r] (:func:`best_rank_r`); y gets
    (X @ down) @ up.  Then the residual W - down @ up is re-quantized, and the SVD is
    redone on W minus that new quantized weight; at most ``iterations`` rounds, stopping
    as soon as the weight error ||W - Q(R) - down @ up|| rises (the best split is kept).
    Rank 0 is plain :func:`svdquant_weight`.
    """
    w = np.asarray(w_kn, np.float64)
    q, s = svdquant_weight(w, group)
    if rank == 0:
        return split_of(w, q, s, np.zeros((w.shape[0], 0)), np.zeros((0, w.shape[1])), group)
    best = None
    for _ in range(iterations):
        down, up = best_rank_r(w - dequantize_weight(q, s, group), rank)
        q, s = svdquant_weight(w - down @ up, group)
        split = split_of(w, q, s, down, up, group)
        if best is not None and split.error > best.error:
            break
        best = split
    return best


def split_of(w, q, s, down, up, group: int) -> LowRankSplit:
    """The split with its weight error ||w - dequant(q, s) - down @ up||."""
    error = np.linalg.norm(w - dequantize_weight(q, s, group) - down @ up)
    return LowRankSplit(q, s, down, up, float(error))


@dataclass(frozen=True)
class W4A4Operands:
    """One SVDQuant GEMM with float scales: y = sum_g (A_g @ W_g) sa[:, g] sw[g] + (x @ down) @ up.
    The low-rank branch reads the unquantized activation x (papers.md §5)."""
    a: np.ndarray      # int8 [M, K] in -8..7
    sa: np.ndarray     # float64 [M, G]
    w: np.ndarray      # int8 [K, N] in -7..7
    sw: np.ndarray     # float64 [G, N]
    x: np.ndarray      # float64 [M, K], the activation after smoothing (if any)
    down: np.ndarray   # float64 [K, r]
    up: np.ndarray     # float64 [r, N]
    group: int

    @property
    def rank(self) -> int:
        return self.down.shape[1]

    def lr_input(self) -> np.ndarray:
        """U = x @ down, the low-rank down-projection [M, r] in float64."""
        return self.x @ self.down


def smoothing_factors(x: np.ndarray, w_kn: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """SVDQuant's smoothing lambda[k] = max|x[:, k]|**alpha / max|w[k, :]|**alpha
    (papers.md §5 with alpha = beta, one fixed value instead of the grid search);
    1 where either span is 0.  x / lambda and lambda * w leave x @ w unchanged."""
    xspan = np.abs(np.asarray(x, np.float64)).max(axis=0)
    wspan = np.abs(np.asarray(w_kn, np.float64)).max(axis=1)
    ok = (xspan > 0) & (wspan > 0)
    return np.where(ok, divide_or_zero(xspan, wspan) ** alpha, 1.0)


def w4a4_operands(x: np.ndarray, w_kn: np.ndarray, rank: int, group: int = 64,
                  alpha: float | None = None) -> W4A4Operands:
    """Quantize a Linear for W4A4 (:func:`svdquant_activation`, :func:`svdquant_lowrank`).
    ``alpha`` given: smooth first (:func:`smoothing_factors`; the quantized operands are
    x / lambda and lambda * w; lambda is fitted on this same x).  Default: no smoothing."""
    x, w = np.asarray(x, np.float64), np.asarray(w_kn, np.float64)
    if alpha is not None:
        lam = smoothing_factors(x, w, alpha)
        x, w = x / lam, w * lam[:, None]
    a, sa = svdquant_activation(x, group)
    split = svdquant_lowrank(w, rank, group)
    return W4A4Operands(a, sa, split.q, split.s, x, split.down, split.up, group)


def w4a4_exact(ops: W4A4Operands) -> np.ndarray:
    """The operands evaluated exactly in float64: dequant(A) @ dequant(W) + U @ up."""
    k = ops.a.shape[1]
    a = ops.a * expand_groups(ops.sa, ops.group, k, 1)
    return a @ dequantize_weight(ops.w, ops.sw, ops.group) + ops.lr_input() @ ops.up


def largest_exponent(v: np.ndarray, lo: int, hi: int) -> int:
    """The largest integer e with round(v * 2**e) inside [lo, hi] for every v
    (0 for an all-zero v, which fits at any e)."""
    vmax = float(np.abs(v).max(initial=0.0))
    if vmax == 0:
        return 0
    e = math.floor(math.log2(max(hi, -lo) / vmax)) + 1
    while not _fits(np.rint(np.ldexp(v, e)), lo, hi):
        e -= 1
    return e


def _fits(v: np.ndarray, lo: int, hi: int) -> bool:
    return v.size == 0 or (v.min() >= lo and v.max() <= hi)


def lower_evenly(e1: int, e2: int, by: int) -> tuple[int, int]:
    """Lower two exponents by ``by`` in total, the first one by the odd step."""
    return e1 - (by + 1) // 2, e2 - by // 2


def w4a4_fixed_point(ops: W4A4Operands) -> tuple[dict, int]:
    """The hardware's integer inputs of :func:`golden.mac.matmul_w4a4` and the output
    exponent F (y = C * 2**-F, :func:`w4a4_output`).

    Each float tensor gets one power-of-two exponent, the largest that keeps it in range:
    a_scale = round(sa 2**Ea), w_scale = round(sw 2**Ew) in 0..65535 (uint16), F = Ea + Ew;
    lr_u = round(U 2**Eu), lr_l2 = round(up 2**El) in int16; lr_scale = 2**(F - Eu - El).
    When F - Eu - El > 15 (lr_scale would exceed 65535), Ea and Ew are lowered (F drops)
    until it is 15; when it is < 0, Eu and El are lowered until it is 0; each pair is
    lowered evenly (first exponent by the odd step).  Rank 0: no lr_* entries.
    """
    ea = largest_exponent(ops.sa, 0, U16_MAX)
    ew = largest_exponent(ops.sw, 0, U16_MAX)
    inputs = {"a": ops.a, "w": ops.w}
    if ops.rank:
        u = ops.lr_input()
        eu, el = largest_exponent(u, I16_MIN, I16_MAX), largest_exponent(ops.up, I16_MIN, I16_MAX)
        shift = ea + ew - eu - el
        if shift > LR_SHIFT_MAX:
            ea, ew = lower_evenly(ea, ew, shift - LR_SHIFT_MAX)
        elif shift < 0:
            eu, el = lower_evenly(eu, el, -shift)
        inputs |= {"lr_u": np.rint(np.ldexp(u, eu)).astype(np.int16),
                   "lr_l2": np.rint(np.ldexp(ops.up, el)).astype(np.int16),
                   "lr_scale": 2 ** (ea + ew - eu - el)}
    inputs |= {"a_scale": np.rint(np.ldexp(ops.sa, ea)).astype(np.uint16),
               "w_scale": np.rint(np.ldexp(ops.sw, ew)).astype(np.uint16)}
    return inputs, ea + ew


def w4a4_inputs(x: np.ndarray, w_kn: np.ndarray, rank: int, group: int = 64) -> tuple[dict, int]:
    """(integer inputs of golden.mac.matmul_w4a4, F) for y ~ x @ w_kn (see
    :func:`w4a4_operands`, :func:`w4a4_fixed_point`)."""
    return w4a4_fixed_point(w4a4_operands(x, w_kn, rank, group))


def w4a4_output(c: np.ndarray, f: int) -> np.ndarray:
    """The float result of the exact int64 C: y = C * 2**-F (float64)."""
    return np.ldexp(np.asarray(c, np.float64), -f)


def w4a4_hardware(ops: W4A4Operands) -> np.ndarray:
    """What the w4a4 hardware returns for these operands, as float64: fixed-point
    inputs, golden.mac.matmul_w4a4, times 2**-F."""
    inputs, f = w4a4_fixed_point(ops)
    return w4a4_output(mac.matmul_w4a4(**inputs, group=ops.group), f)


def w4a4_nunchaku_fp16(ops: W4A4Operands) -> np.ndarray:
    """nunchaku-style accumulation of the same operands (papers.md §5), float16 [M, N].

    Main branch: scales stored as fp16; per group the exact INT32 partial (from
    golden.mac.matmul) is multiplied in float32 by fp16(sa * sw) and rounded to fp16,
    and the running sum is fp16 (every addition rounded to fp16).  Low-rank branch as
    on tensor cores: fp16 x and factors, float32 products and sums, U rounded to fp16,
    U @ up in float32, added to the main sum in float32 and rounded once to fp16.
    """
    f16, f32 = np.float16, np.float32
    sa, sw = ops.sa.astype(f16), ops.sw.astype(f16)
    acc = np.zeros((ops.a.shape[0], ops.w.shape[1]), f16)
    for g, k0 in enumerate(range(0, ops.a.shape[1], ops.group)):
        part = mac.matmul(ops.a[:, k0:k0 + ops.group], ops.w[k0:k0 + ops.group]).astype(f32)
        scale = np.outer(sa[:, g], sw[g]).astype(f16).astype(f32)
        acc = (acc.astype(f32) + (part * scale).astype(f16).astype(f32)).astype(f16)
    if not ops.rank:
        return acc
    u = (ops.x.astype(f16).astype(f32) @ ops.down.astype(f16).astype(f32)).astype(f16)
    low = u.astype(f32) @ ops.up.astype(f16).astype(f32)
    return (acc.astype(f32) + low).astype(f16)


# --------------------------------------------------------------------------- SpAtten
def symmetric_per_tensor(v: np.ndarray, bits: int) -> tuple[np.ndarray, float]:
    """Signed ``bits``-bit fixed point with one scale: s = amax / (2**(bits-1) - 1),
    q = round-half-even(v / s) (int16 array, |q| <= 2**(bits-1) - 1)."""
    s = float(np.abs(v).max()) / (2 ** (bits - 1) - 1)
    return np.rint(divide_or_zero(v, s)).astype(np.int16), s


def softmax_rows(s: np.ndarray) -> np.ndarray:
    """Row softmax in float64."""
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


