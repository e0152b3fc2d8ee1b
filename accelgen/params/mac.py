"""Parameters of the ``mac`` block: an output-stationary matrix-multiply array with four
operand modes (W8A8, QServe W4A8, SVDQuant W4A4 + low-rank, SpAtten MSB/LSB)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import ConfigError, param, validate

MODES = ("w8a8", "w4a8", "w4a4", "msb_lsb")
#: int8 x int8 products lie in [-128*127, 128*128] = [-16256, 16384].
PRODUCT_MAX = 128 * 128
#: int8 x 12-bit products (msb_lsb: A . B with B in -2048..2047) reach 128 * 2048.
PRODUCT_MAX_12 = 128 * 2048
#: int4 x int4 products lie in [-56, 64].
PRODUCT_MAX_4 = 8 * 8
#: Default quantization group along K: QServe's 128 (w4a8), SVDQuant's 64 (w4a4).
DEFAULT_GROUP = {"w4a8": 128, "w4a4": 64}


@dataclass(frozen=True)
class MacConfig:
    """An R x C array of multiply-accumulate PEs; ``mode`` picks the operand formats."""

    rows: int = param(8, "PE rows R: output rows (of M) computed per tile", lo=1, hi=32)
    cols: int = param(8, "PE columns C: output columns (of N) computed per tile", lo=1, hi=32)
    k_max: int = param(4096, "largest reduction length K; sets the accumulator width "
                       "(msb_lsb: at most 4096, so A.B fits int32)", lo=1, hi=65536)
    mode: str = param("w8a8", "operands: w8a8 (int8 x int8 -> int32), w4a8 (QServe: uint4 "
                      "weights dequantized at the array edge as q*s2 - z), w4a4 (SVDQuant: "
                      "int4 x int4 per-group partials scaled and summed in 64 bits, plus a "
                      "16-bit low-rank branch), msb_lsb (SpAtten: 12-bit B as an MSB pass "
                      "and an optional per-row LSB pass)", choices=MODES)
    group: int = param(0, "K elements per quantization group (w4a8, w4a4); 0 = the mode's "
                       "default: 128 for w4a8 (QServe), 64 for w4a4 (SVDQuant)", lo=0, hi=4096)

    def __post_init__(self) -> None:
        validate(self)
        if self.mode == "msb_lsb" and self.k_max > 4096:
            raise ConfigError(f"k_max: {self.k_max} is out of range for mode msb_lsb; "
                              "allowed: integer 1..4096")

    @property
    def group_size(self) -> int:
        """The quantization group along K (w4a8, w4a4); 0 for the modes without one."""
        return self.group or DEFAULT_GROUP.get(self.mode, 0)

    @property
    def acc_width(self) -> int:
        """Signed bits of a PE accumulator: any sum it holds fits exactly. w8a8/w4a8:
        k_max int8 products (28 for k_max = 4096); msb_lsb: k_max int8 x 12-bit products
        (32 for 4096); w4a4: one group of int4 products (14 for a group of 64)."""
        if self.mode == "w4a4":
            return (PRODUCT_MAX_4 * self.group_size).bit_length() + 1
        peak = PRODUCT_MAX_12 if self.mode == "msb_lsb" else PRODUCT_MAX
        return (peak * self.k_max).bit_length() + 1

    @property
    def result_width(self) -> int:
        """Bits of a result element: int32, or int64 for w4a4's scaled sums."""
        return 64 if self.mode == "w4a4" else 32
