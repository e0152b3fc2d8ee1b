"""Parameters of the ``mac`` block: an output-stationary INT8 matrix-multiply array."""
from __future__ import annotations

from dataclasses import dataclass

from .base import param, validate

#: int8 x int8 products lie in [-128*127, 128*128] = [-16256, 16384].
PRODUCT_MAX = 128 * 128


@dataclass(frozen=True)
class MacConfig:
    """An R x C array of int8 multiply-accumulate PEs producing int32 results."""

    rows: int = param(8, "PE rows R: output rows (of M) computed per tile", lo=1, hi=32)
    cols: int = param(8, "PE columns C: output columns (of N) computed per tile", lo=1, hi=32)
    k_max: int = param(4096, "largest reduction length K; sets the accumulator width",
                       lo=1, hi=65536)

    def __post_init__(self) -> None:
        validate(self)

    @property
    def acc_width(self) -> int:
        """Signed accumulator bits that hold any sum of k_max int8 products exactly
        (28 for k_max = 4096; at most 32, since k_max <= 65536)."""
        return (PRODUCT_MAX * self.k_max).bit_length() + 1
