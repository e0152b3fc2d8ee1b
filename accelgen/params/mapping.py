"""Parameters of the ``mapping`` block: PointAcc's ranking-based mapping unit."""
from __future__ import annotations

from dataclasses import dataclass

from .base import param, validate

#: The operations, by their code in the command beat.
OPS = ("kernel_map", "knn", "ball_query", "fps")


@dataclass(frozen=True)
class MappingConfig:
    """One unit for kernel maps, kNN, ball query and farthest point sampling on integer
    voxel coordinates, built on a merge (sort) datapath, the top-k engine and P distance
    lanes."""

    lanes: int = param(4, "P: points per beat, distance lanes, and the merge width", lo=1,
                       hi=16, power_of_two=True)
    coord_width: int = param(16, "bits per coordinate (x, y, z unsigned)", lo=2, hi=16)
    capacity: int = param(4096, "most points (and queries' k, FPS m) per job", lo=2, hi=65536)

    def __post_init__(self) -> None:
        validate(self)

    @property
    def index_width(self) -> int:
        """Bits of a point index 0..capacity-1."""
        return max(1, (self.capacity - 1).bit_length())

    @property
    def count_width(self) -> int:
        """Bits of a count 0..capacity (n, k, m)."""
        return self.capacity.bit_length()

    @property
    def max_dist2(self) -> int:
        """The largest squared distance between two points."""
        return 3 * ((1 << self.coord_width) - 1) ** 2

    @property
    def dist_width(self) -> int:
        """Bits of a squared distance."""
        return self.max_dist2.bit_length()

    @property
    def field_width(self) -> int:
        """Bits of one coordinate of a sort key: c * stride + delta + 1 lies in
        0 .. 2^(w+1), so a shifted coordinate never wraps into another."""
        return self.coord_width + 2

    @property
    def rows(self) -> int:
        """Rows of P entries in each store."""
        return -(-self.capacity // self.lanes)
