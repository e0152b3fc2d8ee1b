"""Parameters of the ``spgemm`` block: SpArch's outer-product SpGEMM (multipliers in
front of the streaming merger)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import ConfigError, param, validate
from .merger import MergerConfig


@dataclass(frozen=True)
class SpgemmConfig:
    """C = A . B for integer sparse matrices: one multiplier row per merge way turns a
    condensed column of A and the matching rows of B into a partial-product stream."""

    ways: int = param(16, "W: partial matrices merged at once (merge-tree fan-in)", lo=2, hi=64)
    lanes: int = param(4, "P: entries per output beat; the merge root takes P a cycle",
                       lo=1, hi=16)
    row_width: int = param(16, "bits of a row index of A and C", lo=1, hi=31)
    col_width: int = param(16, "bits of a column index of B and C", lo=1, hi=31)
    a_width: int = param(8, "bits per value of A (signed)", lo=2, hi=32)
    b_width: int = param(8, "bits per value of B (signed)", lo=2, hi=32)
    value_width: int = param(32, "bits per value of C and of partial sums (signed); "
                             "`accelgen run` refuses products whose sums overflow",
                             lo=4, hi=64)

    def __post_init__(self) -> None:
        validate(self)
        if self.value_width < self.a_width + self.b_width:
            raise ConfigError(f"value_width: {self.value_width} cannot hold a product; "
                              f"allowed: >= a_width + b_width = {self.a_width + self.b_width}")
        if self.row_width + self.col_width > 62:
            raise ConfigError(f"row_width: {self.row_width} + col_width {self.col_width} "
                              f"is too wide; allowed: a sum <= 62")

    @property
    def merger(self) -> MergerConfig:
        """The merge tree: keys are (row, column), values never clamp."""
        return MergerConfig(ways=self.ways, lanes=self.lanes,
                            key_width=self.row_width + self.col_width,
                            value_width=self.value_width, saturate=False)

    @property
    def in_lanes(self) -> int:
        return self.merger.in_lanes
