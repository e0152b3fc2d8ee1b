"""``make bench`` sections of the SpGEMM: cycles and partial products per second on
real matrices, and the memory-side DRAM model's reductions."""
from __future__ import annotations

from accelgen import registry
from accelgen.workloads import matrices
from accelgen.golden.spgemm import reductions
from accelgen.params import SpgemmConfig
from accelgen.run import run_block
from accelgen.table import markdown

from . import SYNTH_HEADER, synth, synth_row

#: real matrices of the cycles table (A . A) and their row/column slice
CASES = [("minnesota", 2642), ("airfoil", 260), ("bar", 600), ("helmholtz_2D", 1024)]
TRAFFIC_CASES = [("minnesota", 4, 64), ("unit_square", 8, 64), ("airfoil", 8, 64),
                 ("helmholtz_2D", 16, 256), ("bar", 64, 128)]


def cycles(sim: str) -> str:
    """C = A . A on real matrices (the first ``n`` rows and columns), the preset 16-way,
    4-lane unit; every merge round's cycles count. Partial products per cycle (per
    second waits for a routed clock: see the area section)."""
    block, cfg = registry.get("spgemm"), SpgemmConfig()
    rows = []
    for name, n in CASES:
        a = matrices.slice_cols(matrices.slice_rows(matrices.load(name), n), n)
        _, rep = run_block(block, cfg, {"a": a, "b": a}, sim)
        rows.append([name, f"{a.shape[0]}x{a.shape[1]}", a.nnz, rep["partial_products"],
                     rep["partial_matrices"], rep["rounds"], rep["match"], rep["cycles"],
                     rep["model_cycles"], rep["bound_cycles"],
                     round(rep["partial_products"] / rep["cycles"], 2),
                     int(rep["sim_cycles_per_s"]), round(rep["wall_s"], 1)])
    return markdown(["matrix", "shape", "nnz", "partial products", "partials", "rounds",
                     "match", "cycles", "model", "bound", "partial products/cycle",
                     "sim cycles/s", "wall s"], rows)


def area(sim: str) -> str:
    """The preset unit through yosys only: nextpnr routed two of three seeds of it in 9
    and 17 minutes here and left the third congested, so its clock waits for the
    merger's rebuild for timing."""
    return markdown(["unit", *SYNTH_HEADER],
                    [["preset", *synth_row(synth("spgemm", SpgemmConfig(), place=False))]])


def traffic(sim: str) -> str:
    """golden/spgemm.py's DRAM model, each optimisation's reduction over the step
    before (original columns -> condensed -> Huffman order -> Belady row buffer)."""
    rows = []
    for name, ways, buffer_rows in TRAFFIC_CASES:
        a = matrices.load(name)
        red = reductions(a, a, ways=ways, buffer_rows=buffer_rows)
        rows.append([name, ways, buffer_rows] + [round(red[k], 2) for k in
                                                 ("condensed", "huffman", "prefetch", "overall")])
    return markdown(["matrix (A . A)", "ways", "buffer rows", "condensed", "Huffman",
                     "Belady prefetch", "overall"], rows)


SECTIONS = [
    ("spgemm: C = A . A on real matrices ({sim})", cycles),
    ("spgemm: DRAM traffic reductions (golden memory model; paper: 5.4x, 1.8x, 1.5x)",
     traffic),
    ("spgemm: ECP5-85k out of context (yosys, harness subtracted)", area),
]
