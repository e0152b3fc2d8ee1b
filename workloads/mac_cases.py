"""Real operands of the mac block's quantized modes, from MiniLM on the sample text
(data/minilm.py) through the quantizers of golden/quant.py, and the quantization
error study of every mode on real MiniLM Linears."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from accelgen.golden import mac
from accelgen.golden.quant import (per_token_int8, qserve_weight, rel_error, softmax_rows,
                                   symmetric_per_tensor, w4a4_exact, w4a4_fixed_point,
                                   w4a4_hardware, w4a4_nunchaku_fp16, w4a4_operands,
                                   w4a8_output, w8a8_output)

from . import minilm


def w4a8_case(tokens: int = 16, layer: int = 0, linear: str = "ffn1",
              group: int = 128) -> tuple[dict, dict]:
    """A real W4A8 GEMM of MiniLM: (run inputs {"a", "w_q", "w_s2", "w_z"}, extras
    {"s1", "sx", "group", "x", "w_f32", "bias"}); y ~ qserve_epilogue(C, s1, sx) + bias."""
    case = minilm.real_mac_case(tokens, layer, linear)
    a, sx = per_token_int8(case["x"])
    wq = qserve_weight(case["w_f32"], group)
    inputs = {"a": a, "w_q": wq["q"], "w_s2": wq["s2"], "w_z": wq["z"]}
    extras = {"s1": wq["s1"], "sx": sx, "group": group,
              "x": case["x"], "w_f32": case["w_f32"], "bias": case["bias"]}
    return inputs, extras


def w4a4_case(tokens: int = 16, layer: int = 0, linear: str = "ffn1", rank: int = 32,
              group: int = 64) -> tuple[dict, int, dict]:
    """A real W4A4 GEMM of MiniLM: (inputs of golden.mac.matmul_w4a4, F, extras
    {"operands", "group", "x", "w_f32", "bias"}); y ~ C * 2**-F + bias."""
    case = minilm.real_mac_case(tokens, layer, linear)
    ops = w4a4_operands(case["x"], case["w_f32"], rank, group)
    inputs, f = w4a4_fixed_point(ops)
    return inputs, f, {"operands": ops, "group": group,
                       "x": case["x"], "w_f32": case["w_f32"], "bias": case["bias"]}


@lru_cache(maxsize=4)
def _trace(tokens: int) -> minilm.Trace:
    return minilm.forward(minilm.sample_ids(tokens))


def head_projection(tokens: int, layer: int, name: str, head: int) -> np.ndarray:
    """One head's slice of the q / k / v projection of the layer input (float64 [T, d])."""
    cfg = minilm.config()
    d = cfg["hidden_size"] // cfg["num_attention_heads"]
    cols = slice(head * d, (head + 1) * d)
    x = _trace(tokens).layers[layer].x_qkv.astype(np.float64)
    return x @ minilm.linear_weight(layer, name)[:, cols] + minilm.linear_bias(layer, name)[cols]


def msb_lsb_case(tokens: int = 64, layer: int = 0, head: int = 0,
                 threshold: float = 0.1) -> tuple[dict, dict]:
    """Real SpAtten progressive-quantization operands (papers.md §1): one MiniLM head.

    A = Q of the head in int8 (per-tensor scale), B = K^T in 12-bit signed fixed point
    ([d, T], -2047..2047); the MSB-only scores A @ (B_msb << 4) come from
    golden.mac.matmul_msb_lsb with no LSB rows, and lsb_rows[m] is True where their
    softmax (scaled by 1/sqrt(d)) has a max probability < ``threshold``.
    Returns (run inputs {"a" int8 [T, d], "b" int16 [d, T], "lsb_rows" bool [T]},
    extras {"score_scale": float scores per integer unit, "probs_msb",
    "probs_float": the float model's probabilities, "lsb_fraction"}).
    """
    q, k = (head_projection(tokens, layer, name, head) for name in ("q", "k"))
    a, sa = symmetric_per_tensor(q, 8)
    bk, sb = symmetric_per_tensor(k, 12)
    b = np.ascontiguousarray(bk.T)
    score_scale = sa * sb / math.sqrt(q.shape[1])
    probs_msb = softmax_rows(mac.matmul_msb_lsb(a, b, np.zeros(tokens, bool)) * score_scale)
    lsb_rows = probs_msb.max(axis=1) < threshold
    inputs = {"a": a.astype(np.int8), "b": b, "lsb_rows": lsb_rows}
    return inputs, {"score_scale": score_scale, "probs_msb": probs_msb,
                    "probs_float": _trace(tokens).layers[layer].probs[head],
                    "lsb_fraction": float(lsb_rows.mean())}


# --------------------------------------------------------------------------- error study
STUDY_LAYERS = (0, 5)
STUDY_LINEARS = ("ffn1", "ffn2")
STUDY_RANKS = (16, 32, 64)
#: rank of the fixed-point / fp16 accumulation comparison and of the smoothed column
COMPARE_RANK = 32
SMOOTH_ALPHA = 0.5


def error_row(tokens: int, layer: int, linear: str) -> dict:
    """Relative Frobenius errors of every mode against Y = X @ W in float64 (no bias),
    on a real MiniLM Linear (see :func:`error_rows`)."""
    case = minilm.real_mac_case(tokens, layer, linear)
    x, w = case["x"].astype(np.float64), case["w_f32"].astype(np.float64)
    ref = x @ w
    row = {"layer": layer, "linear": linear, "shape": f"{w.shape[0]}x{w.shape[1]}",
           "w8a8": rel_error(w8a8_output(x, w), ref), "w4a8": rel_error(w4a8_output(x, w), ref)}
    for rank in (0,) + STUDY_RANKS:
        ops = w4a4_operands(x, w, rank)
        row[f"w4a4 r{rank}"] = rel_error(w4a4_hardware(ops), ref)
        if rank == COMPARE_RANK:
            exact = w4a4_exact(ops)
            row["F"] = w4a4_fixed_point(ops)[1]
            row["fixed vs exact"] = rel_error(w4a4_hardware(ops), exact)
            row["fp16 vs exact"] = rel_error(w4a4_nunchaku_fp16(ops), exact)
    for rank in (0, COMPARE_RANK):
        smooth = w4a4_operands(x, w, rank, alpha=SMOOTH_ALPHA)
        row[f"w4a4 smooth r{rank}"] = rel_error(w4a4_hardware(smooth), ref)
    return row


def error_rows(tokens: int = 64, layers=STUDY_LAYERS, linears=STUDY_LINEARS) -> list[dict]:
    """The error study over real MiniLM Linears (the first ``tokens`` tokens of the
    sample text).  Per row: W8A8 (per-channel W, per-token A, golden.mac.matmul),
    W4A8 (QServe, golden.mac.matmul_w4a8 + fp16 epilogue), W4A4 with low rank 0 and
    STUDY_RANKS (golden.mac.matmul_w4a4 on the fixed-point inputs), W4A4 with smoothing
    (alpha = 0.5) without and with the rank-32 branch (SVDQuant's full method); and for W4A4 + rank 32 the error of the fixed-point output and
    of nunchaku-style fp16 accumulation against the exact float64 evaluation of the
    same quantized operands."""
    return [error_row(tokens, layer, linear) for layer in layers for linear in linears]
