"""The block registry: one entry per block, iterated by the CLI, the tests and synthesis.

Each block's faces are found by its name: ``accelgen/params/<block>.py`` (config),
``hdl/<block>.py`` (component), ``golden/<block>.py`` (bit-exact and cycle models),
``sim/<block>.py`` (testbench adapter), ``accelgen/benches/<block>.py`` (``make bench``
sections), ``tests/test_<block>*.py``; the preset is the config class's defaults.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from accelgen.params import (MacConfig, MappingConfig, MergerConfig, SoftmaxConfig,
                             SpgemmConfig, TopkConfig)
from accelgen.params.base import ConfigError, specs


@dataclass(frozen=True)
class FormalCase:
    """A small configuration at which ``make formal`` proves a block: its stream rules to
    depth 20 (``make test``: to ``test_depth``, where depth 20 takes minutes), and the
    stream rules with the block's invariants (sim/invariants.py) to ``invariant_depth``
    (each step past it costs minutes)."""

    label: str
    params: dict
    test_depth: int = 20
    invariant_depth: int = 20
    #: each product a free value (sim/formal.py's ProofPlatform), for a block whose
    #: control never depends on one; its invariants then speak of control only
    free_products: bool = False
    #: the cover is an input's final beat taken (for a block whose first output is
    #: deeper than the cover check reaches; its output rules are then proven for ever
    #: by k-induction, ``tests/test_formal.py``'s INDUCTIVE)
    cover_inputs: bool = False

    @property
    def options(self) -> dict:
        """The proof options of :func:`accelgen.sim.formal.prove` this case sets."""
        return {"free_products": self.free_products, "cover_inputs": self.cover_inputs}


@dataclass(frozen=True)
class TimingGuard:
    """The structural timing guard of a block (``make test``, docs/timing.md): yosys maps
    it at ``params`` (the preset's lanes and widths, little storage: seconds to a
    minute) and the deepest path of the netlist (synth/levels.py) may have at most
    ``budget`` LUT levels. A block not yet rebuilt for timing has today's depth as its
    budget, so it cannot get deeper; a rebuilt one, :data:`LEVELS_150MHZ`."""

    params: dict
    budget: int


#: LUT levels that reach 150 MHz on ECP5 speed 6 (docs/timing.md's calibration)
LEVELS_150MHZ = 4


@dataclass(frozen=True)
class Block:
    """A registered block: its name, config class, a one-line summary, the small
    configurations at which it is proven formally (:class:`FormalCase`), and its
    structural timing guard (:class:`TimingGuard`)."""

    name: str
    config: type
    summary: str
    formal: tuple[FormalCase, ...]
    timing: tuple[TimingGuard, ...] = ()

    def parameters(self) -> list[tuple[str, str, object, str, str]]:
        """(name, type, preset value, allowed values, meaning) of every parameter."""
        preset = self.config()
        return [(name, spec.kind.__name__, getattr(preset, name), spec.allowed(), spec.doc)
                for name, spec in specs(self.config).items()]

    def formal_configs(self) -> list[tuple[FormalCase, object]]:
        """(case, config) of every formally proven configuration."""
        return [(case, self.config(**case.params)) for case in self.formal]

    @property
    def bench(self):
        """The testbench adapter module ``sim.<name>`` (inputs, job, decode, golden)."""
        return importlib.import_module(f"accelgen.sim.{self.name}")

    @property
    def bench_sections(self) -> list:
        """(title, function of the simulator -> Markdown) of ``make bench``: the module
        ``accelgen.benches.<name>``'s SECTIONS."""
        return importlib.import_module(f"accelgen.benches.{self.name}").SECTIONS

    @property
    def invariants(self):
        """The block's formal invariants (its adapter's ``invariants``), or None."""
        return getattr(self.bench, "invariants", None)

    def component(self, cfg):
        """A fresh Amaranth component for ``cfg``."""
        return self.bench.component(cfg)


BLOCKS: dict[str, Block] = {b.name: b for b in [
    Block("mac", MacConfig, "output-stationary matrix-multiply array: W8A8, QServe W4A8, "
          "SVDQuant W4A4 + low rank, SpAtten MSB/LSB passes", formal=(
              # inside make test the modes stop at 16: a tile's results are out by cycle
              # 12 and a stalled result row is held for the cycles after; the invariants
              # compare every result with its tile's sums: depth 13 covers a tile of
              # k_max beats and both its result rows (cycles 11-12)
              FormalCase("mac-w8a8", {"rows": 2, "cols": 2, "k_max": 4, "mode": "w8a8"},
                         test_depth=16, invariant_depth=13),
              FormalCase("mac-w4a8", {"rows": 2, "cols": 2, "k_max": 4, "mode": "w4a8",
                                      "group": 2}, test_depth=16, invariant_depth=13),
              # depth 20: 2.5 min (the epilogue's 64-bit multipliers); depth 17 still
              # covers a whole tile through the epilogue and a stalled result row
              FormalCase("mac-w4a4", {"rows": 1, "cols": 1, "k_max": 4, "mode": "w4a4",
                                      "group": 2}, test_depth=17, invariant_depth=17),
              FormalCase("mac-msb_lsb", {"rows": 2, "cols": 2, "k_max": 4, "mode": "msb_lsb"},
                         test_depth=16, invariant_depth=13)),
          timing=(TimingGuard({"rows": 4, "cols": 4}, budget=LEVELS_150MHZ),
                  TimingGuard({"rows": 4, "cols": 4, "mode": "w4a4"}, budget=LEVELS_150MHZ))),
    Block("topk", TopkConfig, "SpAtten top-k: the k largest scores of each row, in input order",
          # registered stages: a full row (3 scores, k = 2) is out by cycle 30 (fast) or
          # 22 (quickselect, when the first pivot is the k-th; a one-element row by
          # cycle 20), so depths 34 and 25 prove whole rows and stalled results
          formal=tuple(FormalCase(f"topk-{e}", {"engine": e, "lanes": 2, "width": 2,
                                                "capacity": 3}, test_depth=depth,
                                  invariant_depth=depth - 1)
                       for e, depth in (("quickselect", 25), ("fast", 34))),
          timing=(TimingGuard({"engine": "quickselect", "lanes": 8, "capacity": 32},
                              budget=LEVELS_150MHZ),
                  TimingGuard({"engine": "fast", "lanes": 8, "capacity": 32},
                              budget=LEVELS_150MHZ))),
    Block("merger", MergerConfig, "SpArch merger: W key-sorted streams into one, equal "
          "keys summed", formal=(
              # one node of two lanes and the combiner: two short streams are merged
              # and out by cycle 19; depth 21 takes 20 s (the 3-way tree's first beat
              # is out at cycle 25, and depth 28 takes 5 minutes)
              FormalCase("merger", {"ways": 2, "lanes": 2, "key_width": 2, "value_width": 2},
                         test_depth=21, invariant_depth=21),),
          timing=(TimingGuard({"ways": 2, "key_width": 16, "value_width": 16},
                              budget=LEVELS_150MHZ),)),
    Block("spgemm", SpgemmConfig, "SpArch outer-product SpGEMM: condensed columns of A times "
          "rows of B, merged", formal=(
              FormalCase("spgemm", {"ways": 2, "lanes": 2, "row_width": 1, "col_width": 1,
                                    "a_width": 2, "b_width": 2, "value_width": 4},
                         test_depth=22, invariant_depth=12),),
          timing=(TimingGuard({"ways": 2}, budget=6),)),
    Block("softmax", SoftmaxConfig, "softmax unit: each row's probabilities (max, base-2 "
          "exponentials from two tables, sum, one reciprocal a row), rows pipelined",
          # a row's first probability leaves 52 cycles after its first score (P = 1),
          # deeper than z3 finds a trace in 10 minutes: the cover is a row taken, the
          # products are free values (the control never reads one), and k-induction
          # proves the stream rules, the output's included, for ever (seconds)
          formal=(FormalCase("softmax", {"lanes": 1, "width": 2, "capacity": 2},
                             test_depth=20, invariant_depth=20, free_products=True,
                             cover_inputs=True),),
          timing=(TimingGuard({"lanes": 4, "capacity": 32}, budget=LEVELS_150MHZ),)),
    Block("mapping", MappingConfig, "PointAcc mapping unit: kernel maps, kNN, ball query and "
          "FPS on one merge (sort) datapath with the top-k engine", formal=(
              # depth 20: about 9 minutes; by cycle 10 a job is loaded, sorted and its
              # first results are out
              FormalCase("mapping", {"lanes": 1, "coord_width": 2, "capacity": 2},
                         test_depth=10, invariant_depth=12),),
          timing=(TimingGuard({"lanes": 2, "capacity": 32}, budget=20),)),
]}


def get(name: str) -> Block:
    """The block called ``name``; unknown names raise a one-line ConfigError."""
    if name not in BLOCKS:
        raise ConfigError(f"block: {name!r} is unknown; allowed: {', '.join(BLOCKS)}")
    return BLOCKS[name]
