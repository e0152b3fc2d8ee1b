"""Logic levels of a mapped ECP5 netlist: the structural timing guard's measure.

The longest register-to-register path of yosys's flattened ``synth_ecp5`` netlist,
counted in LUT levels, without placing or routing anything (seconds). A path starts at
a flip-flop's output, a block RAM's read data, a top-level input or a constant, and
ends at a flip-flop's, block RAM's or DSP's input or a top-level output. What a step
through a cell costs, in levels:

* ``LUT4``: 1 (a look-up table and, on the way in, a general routing hop);
* ``PFUMX``, ``L6MUX21``: 0 (they widen the LUT before them inside its slice: a LUT5
  or LUT6 is still one level);
* ``CCU2C``: 1 entering through a LUT input, 0 along the carry chain (``CIN``);
* ``TRELLIS_DPR16X4`` (LUT RAM): 1 from its read address to its data;
* ``MULT18X18D`` without registers (yosys never sets them): :data:`MULT_LEVELS`;
* a path that starts at a ``DP16KD`` read without its output register (yosys never
  sets it; the flow's synth/outreg.py does where a register takes the read):
  :data:`BRAM_LEVELS` (its 5.5 ns clock-to-out against a flip-flop's 0.5 ns).

docs/timing.md calibrates levels against nextpnr's median Fmax on ECP5 speed 6.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

#: a combinational multiplier is worth this many LUT levels (a 4 x 4 array's FF ->
#: MULT18X18D -> FF path: 7.2 ns, docs/results/timing.md)
MULT_LEVELS = 5
#: a block-RAM read without output register starts a path this many levels deep
BRAM_LEVELS = 4
#: cells that widen the LUT before them in its slice
SLICE_MUXES = ("PFUMX", "L6MUX21")


@dataclass(frozen=True)
class DeepestPath:
    """The deepest path: its levels, the names of the cells it runs through, and
    whether one of them is a (combinational) multiplier."""

    levels: int
    cells: tuple[str, ...]
    multiplier: bool = False


def _arcs(cell: dict) -> list[tuple[str, str, int]]:
    """(input port, output port, levels) of each combinational arc through ``cell``;
    none for sequential cells (their outputs start paths, their inputs end them)."""
    kind, dirs = cell["type"], cell.get("port_directions", {})
    ins = [p for p, d in dirs.items() if d == "input"]
    outs = [p for p, d in dirs.items() if d == "output"]
    if kind == "LUT4":
        return [(i, "Z", 1) for i in ins]
    if kind in SLICE_MUXES:
        return [(i, "Z", 0) for i in ins]
    if kind == "CCU2C":
        return [(i, o, 0 if i == "CIN" else 1) for i in ins for o in outs]
    if kind.endswith("TRELLIS_DPR16X4"):
        return [("RAD", "DO", 1)]
    registers = [v.strip() for k, v in cell.get("parameters", {}).items() if k.startswith("REG_")]
    if kind == "MULT18X18D" and all(v == "NONE" for v in registers):
        return [(i, o, MULT_LEVELS) for i in ins if i[0] in "AB" and i[1:].isdigit()
                for o in outs if o[0] == "P"]
    return []


def _start_levels(cell: dict, port: str) -> int:
    """Levels a path starting at output ``port`` of this (sequential) cell already has:
    a DP16KD data output of a port without its output register, :data:`BRAM_LEVELS`
    (at 36 bits a read leaves on both ports' outputs: without either register)."""
    if cell["type"] != "DP16KD":
        return 0
    params = cell.get("parameters", {})
    wide = any(int(params.get(f"DATA_WIDTH_{p}", "0"), 2) > 18 for p in "AB")
    ports = "AB" if wide or not port.startswith("DO") else port[2]
    modes = [params.get(f"REGMODE_{p}", "NOREG").strip() for p in ports]
    return BRAM_LEVELS if "NOREG" in modes else 0


def deepest_path(netlist: dict, top: str) -> DeepestPath:
    """The path of most levels through module ``top`` of a yosys JSON netlist."""
    module = netlist["modules"][top]
    cells = module["cells"]
    fanin: dict[int, list[tuple[object, int, str]]] = {}  # bit -> (source bit, levels, cell)
    start: dict[int, int] = {}  # bit -> levels a path starting on it has
    ends: list = [b for port in module["ports"].values() if port["direction"] == "output"
                  for b in port["bits"]]
    start.update((b, 0) for port in module["ports"].values() if port["direction"] == "input"
                 for b in port["bits"])
    for name, cell in cells.items():
        conns, arcs = cell["connections"], _arcs(cell)
        for i, o, lv in arcs:
            for out in conns.get(o, []):
                fanin.setdefault(out, []).extend((src, lv, name) for src in conns.get(i, []))
        if not arcs:
            for port, d in cell.get("port_directions", {}).items():
                if d == "output":
                    start.update((b, _start_levels(cell, port)) for b in conns.get(port, []))
                else:
                    ends += conns.get(port, [])
    # longest path into every bit, in topological order (Kahn); bits on a
    # combinational loop are never ready and are left out
    waiting = {bit: sum(isinstance(src, int) for src, _, _ in srcs) for bit, srcs in fanin.items()}
    users: dict[int, list[int]] = {}
    for bit, srcs in fanin.items():
        for src, _, _ in srcs:
            if isinstance(src, int):
                users.setdefault(src, []).append(bit)
    best = {bit: (levels, ()) for bit, levels in start.items()}
    ready = [bit for bit, n in waiting.items() if n == 0] + list(start)

    def via(src, lv, name):
        levels, cells_before = best.get(src, (0, ()))
        return levels + lv, cells_before + (name,)

    while ready:
        bit = ready.pop()
        if bit in fanin:
            best[bit] = max((via(*arc) for arc in fanin[bit]), key=lambda t: t[0])
        for user in users.get(bit, ()):
            waiting[user] -= 1
            if waiting[user] == 0:
                ready.append(user)
    levels, through = max((best[b] for b in ends if b in best), key=lambda t: t[0],
                          default=(0, ()))
    return DeepestPath(levels, through, any(cells[c]["type"] == "MULT18X18D" for c in through))


def levels_of(netlist_path: Path, top: str = "top") -> DeepestPath:
    """:func:`deepest_path` of a netlist file."""
    return deepest_path(json.loads(Path(netlist_path).read_text()), top)
