"""Parameters of the ``softmax`` block: SpAtten's softmax unit, rows pipelined."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .base import param, validate

#: The unit's number format (golden/softmax.py gives the arithmetic on it): a score
#: CLAMP << frac or more below its row's maximum has exponential 0; log2(e) with 16
#: fractional bits; the two exponential tables' address bits; the fractional bits of
#: an exponential summed (EXP_FRAC) and of a probability (PROB_FRAC); the
#: reciprocal's numerator 2^RECIP_SHIFT.
CLAMP = 16
LOG2E = round(math.log2(math.e) * (1 << 16))
TABLE_BITS = 8
EXP_FRAC, PROB_FRAC = 24, 16
RECIP_SHIFT = EXP_FRAC + PROB_FRAC
#: Largest fractional-bit count of the scores a row may declare (its ``frac``): a
#: difference from the row's maximum is clamped below CLAMP << frac, which must fit the
#: 17-bit operand of the exponential's multiplier.
MAX_FRAC = 13


@dataclass(frozen=True)
class SoftmaxConfig:
    """Softmax of each row of signed fixed-point scores streamed P lanes per beat:
    probabilities out as unsigned fixed point with 16 fractional bits."""

    lanes: int = param(16, "P: scores per input beat and probabilities per output beat",
                       lo=1, hi=64)
    width: int = param(16, "bits per score (two's complement); each row declares its "
                       f"fractional bits (0..{MAX_FRAC}) on its beats", lo=2, hi=32)
    capacity: int = param(1024, "longest row n (elements); the row stores hold two rows",
                          lo=1, hi=65536)

    def __post_init__(self) -> None:
        validate(self)

    @property
    def row_beats(self) -> int:
        """Beats of the longest row."""
        return math.ceil(self.capacity / self.lanes)

    @property
    def count_width(self) -> int:
        return self.lanes.bit_length()

    @property
    def score_range(self) -> tuple[int, int]:
        return -(1 << (self.width - 1)), (1 << (self.width - 1)) - 1
