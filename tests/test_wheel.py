"""Installed the way a user installs it (a wheel, as pip builds one from a git URL), into
a fresh virtual environment and run from outside the checkout: everything lives under
the one ``accelgen`` namespace, and ``accelgen list``, ``generate`` and a short ``run``
on Icarus work."""

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np

from accelgen import LAYERS

ROOT = Path(__file__).resolve().parent.parent


def _run(args, cwd, check=True):
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          check=check, env={"PATH": "/usr/local/bin:/usr/bin:/bin",
                                            "HOME": str(cwd)})


def test_the_wheel_installs_one_namespace_that_lists_generates_and_runs(tmp_path):
    source = tmp_path / "source"  # a copy: setuptools builds in the source tree
    source.mkdir()
    for item in ("pyproject.toml", "README.md", "accelgen", *LAYERS):
        copy = shutil.copytree if (ROOT / item).is_dir() else shutil.copy
        copy(ROOT / item, source / item, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                            if (ROOT / item).is_dir() else {}))
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "dist",
          source], cwd=tmp_path)
    wheel, = (tmp_path / "dist").glob("accelgen-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"accelgen"}
    assert {"accelgen/hdl/lanes.py", "accelgen/golden/merger.py", "accelgen/sim/runner.py",
            "accelgen/synth/flow.py", "accelgen/params/merger.py"} <= set(names)

    env = tmp_path / "env"
    _run([sys.executable, "-m", "venv", env], cwd=tmp_path)
    _run([env / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", wheel],
         cwd=tmp_path)
    # the dependencies come from the project's environment (no network, no editable
    # install: a path added by a .pth file does not run that folder's .pth files)
    site = _run([env / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path"
                 "('purelib'))"], cwd=tmp_path).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")

    where = _run([env / "bin" / "python", "-c", "import accelgen.hdl; print(accelgen.hdl."
                  "__file__)"], cwd=tmp_path).stdout.strip()
    assert where.startswith(site)
    assert _run([env / "bin" / "python", "-c", "import hdl"], cwd=tmp_path,
                check=False).returncode != 0

    accelgen = env / "bin" / "accelgen"
    assert "merger:" in _run([accelgen, "list"], cwd=tmp_path).stdout
    _run([accelgen, "generate", "merger", "--set", "ways=2", "--set", "lanes=1", "-o", "rtl"],
         cwd=tmp_path)
    assert "module merger" in (tmp_path / "rtl" / "merger.v").read_text()

    np.savez(tmp_path / "in.npz", keys=np.array([1, 4, 2, 4]), values=np.array([5, 6, 7, -1]),
             lengths=np.array([2, 2]))
    run = _run([accelgen, "run", "merger", "--set", "ways=2", "--set", "lanes=1", "--sim",
                "icarus", "--input", "in.npz", "--output", "out.npz"], cwd=tmp_path)
    assert '"match": true' in run.stdout
    with np.load(tmp_path / "out.npz") as out:
        assert out["keys"].tolist() == [1, 2, 4] and out["values"].tolist() == [5, 7, 5]
