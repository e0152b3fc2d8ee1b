"""Every registered block's component refuses a configuration of the wrong type with
a message naming the class it wants (before anything is built)."""
import pytest

from accelgen.registry import BLOCKS

#: the fast subset that mutation testing runs (pyproject [tool.mutmut])
pytestmark = pytest.mark.mutation


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_a_wrong_config_type_is_named(name):
    block = BLOCKS[name]
    with pytest.raises(TypeError, match=rf"^cfg must be a {block.config.__name__}, not 'x'$"):
        block.component("x")
