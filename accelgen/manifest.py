"""The JSON manifest written beside each generated Verilog file."""
from __future__ import annotations

import json

from amaranth import Value
from amaranth.lib import stream, wiring

from accelgen import __version__
from accelgen.params.base import as_dict
from accelgen.hdl.rtl import digest
from accelgen.sim.streams import leaves


def _fields(layout) -> list[dict]:
    return [{"field": ".".join(map(str, path)), "offset": off, "width": shape.width,
             "signed": shape.signed} for path, off, shape in leaves(layout)]


def ports(component: wiring.Component) -> list[dict]:
    """Verilog ports (name, direction, width), clk and rst first."""
    out = [{"name": "clk", "dir": "in", "width": 1}, {"name": "rst", "dir": "in", "width": 1}]
    for path, member, value in component.signature.flatten(component):
        name = "__".join(map(str, path))
        out.append({"name": name, "dir": "in" if member.flow == wiring.In else "out",
                    "width": len(Value.cast(value))})
    return out


def streams(component: wiring.Component) -> dict[str, dict]:
    """Every stream port's direction and payload field layout with bit offsets."""
    out = {}
    for name, member in component.signature.members.items():
        if member.is_signature and isinstance(member.signature, stream.Signature):
            payload = getattr(component, name).payload
            out[name] = {"dir": "in" if member.flow == wiring.In else "out",
                         "payload_width": len(Value.cast(payload)),
                         "fields": _fields(payload.shape())}
    return out


def manifest(block: str, cfg, component: wiring.Component, verilog: str) -> dict:
    params = as_dict(cfg)
    return {
        "block": block,
        "module": block,
        "accelgen_version": __version__,
        "parameters": params,
        "parameters_hash": digest(json.dumps(params, sort_keys=True)),
        "verilog_hash": digest(verilog),
        "ports": ports(component),
        "streams": streams(component),
    }
