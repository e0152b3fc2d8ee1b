"""Parameters of the ``merger`` block: SpArch's streaming W-way sorted merger."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .base import param, validate


@dataclass(frozen=True)
class MergerConfig:
    """Merges ``ways`` key-sorted streams of (key, value) entries into one, summing the
    values of equal keys; a binary tree of FLiMS merge nodes."""

    ways: int = param(16, "W: sorted input streams merged into one", lo=2, hi=64)
    lanes: int = param(4, "P: entries per output beat; the tree's root merges P per cycle",
                       lo=1, hi=16)
    key_width: int = param(32, "bits per key (unsigned)", lo=1, hi=64)
    value_width: int = param(32, "bits per value (two's complement), inputs and sums",
                             lo=2, hi=64)
    saturate: bool = param(True, "sums of equal keys clamp to the value range; false: they "
                           "wrap, and `accelgen run` refuses inputs whose sums overflow")

    def __post_init__(self) -> None:
        validate(self)

    @property
    def depth(self) -> int:
        """Levels of two-way merge nodes from the root to the input ports."""
        return math.ceil(math.log2(self.ways))

    def node_lanes(self, level: int) -> int:
        """Entries per beat at tree level ``level`` (0 = root): P at the root and its
        children, then halving toward the leaves (when P is a power of two) down to
        ``leaf_lanes``, so every subtree can deliver at least twice its average share of
        the root's P per cycle."""
        if self.lanes & (self.lanes - 1):
            return self.lanes
        return min(self.lanes, max(self.leaf_lanes, (2 * self.lanes) >> level))

    @property
    def leaf_lanes(self) -> int:
        """The narrowest nodes' lanes: P/8 (at least 1), so a few active streams can
        still feed a wide root (real partial products often come from few streams)."""
        return max(1, self.lanes // 8)

    @property
    def in_lanes(self) -> int:
        """Entries per beat on each input port."""
        return self.node_lanes(self.depth)

    @property
    def value_range(self) -> tuple[int, int]:
        return -(1 << (self.value_width - 1)), (1 << (self.value_width - 1)) - 1
