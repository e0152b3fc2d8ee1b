"""Parameters of the ``softmax`` block: SpAtten's softmax unit, rows pipelined."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .base import param, validate

#: Largest fractional-bit count of the scores a row may declare (its ``frac``): a
#: difference from the row's maximum is clamped below 16 << frac, which must fit the
#: 17-bit operand of the exponent's multiplier (golden/softmax.py).
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
