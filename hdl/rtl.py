"""Verilog from an Amaranth component, normalised so equal designs hash equally."""
from __future__ import annotations

import hashlib
import re

from amaranth.back import verilog
from amaranth.lib import wiring

_SRC_ATTR = re.compile(r"\(\* src = \"[^\"]*\" \*\)\s*")


def to_verilog(component: wiring.Component, name: str, platform=None) -> str:
    """Verilog for ``component`` as module ``name``, without absolute source paths;
    ``platform`` is what its ``elaborate`` is given (e.g. hdl/multiplier.py's DSP)."""
    text = verilog.convert(component, name=name, emit_src=False, platform=platform)
    return _SRC_ATTR.sub("", text)


def digest(*parts: str) -> str:
    """A short content hash for cache keys and manifests."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]
