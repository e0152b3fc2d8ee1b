"""Golden model of the softmax unit: the fixed-point arithmetic every row goes through,
and the unit's cycle model.

Golden rule (papers-wave2.md §1, #20): p_i = exp(x_i - max) / sum_j exp(x_j - max) per
row. SpAtten's released ``Softmax.scala`` is a pass-through stub; its commented-out
design takes the max, subtracts, and forms e^x from two half-width tables (e^(a+b) =
e^a e^b). This unit does the same in base 2, exactly as follows, for a row of integer
scores x with ``frac`` fractional bits (0 <= frac <= 13):

* d = max(x) - x; d >= 16 << frac gives e = 0 (e^-16 < 2^-23, below the sum's LSB).
* t = d * LOG2E (LOG2E = round(log2(e) 2^16)): d log2(e) with frac + 16 fractional
  bits; u = t >> frac (16 fractional bits), its integer part i, fraction f.
* 2^-f = HI[f >> 8] * LO[f & 255] (two 256-entry tables of 2^-a at 16 fractional
  bits), rounded: mant = (HI * LO + 2^15) >> 16 (at most 2^16).
* e = mant 2^(8 - i) rounded to an integer: e ~ 2^24 exp(-d / 2^frac) (24 fractional
  bits); e16 = (e + 2^7) >> 8 (16 fractional bits) is what the normalization
  multiplies.
* S = sum of the row's e (at least 2^24: the maximum's e is 2^24); one reciprocal a
  row, R = floor(2^40 / S) (at most 2^16).
* p = (e16 R + 2^15) >> 16: the probability with 16 fractional bits (0..2^16).

Error: R is within 1 of 2^40 / S and e16 <= 2^16, so the normalization adds at most
about 1.5 units of 2^-16; the tables, LOG2E and the sum's rounding add much less
(tests/test_softmax_golden.py measures it against float64 softmax).
"""
from __future__ import annotations

import math

import numpy as np

# the number format is the config's (the testbench and the bench read PROB_FRAC here)
from accelgen.params.softmax import CLAMP, LOG2E, PROB_FRAC, RECIP_SHIFT, TABLE_BITS

#: 2^-a for the fraction's high and low TABLE_BITS bits, 16 fractional bits each
HI = np.array([round(2.0 ** (-j / (1 << TABLE_BITS)) * (1 << 16))
               for j in range(1 << TABLE_BITS)], np.int64)
LO = np.array([round(2.0 ** (-j / (1 << 2 * TABLE_BITS)) * (1 << 16))
               for j in range(1 << TABLE_BITS)], np.int64)


def exponentials(row: np.ndarray, frac: int) -> tuple[np.ndarray, np.ndarray]:
    """(e, e16) of one row: 2^24 and 2^16 times exp(x - max), as the unit rounds them."""
    x = np.asarray(row, np.int64)
    d = int(x.max()) - x
    live = d < (CLAMP << frac)
    u = (np.where(live, d, 0) * LOG2E) >> frac
    i, f = u >> 16, u & 0xFFFF
    mant = (HI[f >> TABLE_BITS] * LO[f & ((1 << TABLE_BITS) - 1)] + (1 << 15)) >> 16
    shift = 8 - i
    left = mant << np.clip(shift, 0, None)
    right_by = np.clip(-shift, 0, None)
    right = (mant + np.where(right_by > 0, 1 << np.clip(right_by - 1, 0, None), 0)) >> right_by
    e = np.where(live, np.where(shift >= 0, left, right), 0)
    return e, (e + (1 << 7)) >> 8


def reciprocal(total: int) -> int:
    """R = floor(2^40 / S)."""
    return (1 << RECIP_SHIFT) // int(total)


def softmax_row(row: np.ndarray, frac: int) -> np.ndarray:
    """The row's probabilities, 16 fractional bits (int64, 0..2^16)."""
    e, e16 = exponentials(row, frac)
    r = reciprocal(int(e.sum()))
    return (e16 * r + (1 << 15)) >> 16


def softmax_rows(scores: np.ndarray, frac: int) -> np.ndarray:
    """:func:`softmax_row` of every row of ``scores`` [R, n]."""
    scores = np.asarray(scores, np.int64)
    return np.stack([softmax_row(row, frac) for row in scores]) if len(scores) else \
        np.zeros(scores.shape, np.int64)


def bound_cycles(rows: int, n: int, lanes: int) -> int:
    """The physical bound: every score enters once, P a cycle."""
    return rows * math.ceil(n / lanes)


#: the unit's pipeline constants (hdl/softmax.py), in cycles: from a row's last beat
#: taken to the cycle its exponential pass may start (the input register, RowMax's
#: levels + 2, the row queue); from a row's last exponential read to the cycle its
#: normalize pass may start (the read, two registers and d: 4; the exponential: 15;
#: the sum: levels + 1; the reciprocal: 17; the reciprocal queue: 1); from a normalize
#: read to its output beat. Then the row queue's and the reciprocal queue's entries.
MAX_TO_EXP = 4
EXP_TO_NORM = 4 + 15 + 1 + 17 + 1
NORM_TO_OUT = 8
ROW_QUEUE, RECIP_QUEUE = 4, 16


def cycles(rows: int, n: int, lanes: int) -> dict[str, int]:
    """The unit's cycles for ``rows`` rows of n scores at full rate (input always valid,
    output always ready). Each pass takes a row's ceil(n/P) beats one a cycle, starting
    a row in the cycle it issues the previous row's last beat at the earliest; the input
    waits while ROW_QUEUE rows are complete but not started in pass 2, and pass 2 waits
    while RECIP_QUEUE rows are started but not yet started in pass 3. ``total``: from
    the first input beat to the last output beat; ``latency``: the first row's."""
    beats = math.ceil(n / lanes)
    levels = max(0, (lanes - 1).bit_length())
    max_to_exp, exp_to_norm = MAX_TO_EXP + levels, EXP_TO_NORM + levels
    in_at = -1
    exp_start, norm_start = [], []
    exp_last = norm_last = -1
    for r in range(rows):
        for _ in range(beats):
            in_at += 1
            if r >= ROW_QUEUE:
                in_at = max(in_at, exp_start[r - ROW_QUEUE] + 1)
        start = max(in_at + max_to_exp, exp_last)
        if r >= RECIP_QUEUE:
            start = max(start, norm_start[r - RECIP_QUEUE] + 1)
        exp_start.append(start)
        exp_last = start + beats
        norm_start.append(max(exp_last + exp_to_norm, norm_last))
        norm_last = norm_start[-1] + beats
    if not rows:
        return {"total": 0, "latency": 0}
    return {"total": norm_last + NORM_TO_OUT + 1,
            "latency": norm_start[0] + beats + NORM_TO_OUT + 1}
