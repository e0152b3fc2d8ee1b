"""The mac golden and cycle models against independent arithmetic."""
import numpy as np
import pytest

from accelgen.params import MacConfig
from accelgen.golden import mac


def test_matmul_equals_python_loops():
    rng = np.random.default_rng(0)
    a, w = rng.integers(-128, 128, (3, 5)), rng.integers(-128, 128, (5, 4))
    ref = [[sum(int(a[i, k]) * int(w[k, j]) for k in range(5)) for j in range(4)] for i in range(3)]
    got = mac.matmul(a, w)
    assert got.dtype == np.int32 and got.tolist() == ref


def test_matmul_refuses_to_wrap():
    a = np.full((1, 140000), -128)
    with pytest.raises(OverflowError):
        mac.matmul(a, np.full((140000, 1), -128))


@pytest.mark.parametrize("k_max, width", [(1, 16), (2, 17), (4096, 28), (65536, 32)])
def test_accumulator_width_holds_the_extremes(k_max, width):
    cfg = MacConfig(k_max=k_max)
    assert cfg.acc_width == width
    hi, lo = 128 * 128 * k_max, -128 * 127 * k_max
    assert hi <= 2 ** (width - 1) - 1 and lo >= -(2 ** (width - 1))
    assert hi > 2 ** (width - 2) - 1  # one bit fewer would not do


def test_cycle_model_formula():
    cfg = MacConfig(rows=8, cols=8)
    # 2 x 3 tiles of K = 100 beats: 5 full periods, then K + 2R + C + 3 for the last tile
    # (six registers from the edge to the shadow, and the skew: R + C - 2)
    assert mac.cycles(cfg, 16, 100, 24) == 5 * 100 + 100 + 16 + 8 + 3
    # short K: the period is the sweep and drain of the previous tile, 2R + C + 4
    assert mac.tile_period(cfg, 4) == 28
    assert mac.bound_cycles(cfg, 16, 100, 24) == 16 * 100 * 24 // 64


def test_w4a8_dequant_is_q_s2_minus_z_on_qserve_ranges():
    """Where QServe's quantizer puts the values (q*s2 <= 240, W8 in int8), the byte
    arithmetic equals plain q*s2 - z; outside, it wraps like the kernel's bytes."""
    rng = np.random.default_rng(1)
    s2 = rng.integers(1, 9, (3, 4))  # q*s2 <= 120
    q = rng.integers(0, 16, (3 * 8, 4))
    z = rng.integers(0, 113, (3, 4))  # q*s2 - z stays in -128..127
    w8 = mac.w4a8_weights(q, s2, z, 8)
    plain = q * np.repeat(s2, 8, 0) - np.repeat(z, 8, 0)
    assert w8.dtype == np.int8 and (w8 == plain).all()
    assert mac.w4a8_weights(np.array([[15]]), np.array([[127]]), np.array([[-128]]), 1)[0, 0] \
        == ((15 * 127 + 128) % 256 if (15 * 127 + 128) % 256 < 128 else (15 * 127 + 128) % 256 - 256)


def test_w4a4_equals_python_integers_and_refuses_int64_wrap():
    rng = np.random.default_rng(2)
    a, w = rng.integers(-8, 8, (2, 10)), rng.integers(-8, 8, (10, 3))
    sa, sw = rng.integers(0, 65536, (2, 3)), rng.integers(0, 65536, (3, 3))
    u, l2 = rng.integers(-32768, 32768, (2, 2)), rng.integers(-32768, 32768, (2, 3))
    got = mac.matmul_w4a4(a, w, sa, sw, 4, u, l2, 77)
    for i in range(2):
        for j in range(3):
            want = sum(int(sa[i, k // 4]) * int(sw[k // 4, j]) * int(a[i, k]) * int(w[k, j])
                       for k in range(10))
            want += 77 * sum(int(u[i, r]) * int(l2[r, j]) for r in range(2))
            assert got[i, j] == want
    with pytest.raises(OverflowError):
        mac.matmul_w4a4(a, w, sa, sw, 4, np.full((2, 140000), -32768), np.full((140000, 3), -32768),
                        65535)


def test_msb_lsb_split_and_passes():
    b = np.array([[-2048, -1, 0, 15, 16, 2047]])
    msb, lsb = mac.msb_lsb_split(b)
    assert (msb * 16 + lsb == b).all() and msb.min() >= -128 and msb.max() <= 127
    assert lsb.min() >= 0 and lsb.max() <= 15
    a = np.array([[3], [-128]])
    c = mac.matmul_msb_lsb(a, b, [True, False])
    assert c[0].tolist() == (3 * b[0]).tolist()  # LSB pass: exact
    assert c[1].tolist() == (-128 * (b[0] // 16) * 16).tolist()  # MSB only


@pytest.mark.parametrize("mode, k_max, width", [("w4a8", 4096, 28), ("msb_lsb", 4096, 32),
                                                ("w4a4", 4096, 14)])
def test_mode_accumulator_widths(mode, k_max, width):
    cfg = MacConfig(mode=mode, k_max=k_max)
    assert cfg.acc_width == width
    peak = {"w4a8": 128 * 128 * k_max, "msb_lsb": 128 * 2048 * k_max, "w4a4": 64 * 64}[mode]
    assert peak <= 2 ** (width - 1) - 1 < 2 * peak


def test_msb_lsb_refuses_k_max_that_would_not_fit_int32():
    with pytest.raises(ValueError, match=r"k_max: 8192 is out of range for mode msb_lsb; "
                                         r"allowed: integer 1..4096"):
        MacConfig(mode="msb_lsb", k_max=8192)
