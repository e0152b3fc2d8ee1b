"""The softmax unit's parts alone on the Amaranth simulator, each a fixed-latency
pipeline fed a new value every cycle: against float64 exp, Python's max, sum and
integer division, and the beats written."""

import math

import numpy as np
import pytest
from amaranth.sim import Simulator

from accelgen.golden.softmax import CLAMP
from accelgen.hdl.softmax_parts import (BeatStore, Exponential, LaneSum, Normalize,
                                        Reciprocal, RowMax)

#: the fast subset that mutation testing runs (pyproject [tool.mutmut])
pytestmark = pytest.mark.mutation


def _pipeline(dut, feeds: list[dict], outputs: list, latency: int) -> list[dict]:
    """Drive ``feeds[t]`` (port name -> value; lists go to array lanes) in cycle t and
    return ``outputs``' values ``latency`` cycles later, one dict per feed."""
    got = []

    async def bench(ctx):
        for t in range(len(feeds) + latency):
            for name, value in (feeds[t] if t < len(feeds) else {}).items():
                port = getattr(dut, name)
                if isinstance(value, list):
                    for j, v in enumerate(value):
                        ctx.set(port[j], v)
                else:
                    ctx.set(port, value)
            if t >= latency:
                got.append({name: _read(ctx, getattr(dut, name)) for name in outputs})
            await ctx.tick()
        return got

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got


def _read(ctx, port):
    try:
        return ctx.get(port)
    except TypeError:
        return [ctx.get(port[j]) for j in range(len(port.shape()))]


def test_exponential_is_within_its_rounding_of_float64_exp():
    """2^24 exp(-d / 2^frac) for every frac, d from 0 to past the clamp: within 2^-13
    relative (+ 1 unit: log2(e) to 16 fractional bits is 3.5e-6 relative, up to 8e-5 in
    e at d = 16 << frac), 0 once d >= 16 << frac, and 0 when not live."""
    rng = np.random.default_rng(3)
    feeds, want = [], []
    for frac in (0, 1, 5, 8, 13):
        top = CLAMP << frac
        ds = [0, 1, 2, top - 1, top, top + 1] + rng.integers(0, top + 20, 40).tolist()
        for d in ds:
            live = d < top and rng.random() > 0.1
            feeds.append({"d": d % (1 << 17), "live": int(live), "frac": frac})
            want.append(2.0 ** 24 * math.exp(-d / 2 ** frac) if live else 0.0)
    dut = Exponential()
    got = _pipeline(dut, feeds, ["e", "e16"], dut.latency)
    for feed, exact, out in zip(feeds, want, got):
        assert abs(out["e"] - exact) <= exact * 2 ** -13 + 1, (feed, out, exact)
        assert out["e16"] == (out["e"] + 128) >> 8
        if feed["d"] == 0 and feed["live"]:
            assert out["e"] == 1 << 24


@pytest.mark.parametrize("lanes", (1, 3, 4, 16))
def test_row_max_takes_each_rows_valid_lanes(lanes):
    """Rows of 1..4 beats back to back, the final beat's first lanes only."""
    rng = np.random.default_rng(lanes)
    feeds, rows = [], []
    for _ in range(30):
        beats = int(rng.integers(1, 5))
        values = []
        for b in range(beats):
            count = int(rng.integers(1, lanes + 1)) if b == beats - 1 else lanes
            scores = rng.integers(-128, 128, lanes).tolist()
            values += scores[:count]
            feeds.append({"scores": scores, "lanes_valid": (1 << count) - 1, "valid": 1,
                          "last": int(b == beats - 1)})
        rows.append(max(values))
    dut = RowMax(lanes, 8)
    got = _pipeline(dut, feeds, ["max", "done"], dut.latency)
    assert [g["max"] for g in got if g["done"]] == rows


@pytest.mark.parametrize("lanes", (1, 5, 16))
def test_lane_sum_adds_each_rows_beats(lanes):
    rng = np.random.default_rng(lanes)
    feeds, sums = [], []
    for _ in range(25):
        beats = int(rng.integers(1, 5))
        total = 0
        for b in range(beats):
            e = rng.integers(0, 1 << 24, lanes).tolist()
            total += sum(e)
            feeds.append({"e": e, "valid": 1, "last": int(b == beats - 1)})
        sums.append(total)
    dut = LaneSum(lanes, 25, 36)
    got = _pipeline(dut, feeds, ["total", "done"], dut.latency)
    assert [g["total"] for g in got if g["done"]] == sums


def test_reciprocal_is_integer_division_of_two_to_the_forty():
    rng = np.random.default_rng(5)
    totals = [1 << 24, (1 << 24) + 1, 3 << 23, (1 << 34) - 1, 1 << 34, (1 << 35) - 1] + \
        rng.integers(1 << 24, 1 << 35, 60).tolist()
    dut = Reciprocal(35, 6)
    feeds = [{"total": s, "valid": 1, "passenger": j % 64} for j, s in enumerate(totals)]
    got = _pipeline(dut, feeds, ["r", "valid_out", "passenger_out"], dut.latency)
    assert [g["r"] for g in got] == [(1 << 40) // s for s in totals]
    assert [g["passenger_out"] for g in got] == [j % 64 for j in range(len(totals))]
    assert all(g["valid_out"] for g in got)


def test_normalize_rounds_each_lanes_product():
    rng = np.random.default_rng(6)
    feeds = [{"e16": rng.integers(0, (1 << 16) + 1, 4).tolist(),
              "r": int(rng.integers(0, (1 << 16) + 1))} for _ in range(40)]
    feeds[0] = {"e16": [1 << 16, 0, 1, 1 << 15], "r": 1 << 16}
    dut = Normalize(4)
    got = _pipeline(dut, feeds, ["p"], dut.latency)
    for feed, out in zip(feeds, got):
        assert out["p"] == [(e * feed["r"] + (1 << 15)) >> 16 for e in feed["e16"]]


def test_beat_store_reads_back_in_order_across_the_wrap():
    """Writes and reads interleaved, never more than ``depth`` held, around the ring
    several times; each read's data comes the cycle after its ``r_en``."""
    rng = np.random.default_rng(7)
    dut = BeatStore(12, 3, 8)
    written, read = [], []

    async def bench(ctx):
        held, pending = 0, False
        for _ in range(300):
            w = held < 8 and rng.random() < 0.6
            r = held > 0 and rng.random() < 0.5
            value = rng.integers(0, 1 << 12, 3).tolist()
            ctx.set(dut.w_en, w)
            for j in range(3):
                ctx.set(dut.w_data[j], value[j])
            ctx.set(dut.r_en, r)
            if pending:
                read.append([ctx.get(dut.r_data[j]) for j in range(3)])
            if w:
                written.append(value)
            held += int(w) - int(r)
            pending = r
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(read) > 100 and read == written[:len(read)]
