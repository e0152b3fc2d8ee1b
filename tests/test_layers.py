"""The project's layers, checked on its import graph (grimp: every import statement,
the ones inside functions included).

    configs (accelgen.params)  <  hdl, golden  <  sim, synth  <  the CLI and its tools

Each lower package imports only the packages it is allowed; the top (the rest of
``accelgen``: CLI, registry, bench, workloads, ...) may import any of them. So there is
no import cycle between packages, and ``golden`` can never share code with ``hdl``.
"""

import grimp
import pytest

PACKAGES = ("accelgen", "hdl", "golden", "sim", "synth")
CONFIGS = "accelgen.params"
#: package -> the project packages its modules may import (the ``accelgen`` package
#: itself only holds ``__version__``)
ALLOWED = {
    CONFIGS: {CONFIGS},
    "hdl": {"hdl", CONFIGS},
    "golden": {"golden", CONFIGS},
    "synth": {"synth", "hdl", CONFIGS},
    "sim": {"sim", "hdl", "golden", CONFIGS},
}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _layer(module: str) -> str | None:
    """The lower layer ``module`` belongs to (None for the top)."""
    return next((p for p in ALLOWED if _within(module, p)), None)


def violations(graph, allowed=ALLOWED) -> list[str]:
    """'importer -> imported (line n)' for every import that breaks ``allowed``."""
    found = []
    for importer in sorted(graph.modules):
        layer = _layer(importer)
        if layer is None:
            continue
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if imported == "accelgen" or any(_within(imported, p) for p in allowed[layer]):
                continue
            lines = [d["line_number"] for d in graph.get_import_details(
                importer=importer, imported=imported)]
            found.append(f"{importer} -> {imported} (line {', '.join(map(str, lines))})")
    return found


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def test_every_package_keeps_to_its_layer(graph):
    assert violations(graph) == []


def test_a_forbidden_import_is_found():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    graph.add_import(importer="golden.mac", imported="hdl.mac", line_number=1,
                     line_contents="from hdl.mac import Mac")
    graph.add_import(importer="sim.runner", imported="accelgen.cli", line_number=2,
                     line_contents="from accelgen.cli import main")
    assert violations(graph) == ["golden.mac -> hdl.mac (line 1)",
                                 "sim.runner -> accelgen.cli (line 2)"]
