"""Move a block RAM read's register into the block RAM: a netlist pass between yosys and
nextpnr (ECP5).

yosys maps a read port to a DP16KD without its output register (``REGMODE`` NOREG), so
the read's data leaves the block RAM about 5.5 ns after the clock; the hardware here
registers every read at once (docs/timing.md), and that fabric flip-flop is then the
only thing the data reaches. With ``REGMODE`` OUTREG the block RAM's own output register
does the same job, with its data out about 0.9 ns after the clock (timing-anchors: ECP5
facts). Where every connected data output of a DP16KD port drives exactly one flip-flop
and nothing else, and each of those flip-flops loads every cycle (no clock enable, no
set or reset) on the port's clock, this pass sets the port's ``REGMODE`` to OUTREG
(output clock enable and reset already tied to 1 and 0 by yosys), drives the
flip-flops' outputs from the port and removes the flip-flops: the same cycle behaviour,
the register moved into the block RAM.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

#: A DP16KD port's data outputs, clock, output register enable and reset, and its
#: parameters: output register, data width, clock polarity
PORTS = {"A": ("DOA", "CLKA", "OCEA", "RSTA", "REGMODE_A", "DATA_WIDTH_A", "CLKAMUX"),
         "B": ("DOB", "CLKB", "OCEB", "RSTB", "REGMODE_B", "DATA_WIDTH_B", "CLKBMUX")}
#: the widest port of a DP16KD in true dual-port mode; at 36 bits (pseudo dual-port) a
#: read's data leaves on both ports' outputs, which this pass leaves alone
DATA_BITS = 18


def _plain_ff(cell: dict, clock) -> bool:
    """A TRELLIS_FF that loads its DI every cycle on ``clock``, with no set or reset,
    and is not kept (the synthesis harness's flip-flops are)."""
    conn, params = cell["connections"], cell["parameters"]
    return (cell["type"] == "TRELLIS_FF" and conn.get("CLK") == clock
            and not cell.get("attributes", {}).get("keep")
            and params.get("CEMUX", "").strip() == "1" and params.get("CLKMUX") == "CLK"
            and conn.get("LSR", ["0"]) == ["0"] and params.get("GSR") == "DISABLED")


def absorb(netlist: Path, top: str) -> int:
    """Apply the pass to the yosys JSON ``netlist`` (module ``top``) in place; return
    the flip-flops moved into block RAMs."""
    design = json.loads(netlist.read_text())
    cells = design["modules"][top]["cells"]
    sinks = defaultdict(list)  # net -> [(cell name, port)]
    for name, cell in cells.items():
        for port, bits in cell["connections"].items():
            if cell.get("port_directions", {}).get(port) == "input":
                for bit in bits:
                    if isinstance(bit, int):
                        sinks[bit].append((name, port))
    top_nets = {bit for port in design["modules"][top]["ports"].values()
                for bit in port["bits"] if isinstance(bit, int)}
    moved = 0
    for cell in [c for c in cells.values() if c["type"] == "DP16KD"]:
        conn, params = cell["connections"], cell["parameters"]
        if any(int(params.get(PORTS[p][5], "0"), 2) > DATA_BITS for p in PORTS):
            continue
        for data, clk, oce, rst, regmode, _, clk_mux in PORTS.values():
            if params.get(regmode) != "NOREG" or conn.get(oce) != ["1"] or \
                    conn.get(rst) != ["0"] or params.get(clk_mux) != clk:
                continue
            plan = []
            for j in range(DATA_BITS):
                bit = conn.get(f"{data}{j}", ["x"])[0]
                if not isinstance(bit, int) or not sinks[bit]:
                    continue
                loads = sinks[bit]
                if len(loads) != 1 or bit in top_nets or loads[0][1] != "DI" or \
                        not _plain_ff(cells[loads[0][0]], conn[clk]):
                    plan = None
                    break
                plan.append((j, loads[0][0]))
            if not plan:
                continue
            params[regmode] = "OUTREG"
            for j, ff in plan:
                conn[f"{data}{j}"] = cells[ff]["connections"]["Q"]
                del cells[ff]
            moved += len(plan)
    netlist.write_text(json.dumps(design))
    return moved
