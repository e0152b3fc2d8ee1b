"""The mac golden and cycle models against independent arithmetic."""
import numpy as np
import pytest

from accelgen.params import MacConfig
from golden import mac


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
    # 2 x 3 tiles of K = 100 beats: 5 full periods, then K + 2R + C + 2 for the last tile
    assert mac.cycles(cfg, 16, 100, 24) == 5 * 100 + 100 + 16 + 8 + 2
    # short K: the period is the sweep and drain of the previous tile, 2R + C + 3
    assert mac.tile_period(cfg, 4) == 27
    assert mac.bound_cycles(cfg, 16, 100, 24) == 16 * 100 * 24 // 64
