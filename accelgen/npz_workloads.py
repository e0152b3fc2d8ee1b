"""``accelgen workloads BLOCK OUT.npz [options]``: a real workload as the npz input of
``accelgen run BLOCK``. Every block whose adapter has a ``real_workload`` (and its
``WORKLOAD_OPTIONS``) is a subcommand; ``accelgen workloads BLOCK --help`` lists its
options and says what the workload is. Deterministic, no download.
"""
from __future__ import annotations

import argparse
import inspect
import sys

import numpy as np

from accelgen import registry


def _blocks() -> dict:
    """Block name -> adapter, for the adapters with a real workload."""
    return {name: block.bench for name, block in registry.BLOCKS.items()
            if hasattr(block.bench, "real_workload")}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="accelgen workloads", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="block", required=True)
    for name, adapter in _blocks().items():
        doc = inspect.getdoc(adapter.real_workload)
        q = sub.add_parser(name, help=doc.splitlines()[0], description=doc)
        q.add_argument("output", metavar="OUT.npz")
        for option, kwargs in adapter.WORKLOAD_OPTIONS.items():
            q.add_argument("--" + option.replace("_", "-"), dest=option, **kwargs)
    return p


def main(argv=None) -> int:
    args = vars(parser().parse_args(argv))
    adapter, output = _blocks()[args.pop("block")], args.pop("output")
    np.savez(output, **adapter.real_workload(**args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
