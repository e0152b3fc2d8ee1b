"""accelgen: verified, parameterized RTL for the accelerator blocks of MIT HAN Lab papers.

Its layers are subpackages: the configs (``accelgen.params``), the hardware
(``accelgen.hdl``), the golden models (``accelgen.golden``), the real workloads
(``accelgen.workloads``), simulation (``accelgen.sim``) and synthesis
(``accelgen.synth``). In the repository the last five are the top-level folders
``hdl/``, ``golden/``, ``workloads/``, ``sim/`` and ``synth/``. An installed
wheel holds them inside this package (pyproject ``package-dir``). In a source checkout
(or a copy of one, such as mutmut's) they stay top-level packages and
``accelgen.hdl.lanes`` is the same module object as ``hdl.lanes``, so tools that name
modules by their file's path (mutmut) and the code's imports agree.
"""
import importlib
import importlib.abc
import importlib.util
import sys
from pathlib import Path as _Path

__version__ = "0.1.0"

#: the top-level folders of a checkout, installed as ``accelgen.<folder>``
LAYERS = ("hdl", "golden", "workloads", "sim", "synth")
_CHECKOUT = _Path(__file__).resolve().parent.parent


class _CheckoutAliases(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``accelgen.<layer>.x`` as the checkout's top-level ``<layer>.x``."""

    def find_spec(self, name, path=None, target=None):
        parts = name.split(".")
        if len(parts) < 2 or parts[0] != __name__ or parts[1] not in LAYERS:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        return importlib.import_module(spec.name.partition(".")[2])

    def exec_module(self, module):
        pass  # executed once, under its top-level name


if not (_CHECKOUT / __name__ / "hdl").is_dir() and (_CHECKOUT / "hdl" / "__init__.py").is_file():
    if str(_CHECKOUT) not in sys.path:
        sys.path.append(str(_CHECKOUT))
    sys.meta_path.insert(0, _CheckoutAliases())
