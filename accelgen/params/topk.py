"""Parameters of the ``topk`` block: SpAtten's top-k selection engine and a faster one."""
from __future__ import annotations

from dataclasses import dataclass

from .base import param, validate

ENGINES = ("quickselect", "fast")


@dataclass(frozen=True)
class TopkConfig:
    """Selects the k largest of each row of scores streamed P lanes per beat."""

    lanes: int = param(16, "P: scores per input beat and selected pairs per output beat",
                       lo=1, hi=64)
    width: int = param(16, "bits per score", lo=1, hi=40)
    signed: bool = param(False, "scores are two's-complement signed")
    smallest: bool = param(False, "select the k smallest scores instead of the k largest "
                           "(ties still go to the lower index)")
    capacity: int = param(1024, "longest row n (elements) the row buffers hold; k <= capacity",
                          lo=1, hi=65536)
    engine: str = param("fast", "micro-architecture: quickselect (SpAtten's: pivot rounds, "
                        "then a replay pass, one row at a time) or fast (histogram filter "
                        "while streaming, radix refinement on survivors, rows pipelined)",
                        choices=ENGINES)
    regions: int = param(4, "the fast engine's survivor-store regions, so rows in flight (one "
                         "each in stages 1 and 2, two in the replay); 2 halves its block RAM "
                         "for a unit that sends one row at a time", lo=2, hi=4)

    def __post_init__(self) -> None:
        validate(self)

    @property
    def index_width(self) -> int:
        """Bits of an element index 0..capacity-1."""
        return max(1, (self.capacity - 1).bit_length())

    @property
    def k_width(self) -> int:
        """Bits of the per-row k field, 0..capacity."""
        return self.capacity.bit_length()

    @property
    def count_width(self) -> int:
        """Bits of a beat's lane count, 0..P."""
        return self.lanes.bit_length()
