"""``accelgen run``'s engine (``run_block``) on a block with two output streams: a
splitter sends even numbers to ``even`` and odd ones to ``odd``; each output is
decoded, compared and counted on its own, on every simulator under random stalls."""
from dataclasses import dataclass

import numpy as np
from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from accelgen.registry import Block
from accelgen.run import run_block
from accelgen.sim.adapter import Adapter
from accelgen.sim.job import Job, Sink, Source
from accelgen.sim.streams import random_pattern


class Splitter(wiring.Component):
    """Each input number is held in a one-beat register, then leaves on ``even`` or
    ``odd``; one beat a cycle while the chosen output takes it."""

    i: In(stream.Signature(unsigned(8)))
    even: Out(stream.Signature(unsigned(8)))
    odd: Out(stream.Signature(unsigned(8)))

    def elaborate(self, platform):
        m = Module()
        full, held = Signal(), Signal(8)
        taken = full & Mux(held[0], self.odd.ready, self.even.ready)
        for port, mine in ((self.even, ~held[0]), (self.odd, held[0])):
            m.d.comb += [port.payload.eq(held), port.valid.eq(full & mine)]
        m.d.comb += self.i.ready.eq(~full | taken)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [full.eq(1), held.eq(self.i.payload)]
        with m.Elif(taken):
            m.d.sync += full.eq(0)
        return m


class SplitterAdapter:
    """The adapter protocol for the splitter (tests/test_adapters.py's protocol)."""
    INPUTS, OUTPUTS = "x: uint8 [N]", "even: [E], odd: [O]"

    def component(self, cfg):
        return Splitter()

    def check_inputs(self, cfg, arrays):
        return arrays

    def job(self, cfg, inputs, valid, ready, max_cycles=None):
        x = [int(v) for v in inputs["x"]]
        return Job(sources={"i": Source(x, valid)},
                   sinks={"even": Sink(sum(v % 2 == 0 for v in x), ready),
                          "odd": Sink(sum(v % 2 for v in x), ready)},
                   max_cycles=max_cycles or 20 * len(x) + 200)

    def decode(self, cfg, inputs, beats):
        return {name: np.array(beats[name], np.int64) for name in ("even", "odd")}

    def flagged(self, cfg, inputs, beats):
        return sum(v % 2 != (name == "odd") for name in beats for v in beats[name])

    def expected(self, cfg, inputs):
        x = np.asarray(inputs["x"], np.int64)
        return {"even": x[x % 2 == 0], "odd": x[x % 2 == 1]}

    def timing(self, cfg, inputs, job_, result):
        return {}, {}

    def model(self, cfg, inputs):
        return {"model_cycles": len(inputs["x"]), "bound_cycles": len(inputs["x"])}

    def default_workload(self, cfg, seed=0):
        return {"x": np.arange(10)}

    def soak_workload(self, cfg, items, seed=0):
        return {"x": np.arange(items) % 256}


@dataclass(frozen=True)
class SplitterConfig:
    """The splitter has no parameters."""


class _Splitter(Block):
    @property
    def bench(self):
        return SplitterAdapter()


def test_a_block_with_two_output_streams_runs(any_sim, tmp_path):
    block = _Splitter("splitter", SplitterConfig, "two output streams", formal=())
    x = np.random.default_rng(1).integers(0, 256, 60)
    outputs, report = run_block(block, SplitterConfig(), {"x": x}, any_sim,
                                valid=random_pattern(0.7, 1), ready=random_pattern(0.5, 2),
                                workdir=tmp_path)
    assert report["match"] and report["mismatches"] == 0 and report["error_flags"] == 0
    assert outputs["even"].tolist() == [v for v in x.tolist() if v % 2 == 0]
    assert outputs["odd"].tolist() == [v for v in x.tolist() if v % 2]
    assert report["input_beats"] == 60
    assert isinstance(block.bench, Adapter)


def test_missing_output_beats_are_mismatches_not_a_crash(tmp_path):
    """A job that ends before every output beat arrives (too few cycles allowed): the
    missing beats of each output count as mismatches and the run says it timed out."""
    class Hurried(SplitterAdapter):
        def job(self, cfg, inputs, valid, ready, max_cycles=None):
            return super().job(cfg, inputs, valid, ready, max_cycles=3)

    class _Hurried(_Splitter):
        @property
        def bench(self):
            return Hurried()
    x = np.array([2, 4, 5, 6, 7, 9])
    _, report = run_block(_Hurried("splitter", SplitterConfig, "", formal=()), SplitterConfig(),
                          {"x": x}, "amaranth", workdir=tmp_path)
    assert not report["match"] and report["timed_out"]
    assert report["mismatches"] >= 2
