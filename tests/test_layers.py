"""The project's layers, checked on every import statement of its sources (the ones
inside functions too, read with ``ast``):

    configs (accelgen.params)  <  accelgen.hdl, accelgen.golden  <  accelgen.workloads
    <  accelgen.sim, accelgen.synth  <  the CLI and its tools (the rest of ``accelgen``)

(``accelgen.workloads``, the real workloads, may use the golden quantizers; the golden
models never read a workload.)

Each lower package imports only the packages it is allowed; the top may import any of
them. So there is no import cycle between packages, and ``golden`` can never share code
with ``hdl``.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = "accelgen.params"
#: package -> its folder in the repository
FOLDERS = {CONFIGS: ROOT / "accelgen" / "params", "accelgen.hdl": ROOT / "hdl",
           "accelgen.golden": ROOT / "golden", "accelgen.workloads": ROOT / "workloads",
           "accelgen.sim": ROOT / "sim",
           "accelgen.synth": ROOT / "synth"}
#: package -> the project packages its modules may import (the ``accelgen`` package
#: itself only holds ``__version__`` and finds the folders)
ALLOWED = {
    CONFIGS: {CONFIGS},
    "accelgen.hdl": {"accelgen.hdl", CONFIGS},
    "accelgen.golden": {"accelgen.golden", CONFIGS},
    "accelgen.workloads": {"accelgen.workloads", "accelgen.golden", CONFIGS},
    "accelgen.synth": {"accelgen.synth", "accelgen.hdl", CONFIGS},
    "accelgen.sim": {"accelgen.sim", "accelgen.hdl", "accelgen.golden", "accelgen.workloads",
                     CONFIGS},
}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def imports(source: str, package: str) -> list[tuple[str, int]]:
    """(imported module, line) of every project import in a module of ``package``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            found += [(f"{target}.{alias.name}", node.lineno) for alias in node.names]
    return [(name, line) for name, line in found if _within(name, "accelgen")]


def violations(modules: dict[str, tuple[str, str]]) -> list[str]:
    """'module -> imported (line n)' for every import that breaks :data:`ALLOWED`;
    ``modules`` maps a module's name to (its package, its source)."""
    found = []
    for module, (package, source) in sorted(modules.items()):
        for imported, line in imports(source, package):
            if imported != "accelgen.__version__" and \
                    not any(_within(imported, p) for p in ALLOWED[package]):
                found.append(f"{module} -> {imported} (line {line})")
    return found


def project_modules() -> dict[str, tuple[str, str]]:
    return {f"{package}.{path.stem}": (package, path.read_text())
            for package, folder in FOLDERS.items() for path in sorted(folder.glob("*.py"))}


def test_every_package_keeps_to_its_layer():
    modules = project_modules()
    assert len(modules) > 40
    assert violations(modules) == []


def test_a_forbidden_import_is_found():
    modules = {
        "accelgen.golden.mac": ("accelgen.golden", "def f():\n    from accelgen.hdl.mac import Mac\n"),
        "accelgen.sim.runner": ("accelgen.sim", "from accelgen.cli import main\n"),
        "accelgen.hdl.merger": ("accelgen.hdl", "from .lanes import SlotQueue\n"
                                                "from ..params import MergerConfig\n"
                                                "from ..sim import job\n"),
    }
    assert violations(modules) == ["accelgen.golden.mac -> accelgen.hdl.mac.Mac (line 2)",
                                   "accelgen.hdl.merger -> accelgen.sim.job (line 3)",
                                   "accelgen.sim.runner -> accelgen.cli.main (line 1)"]
