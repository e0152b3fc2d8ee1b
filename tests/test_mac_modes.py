"""The mac modes (w4a8, w4a4, msb_lsb) on every simulator under stalls, against NumPy
references written here, independent of golden/mac.py."""
import numpy as np
import pytest

from accelgen.params import MacConfig
from accelgen.registry import get
from accelgen.run import run_block
from accelgen.sim.mac import random_inputs
from accelgen.sim.streams import fixed, random_pattern

BLOCK = get("mac")
# One small array per mode (3 x 2, the papers' groups: 128 for w4a8, 64 for w4a4),
# shared by every case so each simulator builds it once.
CONFIGS = {mode: MacConfig(rows=3, cols=2, k_max=384, mode=mode)
           for mode in ("w4a8", "w4a4", "msb_lsb")}
STALLS = {
    "none": lambda: (None, None),
    "random": lambda: (random_pattern(0.6, seed=1), random_pattern(0.5, seed=2)),
    "bursty": lambda: (fixed([1, 1, 1, 0, 0]), fixed([0, 1, 0, 1, 1, 1])),
}


def reference(mode: str, x: dict, group: int) -> np.ndarray:
    """C from the papers' formulas in plain Python integers (papers.md §1, §4, §5)."""
    a = x["a"].astype(object)
    if mode == "w4a8":  # W8 = q*s2 - z, read as int8 (wraps only outside QServe's range)
        g = np.arange(x["w_q"].shape[0]) // group
        w8 = x["w_q"].astype(object) * x["w_s2"][g].astype(object) - x["w_z"][g]
        w8 = (w8 + 128) % 256 - 128
        return (a @ w8).astype(np.int64)
    if mode == "w4a4":
        m, k = a.shape
        c = np.zeros((m, x["w"].shape[1]), object)
        for k0 in range(0, k, group):
            part = a[:, k0:k0 + group] @ x["w"][k0:k0 + group].astype(object)
            c += part * np.outer(x["a_scale"][:, k0 // group].astype(object),
                                 x["w_scale"][k0 // group].astype(object))
        if "lr_u" in x:
            c += (x["lr_u"].astype(object) @ x["lr_l2"].astype(object)) * int(x["lr_scale"])
        return c.astype(np.int64)
    b = x["b"].astype(object)
    coarse = a @ ((b // 16) * 16)  # the MSB pass: bits 11..4 in place
    return np.where(x["lsb_rows"][:, None], a @ b, coarse).astype(np.int64)


def _run(mode, x, sim, stalls="none", cfg=None):
    cfg = cfg or CONFIGS[mode]
    valid, ready = STALLS[stalls]()
    out, rep = run_block(BLOCK, cfg, x, sim, valid=valid, ready=ready)
    np.testing.assert_array_equal(out["c"], reference(mode, x, cfg.group_size))
    assert rep["match"] and rep["stream_violations"] == 0 and not rep["timed_out"]
    if stalls == "none":  # the cycle models are exact without stalls
        assert rep["cycles"] == rep["model_cycles"]
    assert rep["cycles"] >= rep["bound_cycles"]
    return rep


@pytest.mark.parametrize("stalls", ["none", "random"])
@pytest.mark.parametrize("mode", list(CONFIGS))
@pytest.mark.parametrize("m, k, n, rank", [(1, 1, 1, 0), (4, 150, 5, 3)])
def test_random_shapes(any_sim, mode, m, k, n, rank, stalls):
    """Shapes not multiples of the array or the group (K = 150: two w4a8 groups, three
    w4a4 groups, the last one short); w4a4 with and without low rank."""
    x = random_inputs(CONFIGS[mode], m, k, n, np.random.default_rng(m * 100 + k), rank=rank)
    _run(mode, x, any_sim, stalls)


def test_w4a8_byte_arithmetic_at_its_limits(any_sim):
    """q = 15 with s2 = 127 (q*s2 = 1905: the byte wraps as QServe's kernel's does), q =
    0, z at -128 and 127, a at -128: every W8 corner under random stalls."""
    rng = np.random.default_rng(4)
    x = {"a": np.full((4, 256), -128), "w_q": rng.choice([0, 15], (256, 3)),
         "w_s2": rng.choice([1, 127], (2, 3)), "w_z": rng.choice([-128, 127], (2, 3))}
    _run("w4a8", x, any_sim, "bursty")


def test_w4a4_extremes(any_sim):
    """-8 x -8 over K = k_max, scales and low-rank operands at their maxima: the 64-bit
    sums are exact (|C| about 3.9e14, past 2**48)."""
    cfg, rank = CONFIGS["w4a4"], 4
    k, g = cfg.k_max, cfg.k_max // cfg.group_size
    x = {"a": np.full((3, k), -8), "w": np.full((k, 2), -8),
         "a_scale": np.full((3, g), 65535), "w_scale": np.full((g, 2), 65535),
         "lr_u": np.full((3, rank), -32768), "lr_l2": np.full((rank, 2), -32768),
         "lr_scale": np.array(65535)}
    _run("w4a4", x, any_sim, "random")


@pytest.mark.parametrize("asks", ["none", "all", "alternate"])
def test_msb_lsb_passes(any_sim, asks):
    """B at -2048 and 2047 with a at -128 over K = k_max; LSB passes requested by no
    row, every row, or every other row (4 of 7: gathered into 2 row tiles, the second
    shared with rows that did not ask)."""
    cfg = CONFIGS["msb_lsb"]
    rng = np.random.default_rng(7)
    m = 7
    x = {"a": rng.choice([-128, 127], (m, cfg.k_max)),
         "b": rng.choice([-2048, 2047, -1, 15], (cfg.k_max, 3)),
         "lsb_rows": {"none": np.zeros(m, bool), "all": np.ones(m, bool),
                      "alternate": np.arange(m) % 2 == 0}[asks]}
    rep = _run("msb_lsb", x, any_sim)
    # the asking rows share row tiles: ceil(asking / R) of them, times 2 column tiles
    tiles_asking = {"none": 0, "all": 3 * 2, "alternate": 2 * 2}[asks]
    assert rep["lsb_pass_cycles"] == tiles_asking * cfg.k_max
    assert rep["msb_pass_cycles"] == 3 * 2 * cfg.k_max


def test_w4a4_group_longer_than_group_is_flagged_and_the_next_tile_is_exact(any_sim, tmp_path):
    """Hardware bad input: a tile whose first group has group + 1 beats (its second is
    fine) gets `overflow` on all its rows; the following valid tile is exact and
    unflagged."""
    from accelgen.hdl.mac_layouts import result_layout
    from accelgen.sim import runner
    from accelgen.sim.job import Job, Sink, Source
    from accelgen.sim.mac import LAYOUTS, decode, stream_fields
    from accelgen.sim.streams import pack, unpack

    cfg, rng = CONFIGS["w4a4"], np.random.default_rng(8)
    k = cfg.group_size + 11
    bad = stream_fields(cfg, random_inputs(cfg, 3, k, 2, rng))
    # groups of group + 1 and 10 beats, in place of group and 11
    bad["i"]["last"] = np.isin(np.arange(k), [cfg.group_size, k - 1])
    good_in = random_inputs(cfg, 3, 100, 2, rng, rank=2)
    good = stream_fields(cfg, good_in)
    sources = {port: Source(pack(layout(cfg), bad[port]) + pack(layout(cfg), good[port]),
                            random_pattern(0.7, seed=len(port)))
               for port, layout in LAYOUTS.items()}
    job = Job(sources, {"o": Sink(6, random_pattern(0.6, seed=6))}, max_cycles=5000)
    result = runner.run(any_sim, BLOCK.component(cfg), "mac", job, tmp_path)
    assert unpack(result_layout(cfg), result.beats["o"])["overflow"].tolist() == [1] * 3 + [0] * 3
    assert not result.violations
    np.testing.assert_array_equal(decode(cfg, good_in, result.beats["o"][3:])["c"],
                                  reference("w4a4", good_in, cfg.group_size))


#: the output columns each real case keeps: the right-hand operand and its per-column arrays
COLUMNS = {"w4a8": ("w_q", "w_s2", "w_z"), "w4a4": ("w", "w_scale", "lr_l2"), "msb_lsb": ("b",)}


def _real_case(mode: str) -> dict:
    """Slices of real MiniLM operands (accelgen.workloads, from golden/quant.py):
    layer-0 FFN1 on 8 tokens of text, the first 12 output channels (w4a8: QServe's
    groups of 128; w4a4: SVDQuant's groups of 64 with a rank-32 low-rank branch);
    msb_lsb: head 0's Q.K^T on 64 tokens, 12 keys, LSB passes where the MSB-only softmax
    peaks below 0.1."""
    from accelgen.sim.mac import real_workload as real_operands

    x = real_operands(mode, 64 if mode == "msb_lsb" else 8, 0, "ffn1", rank=32, head=0)
    return {**x, **{key: x[key][:, :12] for key in COLUMNS[mode]}}


@pytest.mark.parametrize("mode", list(CONFIGS))
def test_real_operands(hdl_sim, mode):
    """Real weights and activations at the papers' group sizes, random stalls; msb_lsb
    has rows with and without the LSB pass."""
    x = _real_case(mode)
    if mode == "msb_lsb":
        assert 0 < x["lsb_rows"].sum() < len(x["lsb_rows"])
    _run(mode, x, hdl_sim, "random")


@pytest.mark.mutation
def test_the_epilogue_names_a_wrong_config():
    from accelgen.hdl.mac_epilogue import Epilogue

    with pytest.raises(TypeError, match=r"cfg must be a MacConfig, not 'x'"):
        Epilogue("x")


@pytest.mark.mutation
def test_w4a4_with_four_rows_on_amaranth():
    """R = 4: the epilogue's set and drain counters wrap at 3, not at a power-of-two
    boundary's neighbour (the other configurations have R = 3 and 1)."""
    cfg = MacConfig(rows=4, cols=2, k_max=384, mode="w4a4")
    x = random_inputs(cfg, 6, 70, 3, np.random.default_rng(12), rank=2)
    _run("w4a4", x, "amaranth", "random", cfg)
