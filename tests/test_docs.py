"""Every registered block has every face, and its page's generated contract is current
(``accelgen docs`` rewrites it from the registry)."""
from pathlib import Path

import pytest

from accelgen import contract, registry

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", list(registry.BLOCKS))
def test_every_block_has_every_face(name):
    """Config, hardware, golden model, adapter, bench sections, tests and a page, found
    by the name."""
    for face in (f"accelgen/params/{name}.py", f"hdl/{name}.py", f"golden/{name}.py",
                 f"sim/{name}.py", f"accelgen/benches/{name}.py", f"docs/blocks/{name}.md"):
        assert (ROOT / face).is_file(), face
    assert list((ROOT / "tests").glob(f"test_{name}*.py"))
    assert registry.get(name).timing, "a block needs a timing guard (docs/timing.md)"
    sections = registry.get(name).bench_sections
    assert sections and all(isinstance(title, str) and callable(run) for title, run in sections)


@pytest.mark.parametrize("name", list(registry.BLOCKS))
def test_the_pages_contract_is_generated_from_the_registry(name):
    page = (ROOT / "docs" / "blocks" / f"{name}.md").read_text()
    assert page.count(contract.BEGIN) == 1
    assert contract.updated(page, registry.get(name)) == page, \
        f"docs/blocks/{name}.md is out of date: run `accelgen docs`"
