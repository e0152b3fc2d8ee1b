"""Reset in the middle of streams, then a full job: the result equals the golden."""
import numpy as np
import pytest

from accelgen.params import MacConfig
from accelgen.registry import get
from accelgen.sim.amaranth_backend import Resets, run_amaranth
from accelgen.sim.streams import random_pattern

#: the fast subset that mutation testing runs (pyproject [tool.mutmut])
pytestmark = pytest.mark.mutation


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mac_after_mid_stream_resets(seed):
    block, cfg = get("mac"), MacConfig(rows=3, cols=2, k_max=16)
    bench, rng = block.bench, np.random.default_rng(seed)

    def inputs(m, k, n):
        return {"a": rng.integers(-128, 128, (m, k)), "w": rng.integers(-128, 128, (k, n))}

    junk = bench.job(cfg, inputs(5, 9, 4), random_pattern(0.7, seed), random_pattern(0.6, seed + 1))
    real_in = inputs(4, 11, 3)
    real = bench.job(cfg, real_in, random_pattern(0.8, seed + 2), random_pattern(0.7, seed + 3))
    resets = [int(x) for x in rng.integers(1, 60, 4)]  # cut mid-tile, mid-drain, ...
    result = run_amaranth(block.component(cfg), real, resets=Resets(junk, resets))
    beats = result.beats["o"]
    assert len(beats) == real.sinks["o"].count  # nothing leaked, nothing lost
    c = bench.decode(cfg, real_in, beats)["c"]
    np.testing.assert_array_equal(c, real_in["a"] @ real_in["w"])


@pytest.mark.parametrize("mode", ["w4a8", "w4a4", "msb_lsb"])
def test_mac_modes_after_mid_stream_resets(mode):
    """Resets while the scale and low-rank streams (and w4a4's epilogue) are mid-tile."""
    from accelgen.sim.mac import random_inputs

    block, cfg = get("mac"), MacConfig(rows=3, cols=2, k_max=16, mode=mode, group=4)
    bench, rng = block.bench, np.random.default_rng(3)
    junk = bench.job(cfg, random_inputs(cfg, 5, 9, 4, rng, rank=2), random_pattern(0.7, 1),
                     random_pattern(0.6, 2))
    real_in = random_inputs(cfg, 4, 11, 3, rng, rank=3)
    real = bench.job(cfg, real_in, random_pattern(0.8, 3), random_pattern(0.7, 4))
    resets = [int(x) for x in rng.integers(1, 60, 4)]
    result = run_amaranth(block.component(cfg), real, resets=Resets(junk, resets))
    beats = result.beats["o"]
    assert len(beats) == real.sinks["o"].count
    np.testing.assert_array_equal(bench.decode(cfg, real_in, beats)["c"],
                                  bench.expected(cfg, real_in)["c"])


@pytest.mark.parametrize("engine", ["quickselect", "fast"])
@pytest.mark.parametrize("seed", [0, 1])
def test_topk_after_mid_stream_resets(engine, seed):
    block = get("topk")
    cfg = block.config(engine=engine, lanes=3, width=6, capacity=20)
    bench, rng = block.bench, np.random.default_rng(seed)

    def inputs(r, n):
        return {"scores": rng.integers(0, 64, (r, n)), "k": rng.integers(1, n + 1, r)}

    junk = bench.job(cfg, inputs(6, 17), random_pattern(0.7, seed), random_pattern(0.6, seed + 1))
    real_in = inputs(5, 11)
    real = bench.job(cfg, real_in, random_pattern(0.8, seed + 2), random_pattern(0.7, seed + 3))
    resets = [int(x) for x in rng.integers(1, 80, 4)]  # mid-row, mid-round, mid-replay, ...
    result = run_amaranth(block.component(cfg), real, resets=Resets(junk, resets))
    beats = result.beats["o"]
    assert len(beats) == real.sinks["o"].count  # nothing leaked, nothing lost
    got = bench.decode(cfg, real_in, beats)["indices"]
    for row, k, idx in zip(real_in["scores"], real_in["k"], got):
        want = sorted(range(len(row)), key=lambda i: (-row[i], i))[:k]
        assert idx[:k].tolist() == sorted(want)


@pytest.mark.parametrize("seed", [0, 1])
def test_merger_after_mid_stream_resets(seed):
    """Resets cut merges of 5 streams anywhere (mid-tree, mid-carry, mid-output); the
    next merge is exact."""
    block = get("merger")
    cfg = block.config(ways=5, lanes=2, key_width=8, value_width=10)
    bench, rng = block.bench, np.random.default_rng(seed)

    def parts(top):
        return [(np.sort(rng.integers(0, top, n)), rng.integers(-9, 10, n))
                for n in rng.integers(0, 30, 5)]

    junk = bench.round_job(cfg, parts(256), random_pattern(0.7, seed),
                           random_pattern(0.6, seed + 1))
    real_parts = parts(60)
    real = bench.round_job(cfg, real_parts, random_pattern(0.8, seed + 2),
                           random_pattern(0.7, seed + 3))
    resets = [int(x) for x in rng.integers(1, 60, 4)]
    result = run_amaranth(block.component(cfg), real, resets=Resets(junk, resets))
    beats = result.beats["o"]
    assert len(beats) == real.sinks["o"].count  # nothing leaked, nothing lost
    got = bench.decode(cfg, None, beats)
    sums = {}
    for keys, values in real_parts:
        for k, v in zip(keys.tolist(), values.tolist()):
            sums[k] = sums.get(k, 0) + v
    assert got["keys"].tolist() == sorted(sums)
    assert got["values"].tolist() == [sums[k] for k in sorted(sums)]


def test_mapping_after_mid_stream_resets():
    """Resets while a shuffled kernel map fills the scatter table (reset does not clear
    memories): the next job's maps are still exact, so the table is cleared per job."""
    from accelgen.params.mapping import MappingConfig
    from mapping_refs import kernel_map_ref, random_cloud

    block, cfg = get("mapping"), MappingConfig(lanes=2, coord_width=4, capacity=32)
    bench, rng = block.bench, np.random.default_rng(4)
    junk_in = {"coords": random_cloud(rng, 30, 4), "op": "kernel_map", "kernel_size": 3,
               "stride": 1}
    real_in = {"coords": random_cloud(rng, 25, 4), "op": "kernel_map", "kernel_size": 3,
               "stride": 1}
    junk = bench.job(cfg, junk_in, random_pattern(0.7, 1), random_pattern(0.6, 2))
    real = bench.job(cfg, real_in, random_pattern(0.8, 3), random_pattern(0.7, 4))
    resets = [int(x) for x in rng.integers(60, 400, 3)]  # mid-sort, mid-scatter, mid-scan
    result = run_amaranth(block.component(cfg), real, resets=Resets(junk, resets))
    beats = result.beats["o"]
    assert len(beats) == real.sinks["o"].count
    out = bench.decode(cfg, real_in, beats)
    maps, _ = kernel_map_ref(real_in["coords"], 3, 1)
    assert list(zip(out["offset"].tolist(), out["in_idx"].tolist(),
                    out["out_idx"].tolist())) == maps


@pytest.mark.parametrize("seed", [0, 1])
def test_softmax_after_mid_stream_resets(seed):
    """Resets mid-row and with rows in every pass; then rows equal float64 softmax within
    2^-12 (and the golden model bit for bit)."""
    block = get("softmax")
    cfg = block.config(lanes=3, width=12, capacity=20)
    bench, rng = block.bench, np.random.default_rng(seed)

    def inputs(r, n):
        return {"scores": rng.integers(-2048, 2048, (r, n)), "frac": np.array(8)}

    junk = bench.job(cfg, inputs(6, 17), random_pattern(0.7, seed), random_pattern(0.6, seed + 1))
    real_in = inputs(5, 11)
    real = bench.job(cfg, real_in, random_pattern(0.8, seed + 2), random_pattern(0.7, seed + 3))
    resets = [int(x) for x in rng.integers(1, 120, 4)]  # mid-row, mid-exponentials, ...
    result = run_amaranth(block.component(cfg), real, resets=Resets(junk, resets))
    beats = result.beats["o"]
    assert len(beats) == real.sinks["o"].count  # nothing leaked, nothing lost
    got = bench.decode(cfg, real_in, beats)["probs_fixed"]
    x = real_in["scores"] / 256.0
    e = np.exp(x - x.max(axis=1, keepdims=True))
    assert np.abs(got / 65536.0 - e / e.sum(axis=1, keepdims=True)).max() <= 2.0 ** -12
    assert (got == bench.expected(cfg, real_in)["probs_fixed"]).all()
