"""Formal proofs: every registered block keeps the stream rules and its invariants
(sim/invariants.py); a broken buffer and deliberately broken blocks fail with a trace."""
import pytest
from amaranth import Cat, Module, Signal, unsigned
from amaranth.hdl import Assume
from amaranth.lib import data, wiring
from buffers import Buffer

from accelgen.params import MacConfig, TopkConfig
from accelgen.registry import BLOCKS, get
from accelgen.hdl.lanes import SlotQueue
from accelgen.hdl.pipeline import StagedQueue
from accelgen.hdl.mac import MacArray
from accelgen.hdl.mapping_parts import DistanceLanes, FrameCloser, MergeFeed, RunReader
from accelgen.hdl.topk_fast import Filter, Refine
from accelgen.params.mapping import MappingConfig
from accelgen.sim.formal import prove


CONFIGS = [(block, case, cfg) for block in BLOCKS.values()
           for case, cfg in block.formal_configs()]
FORMAL = {case.label: (block, case, cfg) for block, case, cfg in CONFIGS}


#: Configurations whose invariants are proven inside ``make test`` too (at their
#: ``invariant_depth``, seconds); ``make formal`` proves every one.
QUICK_INVARIANTS = ("merger",)


def _covered(case) -> bool:
    """The invariants proof (which includes the stream rules) goes as deep."""
    return case.label in QUICK_INVARIANTS and case.invariant_depth >= case.test_depth


STREAM_ONLY = [c for c in CONFIGS if not _covered(c[1])]


@pytest.mark.parametrize("block, case, cfg", STREAM_ONLY, ids=[c[1].label for c in STREAM_ONLY])
def test_every_block_keeps_the_stream_rules(block, case, cfg, tmp_path):
    outcome = prove(block.component(cfg), case.label, tmp_path, depth=case.test_depth,
                    **case.options)
    assert outcome.passed, outcome.line(case.label)


@pytest.mark.parametrize("label", QUICK_INVARIANTS)
def test_invariants_hold(label, tmp_path):
    block, case, cfg = FORMAL[label]
    outcome = prove(block.component(cfg), label, tmp_path, depth=case.invariant_depth,
                    invariants=block.invariants, cover_depth=case.test_depth, **case.options)
    assert outcome.passed, outcome.line(label)


#: Configurations whose stream rules k-induction proves for ever within seconds
#: (``make formal`` also proves mac-w4a4, topk-quickselect and mapping; the mac's other
#: modes do not close: their induction step starts from states no reset reaches).
INDUCTIVE = ("topk-fast", "merger", "spgemm", "softmax")


@pytest.mark.parametrize("label", INDUCTIVE)
def test_stream_rules_are_proven_for_ever(label, tmp_path):
    block, case, cfg = FORMAL[label]
    outcome = prove(block.component(cfg), label, tmp_path, depth=10, mode="prove",
                    cover_depth=case.test_depth, **case.options)
    assert outcome.passed, outcome.line(label)


def test_a_correct_buffer_is_proven_by_induction(tmp_path):
    outcome = prove(Buffer(), "buffer", tmp_path, depth=10, mode="prove")
    assert outcome.passed, outcome.line("buffer")


def test_a_buffer_that_changes_a_stalled_beat_fails_with_a_trace(tmp_path):
    outcome = prove(Buffer("unstable"), "unstable", tmp_path, depth=10)
    assert not outcome.proven and outcome.trace is not None and outcome.trace.exists()


def test_a_vacuous_assumption_fails_the_cover(tmp_path):
    """An environment that never takes an output beat makes every output assertion hold
    trivially; the proof passes, the cover of a final output beat does not."""
    def never_ready(m, dut):
        m.d.comb += Assume(~dut.o.ready)
    outcome = prove(Buffer(), "vacuous", tmp_path, depth=10, invariants=never_ready)
    assert outcome.proven and not outcome.covered and not outcome.passed
    assert "not reachable" in outcome.line("vacuous")


class Sabotaged(wiring.Component):
    """A block whose output payload passes through ``change`` (its inputs untouched):
    a bug the block's invariants must catch."""

    def __init__(self, inner, change):
        self.inner, self.change, self.cfg = inner, change, inner.cfg
        super().__init__(dict(inner.signature.members))

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self.inner
        for name, member in self.signature.members.items():
            if member.flow == wiring.In:
                wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(inner, name))
        m.d.comb += [self.o.valid.eq(inner.o.valid), inner.o.ready.eq(self.o.ready),
                     self.o.payload.eq(inner.o.payload)]
        self.change(m, inner.o.payload, self.o.payload)
        return m


def _swap_lanes(field):
    """Lanes 0 and 1 of the output's ``field`` array exchanged: out of order."""
    def change(m, good, bad):
        m.d.comb += [getattr(bad, field)[0].eq(getattr(good, field)[1]),
                     getattr(bad, field)[1].eq(getattr(good, field)[0])]
    return change


def _first_index_plus_one(m, good, bad):
    m.d.comb += bad.lanes[0].index.eq(good.lanes[0].index + 1)


class NarrowMac(MacConfig):
    """A mac whose accumulators are one bit narrower than k_max needs."""

    @property
    def acc_width(self):
        return super().acc_width - 1


@pytest.mark.parametrize("name, dut, depth", [
    ("merger", lambda: Sabotaged(get("merger").component(FORMAL["merger"][2]),
                                 _swap_lanes("entries")), 21),
    ("topk", lambda: Sabotaged(get("topk").component(FORMAL["topk-fast"][2]),
                               _swap_lanes("pairs")), 34),
    ("mac", lambda: MacArray(NarrowMac(**get("mac").formal[0].params)), 13),
    ("mapping", lambda: Sabotaged(get("mapping").component(FORMAL["mapping"][2]),
                                  _first_index_plus_one), 10),
])
def test_each_invariant_catches_a_broken_block(name, dut, depth, tmp_path):
    """Output entries out of order (merger keys, top-k indices), an accumulator one bit
    short, an index past the job's points: each fails its block's invariants with a
    counterexample trace."""
    outcome = prove(dut(), name, tmp_path, depth=depth, invariants=get(name).invariants)
    assert not outcome.proven and outcome.trace is not None and outcome.trace.exists()


def _push_only_with_room(m, queue):
    m.d.comb += Assume(~(queue.push_mask.any() | queue.push_final) | queue.room)


def _close_only_with_room(m, closer):
    m.d.comb += Assume(~(closer.mask.any() | closer.close) | closer.room)


def _held(*names):
    """A driver that never changes the part's inputs ``names`` (the mapping unit's
    sequencer changes a query or a merge feed's mode only between passes)."""
    def driver(m, part):
        inputs = Cat(*[getattr(part, name) for name in names])
        before, started = Signal.like(inputs), Signal()
        m.d.sync += [before.eq(inputs), started.eq(1)]
        m.d.comb += Assume(~started | (inputs == before))
    return driver


#: the fast top-k engine's smallest configuration (its formal one)
TINY_TOPK = TopkConfig(engine="fast", lanes=2, width=2, capacity=3)
#: the mapping unit's smallest configuration (its formal one)
TINY = MappingConfig(lanes=2, coord_width=2, capacity=4)


def _beat(lanes):
    return data.StructLayout({"items": data.ArrayLayout(unsigned(2), lanes),
                              "count": unsigned(lanes.bit_length()), "last": unsigned(1)})


@pytest.mark.parametrize("name, part, driver, depth", [
    ("slot_queue", lambda: SlotQueue(_beat(2), "items"), _push_only_with_room, 16),
    ("staged_queue", lambda: StagedQueue(_beat(2), "items"), _push_only_with_room, 16),
    ("frame_closer", lambda: FrameCloser(_beat(2), "items"), _close_only_with_room, 16),
    ("run_reader", lambda: RunReader(2, 3, data_shape=2), None, 16),
    ("distance_lanes", lambda: DistanceLanes(TINY), _held("query"), 16),
    ("merge_feed", lambda: MergeFeed(TINY, 0), _held("merging", "kmap", "stride2", "delta"), 16),
    # (a row's job leaves the filter filter_latency = 14 cycles after its final beat)
    ("topk_filter", lambda: Filter(TINY_TOPK), None, 20),
    ("topk_refine", lambda: Refine(TINY_TOPK), None, 16),
])
def test_parts_with_a_stream_keep_the_stream_rules(name, part, driver, depth, tmp_path):
    """Proven for every input a legal driver gives (pushes only with room; the mapping
    unit's query and merge-feed mode held), to the depth given, with a cover of a final
    beat (a frame's last, a run's last row)."""
    outcome = prove(part(), name, tmp_path, depth=depth, invariants=driver)
    assert outcome.passed, outcome.line(name)
