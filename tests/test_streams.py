"""Payload packing against hand-computed bit positions, and the pattern helpers."""
import itertools

import numpy as np
import pytest
from amaranth import signed, unsigned
from amaranth.lib import data

from accelgen.sim.streams import PATTERN_CYCLES, fixed, materialize, pack, random_pattern, unpack

LAYOUT = data.StructLayout({"x": data.ArrayLayout(signed(4), 3), "flag": unsigned(1),
                            "y": unsigned(7)})


def test_pack_matches_hand_computed_bits():
    # x occupies bits 0..11 (4 bits each, two's complement), flag bit 12, y bits 13..19
    fields = {"x": np.array([[-1, 2, -8]]), "flag": np.array([1]), "y": np.array([127])}
    word = (0xF) | (0x2 << 4) | (0x8 << 8) | (1 << 12) | (127 << 13)
    assert pack(LAYOUT, fields) == [word]


def test_unpack_inverts_pack_on_random_beats():
    rng = np.random.default_rng(3)
    fields = {"x": rng.integers(-8, 8, (50, 3)), "flag": rng.integers(0, 2, 50),
              "y": rng.integers(0, 128, 50)}
    back = unpack(LAYOUT, pack(LAYOUT, fields))
    for key, value in fields.items():
        np.testing.assert_array_equal(back[key], value)


def test_pack_rejects_values_that_do_not_fit():
    with pytest.raises(ValueError, match="x.1"):
        pack(LAYOUT, {"x": np.array([[0, 8, 0]]), "flag": np.array([0]), "y": np.array([0])})


def test_patterns():
    assert list(itertools.islice(fixed([1, 0, 0]), 6)) == [True, False, False] * 2
    bits = materialize(random_pattern(0.25, seed=7))
    assert len(bits) == PATTERN_CYCLES and 0.2 < sum(bits) / len(bits) < 0.3
    assert bits == materialize(random_pattern(0.25, seed=7))
    with pytest.raises(ValueError, match="high at least once"):
        materialize(fixed([0]))
