"""``make bench`` sections of the MAC array: cycles and MAC/s on real MiniLM layers in
every mode, ECP5 area and clock of the array and of one PE per mode, and the modes'
quantization error."""
from __future__ import annotations

from accelgen import registry
from accelgen.workloads import mac_cases
from accelgen.params import MacConfig
from accelgen.run import run_block
from accelgen.sim.mac import real_workload, shape
from accelgen.table import markdown

from . import OUT, SEEDS, SYNTH_HEADER, per_second, synth, synth_row

QUANTIZED_MODES = ("w4a8", "w4a4", "msb_lsb")
MODES = ("w8a8",) + QUANTIZED_MODES
#: (layer, linear) of the w8a8 table and of the quantized modes, 16 tokens; (layer,
#: head) of msb_lsb, 128 tokens
W8A8_LAYERS = [(0, "q"), (0, "attn_out"), (0, "ffn1"), (0, "ffn2")]
GEMM_LAYERS = [(0, "q"), (0, "ffn1"), (5, "ffn2")]
ATTENTION_HEADS = [(0, 0), (2, 5), (5, 0)]
MSB_TOKENS = 128
#: tokens of the sample text pushed through MiniLM for the error study
ERROR_TOKENS = 128


def _cases(mode: str, layers) -> list[tuple[str, dict]]:
    if mode == "msb_lsb":
        return [(f"MiniLM L{layer} head {head} Q.K^T, {MSB_TOKENS} tokens",
                 real_workload(mode, MSB_TOKENS, layer, "q", head=head))
                for layer, head in ATTENTION_HEADS]
    return [(f"MiniLM L{layer} {linear}", real_workload(mode, 16, layer, linear))
            for layer, linear in layers]


def cycles(sim: str) -> str:
    """Every mode at the preset 8 x 8 on real MiniLM operands (w4a4 with its rank-32
    low-rank branch), output always ready; msb_lsb: the LSB pass for the rows whose
    MSB-only softmax peaks below 0.1. MAC/s: M*K*N / cycles x the mode's median Fmax."""
    block = registry.get("mac")
    rows = []
    for mode in MODES:
        cfg = MacConfig(mode=mode)
        fmax = synth("mac", cfg)["fmax_mhz"]["median"]
        for name, inputs in _cases(mode, W8A8_LAYERS if mode == "w8a8" else GEMM_LAYERS):
            _, rep = run_block(block, cfg, inputs, sim)
            m, k, n = shape(cfg, inputs)
            passes = (f"{rep['msb_pass_cycles']} / {rep['lsb_pass_cycles']}"
                      if mode == "msb_lsb" else "")
            rows.append([mode, name, f"{m}x{k}x{n}", rep["match"], rep["cycles"],
                         rep["model_cycles"], rep["bound_cycles"], rep["utilization"],
                         per_second(m * k * n, rep["cycles"], fmax) + f" ({fmax} MHz)", passes])
    return markdown(["mode", "operands (real)", "M x K x N", "match", "cycles", "model",
                     "bound", "utilization", "10^6 MAC/s at median Fmax",
                     "MSB / LSB pass cycles"], rows)


def area(sim: str) -> str:
    """The whole block per mode at the preset 8 x 8 (edges included: w4a8's dequantizers,
    w4a4's epilogue), one DSP per PE."""
    rows = []
    for mode in MODES:
        cfg = MacConfig(mode=mode)
        rep = synth("mac", cfg)
        rows.append([mode, *synth_row(rep), round(rep["resources"]["lut"]["dut"] /
                                                  (cfg.rows * cfg.cols), 1)])
    return markdown(["mode", *SYNTH_HEADER, "LUT/PE"], rows)


def _pe_synth(cfg: MacConfig, nodsp: bool) -> dict:
    from accelgen.hdl.mac import ProcessingElement
    from accelgen.synth import synthesize

    kind = "lut" if nodsp else "dsp"
    return synthesize(lambda: ProcessingElement(cfg), name=f"pe-{cfg.mode}", target="ecp5",
                      nodsp=nodsp, seeds=SEEDS, out_dir=OUT / "mac-pe" / f"{cfg.mode}-{kind}")


def pe_area(sim: str) -> str:
    """One PE alone per mode (its links to neighbours as ports), with a DSP and LUT-only
    (synth_ecp5 -nodsp), and the whole LUT-only array through yosys (nextpnr needs over
    half an hour per LUT-only array here)."""
    rows, base = [], {}
    for mode in MODES:
        cfg = MacConfig(mode=mode)
        for nodsp in (False, True):
            pe = synth_row(_pe_synth(cfg, nodsp))
            base.setdefault(nodsp, pe[0])
            array = synth("mac", cfg, nodsp=True, place=False)["resources"]["lut"]["dut"] \
                if nodsp else "-"
            rows.append([mode, "LUT only" if nodsp else "DSP", *pe,
                         round(pe[0] / base[nodsp], 2), array])
    return markdown(["mode", "multipliers", *[f"PE {h}" for h in SYNTH_HEADER],
                     "PE LUT vs w8a8", "LUT-only array LUT (yosys)"], rows)


def quant_error(sim: str) -> str:
    """Two tables: every mode's relative error ||Y_q - Y|| / ||Y|| against Y = X @ W
    (float64, no bias), and, for W4A4 + rank 32, the accumulation error of the
    fixed-point hardware and of nunchaku-style fp16 against the exact float64
    evaluation of the same quantized operands."""
    rows = mac_cases.error_rows(ERROR_TOKENS)
    ranks = [f"w4a4 r{r}" for r in mac_cases.STUDY_RANKS]
    errors = markdown(
        ["layer", "Linear", "K x N", "W8A8", "W4A8 (QServe)", "W4A4",
         *[f"W4A4 + LR{r}" for r in mac_cases.STUDY_RANKS],
         "W4A4, smoothed", f"W4A4 + LR{mac_cases.COMPARE_RANK}, smoothed"],
        [[r["layer"], r["linear"], r["shape"], r["w8a8"], r["w4a8"], r["w4a4 r0"],
          *[r[k] for k in ranks], r["w4a4 smooth r0"],
          r[f"w4a4 smooth r{mac_cases.COMPARE_RANK}"]] for r in rows])
    accumulation = markdown(
        ["layer", "Linear", "F", "fixed point (hardware) vs exact", "nunchaku fp16 vs exact"],
        [[r["layer"], r["linear"], r["F"], r["fixed vs exact"], r["fp16 vs exact"]]
         for r in rows])
    return "\n".join([
        f"{ERROR_TOKENS} tokens of the sample text; relative Frobenius error against the float64 "
        "X @ W. Smoothing is used only in the last two columns (lambda = sqrt(xspan / wspan), "
        "fitted on the same tokens); every other W4A4 column is unsmoothed.",
        "", errors, "",
        f"W4A4 + LR{mac_cases.COMPARE_RANK} (unsmoothed): error of the accumulation against "
        "the exact float64 evaluation of the same quantized operands "
        "(y = C * 2^-F for the hardware).",
        "", accumulation])


#: The largest arrays on the ECP5-85k: (mode, rows, cols, placed). The DSP modes take
#: one MULT18X18D a PE, so 12 x 13 uses all 156; w4a4's PEs are LUTs and its flip-flops
#: bound it (20 x 20: 73 % of them by yosys's count). Only w8a8 is placed here: router1
#: had not finished routing w4a4's 16 x 16 after 14 minutes a seed.
LARGEST = [("w8a8", 12, 13, True), ("w4a8", 12, 13, False), ("msb_lsb", 12, 13, False),
           ("w4a4", 16, 16, False), ("w4a4", 20, 20, False)]
#: The real layer each large array runs (MiniLM L0 ffn1) and its tokens: 48, a multiple
#: of every R above; msb_lsb runs L0 head 0's Q.K^T on 128 tokens
LARGEST_LAYER, LARGEST_TOKENS = (0, "ffn1"), 48


def largest(sim: str) -> str:
    """The largest arrays per mode on the ECP5-85k (:data:`LARGEST`): area, three-seed
    Fmax where placed, and MAC/s on a real layer (its cycles simulated) at that Fmax."""
    block = registry.get("mac")
    rows = []
    for mode, r, c, place in LARGEST:
        cfg = MacConfig(mode=mode, rows=r, cols=c)
        rep = synth("mac", cfg, place=place)
        if mode == "msb_lsb":
            name, inputs = _cases(mode, [])[0]
        else:
            name = f"MiniLM L{LARGEST_LAYER[0]} {LARGEST_LAYER[1]}, {LARGEST_TOKENS} tokens"
            inputs = real_workload(mode, LARGEST_TOKENS, *LARGEST_LAYER)
        _, run = run_block(block, cfg, inputs, sim)
        m, k, n = shape(cfg, inputs)
        fmax = rep["fmax_mhz"]["median"] if place else None
        rates = [f"{r * c * fmax:.1f}", per_second(m * k * n, run["cycles"], fmax)] \
            if place else ["-", "-"]
        rows.append([mode, f"{r} x {c}", *synth_row(rep), name, run["match"], run["cycles"],
                     run["model_cycles"], run["utilization"], *rates])
    return markdown(["mode", "R x C", *SYNTH_HEADER, "operands (real)", "match", "cycles",
                     "model", "utilization", "peak 10^6 MAC/s (R C Fmax)",
                     "10^6 MAC/s on the operands"], rows)


SECTIONS = [
    ("mac: cycles on real MiniLM operands per mode ({sim})", cycles),
    ("mac: ECP5-85k out of context per mode (yosys + nextpnr, harness subtracted, 3 seeds)",
     area),
    ("mac: one PE per mode, with a DSP and LUT-only; the LUT-only array", pe_area),
    ("mac: the largest arrays on the ECP5-85k per mode ({sim})", largest),
    ("mac: quantization error on real MiniLM layers (float64 reference)", quant_error),
]
