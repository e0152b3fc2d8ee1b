"""``make bench`` sections of the mac modes: cycles on real layers per mode, and the
area of a PE and of the whole array per mode on ECP5, with DSPs and LUT-only."""
from __future__ import annotations

from pathlib import Path

from accelgen import registry
from accelgen.params import MacConfig
from accelgen.run import run_block
from accelgen.table import markdown
from accelgen.sim.mac import real_workload as mac_workload

OUT = Path("out")
QUANTIZED_MODES = ("w4a8", "w4a4", "msb_lsb")
MODES = ("w8a8",) + QUANTIZED_MODES
#: (layer, linear) of the GEMM modes, 16 tokens; (layer, head) of msb_lsb, 128 tokens
GEMM_LAYERS = [(0, "q"), (0, "ffn1"), (5, "ffn2")]
ATTENTION_HEADS = [(0, 0), (2, 5), (5, 0)]
MSB_TOKENS = 128


def _cases(mode: str):
    if mode == "msb_lsb":
        return [(f"MiniLM L{layer} head {head} Q.K^T, {MSB_TOKENS} tokens",
                 mac_workload(mode, MSB_TOKENS, layer, "q", head=head))
                for layer, head in ATTENTION_HEADS]
    return [(f"MiniLM L{layer} {linear}", mac_workload(mode, 16, layer, linear))
            for layer, linear in GEMM_LAYERS]


def mac_modes_cycles(sim: str) -> str:
    """The quantized modes at the preset 8 x 8 on real MiniLM operands (w4a4 with its
    rank-32 low-rank branch), output always ready; msb_lsb: the LSB pass for the rows
    whose MSB-only softmax peaks below 0.1. (w8a8 has its own section.)"""
    from accelgen.sim.mac import shape

    block = registry.get("mac")
    rows = []
    for mode in QUANTIZED_MODES:
        cfg = MacConfig(mode=mode)
        for name, inputs in _cases(mode):
            _, rep = run_block(block, cfg, inputs, sim)
            m, k, n = shape(cfg, inputs)
            passes = (f"{rep['msb_pass_cycles']} / {rep['lsb_pass_cycles']}"
                      if mode == "msb_lsb" else "")
            rows.append([mode, name, f"{m}x{k}x{n}", rep["match"], rep["cycles"],
                         rep["model_cycles"], rep["bound_cycles"], rep["utilization"], passes])
    return markdown(["mode", "operands (real)", "M x K x N", "match", "cycles", "model",
                     "bound", "utilization", "MSB / LSB pass cycles"], rows)


def _synth(factory, name: str, nodsp: bool, place: bool = True) -> dict:
    from accelgen.synth import synthesize

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
    from accelgen.hdl.mac import MacArray, ProcessingElement

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
