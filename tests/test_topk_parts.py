"""The top-k engines' replay stage alone (hdl/topk.py ``Replayer``) on the Amaranth
simulator against a plain Python model: it streams a store's rows in order, keeps
key > θ and the first ``need`` keys equal to θ (keys under ``mask``) until k_eff are
kept, and sends them as pair beats under back-pressure."""
import random

import pytest
from amaranth import Elaboratable, Module
from amaranth.lib import data, memory
from amaranth.sim import Simulator

from accelgen.hdl.topk import Replayer, item_layout
from accelgen.params import TopkConfig

#: the fast subset that mutation testing runs (pyproject [tool.mutmut])
pytestmark = pytest.mark.mutation
KEY_WIDTH = 6


class _StoreAndReplayer(Elaboratable):
    """A replayer reading a one-cycle-read memory of rows of items."""

    def __init__(self, cfg, rows, init):
        self.replay, self.rows, self.init = Replayer(cfg, KEY_WIDTH, rows), rows, init
        self.row = data.ArrayLayout(item_layout(cfg, KEY_WIDTH), cfg.lanes)

    def elaborate(self, platform):
        m = Module()
        m.submodules.replay = replay = self.replay
        m.submodules.mem = mem = memory.Memory(shape=self.row, depth=self.rows, init=self.init)
        port = mem.read_port(transparent_for=())
        m.d.comb += [port.addr.eq(replay.r_row), replay.r_data.eq(port.data)]
        return m


def _job(rng, items, lanes, rows_total):
    """A replay job on a random span of rows, with θ, mask and need picked from its keys;
    returns its parameters and the (index, value) pairs to send."""
    base = rng.randrange(rows_total)
    rows = rng.randrange(1, rows_total - base + 1)
    tail = rng.randrange(1, lanes + 1)
    span = [items[r * lanes + j] for r in range(base, base + rows)
            for j in range(lanes if r + 1 < base + rows else tail)]
    mask = rng.choice([(1 << KEY_WIDTH) - 1, 0b111000])
    theta = rng.choice(span)[0] & mask
    equal = [x for x in span if x[0] & mask == theta]
    need = rng.randrange(len(equal) + 1)
    kept, seen = [], 0
    for key, value, index in span:
        if key & mask > theta or (key & mask == theta and (seen := seen + 1) <= need):
            kept.append((index, value))
    # the engines hand over k_eff = (keys above θ) + need, so the job ends on its last keep
    return dict(base=base, rows=rows, tail=tail, k_eff=len(kept), theta=theta, mask=mask,
                need=need), kept


@pytest.mark.parametrize("lanes", (1, 3, 4))
def test_replayer_keeps_the_first_k_eff_qualifying_items_in_order(lanes):
    rng, rows_total = random.Random(lanes), 6
    cfg = TopkConfig(lanes=lanes, width=8, capacity=lanes * rows_total)
    items = [(rng.randrange(1 << KEY_WIDTH), rng.randrange(256), i)
             for i in range(lanes * rows_total)]
    init = [[{"key": k, "value": v, "index": i} for k, v, i in items[r * lanes:(r + 1) * lanes]]
            for r in range(rows_total)]
    top = _StoreAndReplayer(cfg, rows_total, init)
    replay = top.replay

    async def bench(ctx):
        for _ in range(40):
            params, want = _job(rng, items, lanes, rows_total)
            for name, value in params.items():
                ctx.set(getattr(replay, name), value)
            while ctx.get(replay.busy):
                await ctx.tick()
            ctx.set(replay.start, 1)
            await ctx.tick()
            ctx.set(replay.start, 0)
            got, last, cycles = [], False, 0
            while want and not last:
                ready = rng.random() < 0.5
                ctx.set(replay.o.ready, ready)
                beat = ctx.get(replay.o.payload)
                if ctx.get(replay.o.valid) and ready:
                    got += [(p.index, p.value) for p in list(beat.pairs)[:beat.count]]
                    last = bool(beat.last)
                await ctx.tick()
                cycles += 1
                assert cycles < 200, params
            ctx.set(replay.o.ready, 0)
            assert got == want, params
            for _ in range(3):  # nothing more for this job
                assert not ctx.get(replay.o.valid)
                await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
