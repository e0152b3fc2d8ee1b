"""The on-disk Verilog cache misses when anything the Verilog is made from changes.

A width derived in a config class (``MacConfig.acc_width``) is changed in a copy of
the project; the same block and config, converted through the same cache, must give
new Verilog with the new accumulator width (the old key, which hashed ``hdl/`` and
``repr(cfg)`` only, returned the stale text).
"""

import shutil
import subprocess
import sys
from pathlib import Path

from accelgen import LAYERS

ROOT = Path(__file__).resolve().parent.parent
ACC_WIDTH_RETURN = "return (peak * self.k_max).bit_length() + 1"

CONVERT = """
import re, sys
from accelgen import registry
from accelgen.params import MacConfig
from accelgen.sim.runner import _verilog
assert registry.__file__.startswith(sys.argv[1]), registry.__file__
text = _verilog(registry.get("mac").component(MacConfig(rows=1, cols=1, k_max=16)), "mac")
print(sorted({int(w) + 1 for w in re.findall(r"reg (?:signed )?\\[(\\d+):0\\] acc_", text)}))
"""


def _accumulator_widths(tree: Path, cache: Path) -> str:
    proc = subprocess.run([sys.executable, "-c", CONVERT, str(tree)], cwd=tree,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree),
                               "ACCELGEN_CACHE": str(cache), "HOME": str(cache)},
                          capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def test_a_changed_derived_width_gives_new_verilog(tmp_path):
    tree, cache = tmp_path / "tree", tmp_path / "cache"
    for package in ("accelgen", *LAYERS):
        shutil.copytree(ROOT / package, tree / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    # 16 beats of int8 x int8: 16 * 128 * 128 = 2^18 needs 19 bits + sign
    assert _accumulator_widths(tree, cache) == "[20]"

    params = tree / "accelgen" / "params" / "mac.py"
    text = params.read_text()
    assert ACC_WIDTH_RETURN in text
    params.write_text(text.replace(ACC_WIDTH_RETURN, ACC_WIDTH_RETURN + " + 3"))
    assert _accumulator_widths(tree, cache) == "[23]"
    assert len(list((cache / "verilog").glob("*.v"))) == 2
