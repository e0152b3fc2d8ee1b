"""``make bench`` section of the mac block's quantized modes: their error on real MiniLM
layers against the float64 product, from the integer golden (golden/quant.py)."""
from __future__ import annotations

from accelgen.table import markdown
from accelgen.golden import quant

#: tokens of the sample text pushed through MiniLM for the study
TOKENS = 128


def quant_error_table() -> str:
    """Two Markdown tables: every mode's relative error ||Y_q - Y|| / ||Y|| against
    Y = X @ W (float64, no bias), and, for W4A4 + rank 32, the accumulation error of
    the fixed-point hardware and of nunchaku-style fp16 against the exact float64
    evaluation of the same quantized operands."""
    rows = quant.error_rows(TOKENS)
    ranks = [f"w4a4 r{r}" for r in quant.STUDY_RANKS]
    errors = markdown(
        ["layer", "Linear", "K x N", "W8A8", "W4A8 (QServe)", "W4A4",
         *[f"W4A4 + LR{r}" for r in quant.STUDY_RANKS],
         "W4A4, smoothed", f"W4A4 + LR{quant.COMPARE_RANK}, smoothed"],
        [[r["layer"], r["linear"], r["shape"], r["w8a8"], r["w4a8"], r["w4a4 r0"],
          *[r[k] for k in ranks], r["w4a4 smooth r0"],
          r[f"w4a4 smooth r{quant.COMPARE_RANK}"]] for r in rows])
    accumulation = markdown(
        ["layer", "Linear", "F", "fixed point (hardware) vs exact", "nunchaku fp16 vs exact"],
        [[r["layer"], r["linear"], r["F"], r["fixed vs exact"], r["fp16 vs exact"]]
         for r in rows])
    return "\n".join([
        f"{TOKENS} tokens of the sample text; relative Frobenius error against the float64 "
        "X @ W. Smoothing is used only in the last two columns (lambda = sqrt(xspan / wspan), "
        "fitted on the same tokens); every other W4A4 column is unsmoothed.",
        "", errors, "",
        f"W4A4 + LR{quant.COMPARE_RANK} (unsmoothed): error of the accumulation against "
        "the exact float64 evaluation of the same quantized operands "
        "(y = C * 2^-F for the hardware).",
        "", accumulation])

