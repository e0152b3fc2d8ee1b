"""The block registry: one entry per block, iterated by the CLI, the tests and synthesis.

Each block's faces are found by its name: ``accelgen/params/<block>.py`` (config),
``hdl/<block>.py`` (component), ``golden/<block>.py`` (bit-exact and cycle models),
``sim/<block>.py`` (testbench adapter), ``tests/test_<block>*.py``; the preset is the
config class's defaults.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from accelgen.params import MacConfig, MappingConfig, MergerConfig, SpgemmConfig, TopkConfig
from accelgen.params.base import ConfigError


@dataclass(frozen=True)
class Block:
    """A registered block: its name, config class, a one-line summary, and the small
    configurations (parameter dicts) at which its stream rules are proven formally
    (sim/formal.py)."""

    name: str
    config: type
    summary: str
    formal: tuple[dict, ...]
    #: label -> the shorter BMC depth run inside ``make test`` for a configuration whose
    #: depth-20 proof takes minutes (``make formal`` proves depth 20 for every one)
    formal_test_depth: dict[str, int] = field(default_factory=dict)
    #: label -> the BMC depth of the proof with the block's invariants
    #: (sim/invariants.py) in ``make formal``, where depth 20 is out of reach (each step
    #: costs more than the last: minutes per step past these depths)
    invariant_depth: dict[str, int] = field(default_factory=dict)

    def formal_configs(self) -> list[tuple[str, object]]:
        """(label, config) of every formally proven configuration."""
        return [(self.name + "".join(f"-{v}" for k, v in p.items() if isinstance(v, str)),
                 self.config(**p)) for p in self.formal]

    @property
    def bench(self):
        """The testbench adapter module ``sim.<name>`` (inputs, job, decode, golden)."""
        return importlib.import_module(f"accelgen.sim.{self.name}")

    @property
    def invariants(self):
        """The block's formal invariants (``sim.invariants.<name>``), or None."""
        return getattr(importlib.import_module("accelgen.sim.invariants"), self.name, None)

    def component(self, cfg):
        """A fresh Amaranth component for ``cfg``."""
        return self.bench.component(cfg)


BLOCKS: dict[str, Block] = {b.name: b for b in [
    Block("mac", MacConfig, "output-stationary matrix-multiply array: W8A8, QServe W4A8, "
          "SVDQuant W4A4 + low rank, SpAtten MSB/LSB passes",
          formal=({"rows": 2, "cols": 2, "k_max": 4, "mode": "w8a8"},
                  {"rows": 2, "cols": 2, "k_max": 4, "mode": "w4a8", "group": 2},
                  {"rows": 1, "cols": 1, "k_max": 4, "mode": "w4a4", "group": 2},
                  {"rows": 2, "cols": 2, "k_max": 4, "mode": "msb_lsb"}),
          # w4a4 at depth 20: 2.5 min (the epilogue's 64-bit multipliers); depth 17
          # still covers a whole tile through the epilogue and a stalled result row.
          # The invariants compare every result with its tile's sums: depth 13 covers
          # a tile of k_max beats and both its result rows (cycles 11-12)
          # inside make test the other modes stop at 16: a tile's results are out by
          # cycle 12 and a stalled result row is held for the cycles after
          formal_test_depth={"mac-w4a4": 17, "mac-w8a8": 16, "mac-w4a8": 16,
                             "mac-msb_lsb": 16},
          invariant_depth={"mac-w8a8": 13, "mac-w4a8": 13, "mac-msb_lsb": 13, "mac-w4a4": 17}),
    Block("topk", TopkConfig, "SpAtten top-k: the k largest scores of each row, in input order",
          formal=tuple({"engine": e, "lanes": 2, "width": 2, "capacity": 3}
                       for e in ("quickselect", "fast")),
          # depth 20: about a minute each; a full row (3 scores, k = 2) is out by cycle
          # 7 (quickselect) or 8 (fast), so depth 13 proves whole rows and stalled results
          formal_test_depth={"topk-quickselect": 13, "topk-fast": 13},
          invariant_depth={"topk-quickselect": 12, "topk-fast": 12}),
    Block("merger", MergerConfig, "SpArch merger: W key-sorted streams into one, equal "
          "keys summed", formal=({"ways": 3, "lanes": 2, "key_width": 2, "value_width": 2},),
          # depth 20: 45 s; three short streams are merged and out by cycle 13
          formal_test_depth={"merger": 16}, invariant_depth={"merger": 12}),
    Block("spgemm", SpgemmConfig, "SpArch outer-product SpGEMM: condensed columns of A times "
          "rows of B, merged", formal=({"ways": 2, "lanes": 2, "row_width": 1, "col_width": 1,
                                        "a_width": 2, "b_width": 2, "value_width": 4},),
          invariant_depth={"spgemm": 12}),
    Block("mapping", MappingConfig, "PointAcc mapping unit: kernel maps, kNN, ball query and "
          "FPS on one merge (sort) datapath with the top-k engine",
          formal=({"lanes": 1, "coord_width": 2, "capacity": 2},),
          # depth 20: about 9 minutes; by cycle 10 a job is loaded, sorted and its
          # first results are out
          formal_test_depth={"mapping": 10}, invariant_depth={"mapping": 12}),
]}


def get(name: str) -> Block:
    """The block called ``name``; unknown names raise a one-line ConfigError."""
    if name not in BLOCKS:
        raise ConfigError(f"block: {name!r} is unknown; allowed: {', '.join(BLOCKS)}")
    return BLOCKS[name]
