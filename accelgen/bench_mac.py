"""``make bench`` sections of the mac modes: cycles on real layers per mode, and the
area of a PE and of the whole array per mode on ECP5, with DSPs and LUT-only."""
from __future__ import annotations

from pathlib import Path

from accelgen.params import MacConfig
from accelgen.table import markdown

OUT = Path("out")
MODES = ("w8a8", "w4a8", "w4a4", "msb_lsb")


def _synth(factory, name: str, nodsp: bool, place: bool = True) -> dict:
    from synth import synthesize

    kind = "lut" if nodsp else "dsp"
    return synthesize(factory, name=name, target="ecp5", nodsp=nodsp, place=place,
                      out_dir=OUT / "synth" / "mac-modes" / f"{name}-{kind}")


def _counts(report: dict) -> tuple[int, int, int, float | str]:
    res, fmax = report["resources"], report["fmax_mhz"]
    return (res["lut"]["dut"], res["ff"]["dut"], res["dsp"]["dut"],
            round(fmax["achieved"], 1) if fmax else "not placed")


def mac_modes_synth() -> str:
    """Per mode at the preset 8 x 8: one PE alone (its links to neighbours as ports) and
    the whole array with its edges (w4a8's dequantizers, w4a4's epilogue), each with
    DSPs and LUT-only (synth_ecp5 -nodsp), seed 1. The LUT-only arrays stop after yosys:
    nextpnr needs over half an hour per array here. "array / PE" divides the array's
    LUTs by R*C, so the edges are shared out over the PEs."""
    from hdl.mac import MacArray, ProcessingElement

    rows, base = [], {}
    for mode in MODES:
        cfg = MacConfig(mode=mode)
        pes = cfg.rows * cfg.cols
        for nodsp in (False, True):
            pe = _counts(_synth(lambda: ProcessingElement(cfg), f"pe-{mode}", nodsp))
            array = _counts(_synth(lambda: MacArray(cfg), f"mac-{mode}", nodsp, place=not nodsp))
            lut_per_pe = round(array[0] / pes, 1)
            base.setdefault(nodsp, (pe[0], lut_per_pe))
            rows.append([mode, "LUT only" if nodsp else "DSP", *pe,
                         round(pe[0] / base[nodsp][0], 2), *array, lut_per_pe,
                         round(lut_per_pe / base[nodsp][1], 2)])
    return markdown(["mode", "multipliers", "PE LUT", "PE FF", "PE DSP", "PE Fmax MHz",
                     "PE LUT vs w8a8", "array LUT", "array FF", "array DSP",
                     "array Fmax MHz", "array LUT / PE", "vs w8a8"], rows)
