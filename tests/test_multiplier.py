"""hdl/multiplier.py: ``p`` = ``a`` * ``b`` of two cycles before, against NumPy.

Inferred (the Amaranth simulator), and as the ECP5 MULT18X18D with its own input and
output registers (the Verilog the synthesis flow gets, on Icarus and Verilator, with
the primitive's model sim/primitives/MULT18X18D.v): random operands every cycle, the
widths' extremes among them."""
import subprocess
from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator

from accelgen.hdl.multiplier import Multiplier, WideMultiplier
from accelgen.hdl.rtl import to_verilog
from accelgen.synth.flow import ElaborationPlatform

MODEL = Path(__file__).resolve().parents[1] / "sim" / "primitives" / "MULT18X18D.v"
WIDTHS = [(8, 8), (8, 12), (4, 4), (18, 18)]
CYCLES = 400


def operands(a_width: int, b_width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random signed operands, with the four products of the extremes first."""
    rng = np.random.default_rng(seed)
    lo_a, hi_a, lo_b, hi_b = -2 ** (a_width - 1), 2 ** (a_width - 1) - 1, \
        -2 ** (b_width - 1), 2 ** (b_width - 1) - 1
    a = np.concatenate([[lo_a, lo_a, hi_a, hi_a], rng.integers(lo_a, hi_a + 1, CYCLES)])
    b = np.concatenate([[lo_b, hi_b, lo_b, hi_b], rng.integers(lo_b, hi_b + 1, CYCLES)])
    return a.astype(np.int64), b.astype(np.int64)


def products(part, a, b, latency: int) -> list[int]:
    """``part.p`` on the Amaranth simulator, ``latency`` cycles after each operand pair
    of ``a`` and ``b`` is presented (one pair a cycle)."""
    got = []

    async def bench(ctx):
        for j in range(len(a) + latency):
            if j < len(a):
                ctx.set(part.a, int(a[j]))
                ctx.set(part.b, int(b[j]))
            await ctx.tick()
            got.append(ctx.get(part.p))

    sim = Simulator(part)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got[latency - 1:latency - 1 + len(a)]


@pytest.mark.mutation
@pytest.mark.parametrize("a_width, b_width", WIDTHS)
def test_inferred_multiplier_gives_the_product_two_cycles_later(a_width, b_width):
    a, b = operands(a_width, b_width, a_width * b_width)
    expect = [int(x) * int(y) for x, y in zip(a, b)]
    assert products(Multiplier(a_width, b_width), a, b, latency=2) == expect


#: The testbench: operands change and the product is recorded at falling edges, so
#: ``p`` recorded at the j-th is the product of the operands set j - 2 falling edges
#: before it (set for the first rising edge, all records shifted by one).
TESTBENCH = """
module tb(input wire clk);
    reg signed [{aw}-1:0] a;
    reg signed [{bw}-1:0] b;
    wire signed [{pw}-1:0] p;
    reg [{aw}-1:0] a_seq [0:{n}-1];
    reg [{bw}-1:0] b_seq [0:{n}-1];
    integer j = 1, out;
    mul dut(.clk(clk), .rst(1'b0), .a(a), .b(b), .p(p));
    initial begin
        $readmemh("a.hex", a_seq);
        $readmemh("b.hex", b_seq);
        out = $fopen("p.txt", "w");
        a = a_seq[0];
        b = b_seq[0];
    end
    always @(negedge clk) begin
        $fdisplay(out, "%0d", p);
        if (j < {n}) begin a <= a_seq[j]; b <= b_seq[j]; end
        j <= j + 1;
        if (j == {n} + 2) begin $fclose(out); $finish; end
    end
endmodule
"""
ICARUS_CLOCK = """
`timescale 1ns/1ps
module clock;
    reg clk = 0;
    always #5 clk = ~clk;
    tb bench(.clk(clk));
endmodule
"""
VERILATOR_MAIN = """
#include "Vtb.h"
#include "verilated.h"
int main(int argc, char **argv) {
    VerilatedContext context;
    context.commandArgs(argc, argv);
    Vtb top(&context);
    top.clk = 0;
    top.eval();
    while (!context.gotFinish()) {
        top.clk = !top.clk;
        top.eval();
    }
    top.final();
    return 0;
}
"""


def _hex(values: np.ndarray, width: int) -> str:
    return "\n".join(f"{int(v) & (2 ** width - 1):x}" for v in values) + "\n"


def _simulate(sim: str, workdir: Path) -> None:
    sources = ["mul.v", "tb.v", str(MODEL)]
    if sim == "icarus":
        (workdir / "clock.v").write_text(ICARUS_CLOCK)
        subprocess.run(["iverilog", "-g2012", "-o", "tb.vvp", "-s", "clock", "clock.v",
                        *sources], cwd=workdir, check=True)
        subprocess.run(["vvp", "-n", "tb.vvp"], cwd=workdir, check=True,
                       capture_output=True)
    else:
        (workdir / "main.cpp").write_text(VERILATOR_MAIN)
        subprocess.run(["verilator", "--cc", "--exe", "--build", "-Wno-fatal", "--top-module",
                        "tb", "-o", "tb", "main.cpp", *sources], cwd=workdir, check=True,
                       capture_output=True)
        subprocess.run(["obj_dir/tb"], cwd=workdir, check=True, capture_output=True)


@pytest.mark.parametrize("a_width, b_width", [(8, 12), (18, 18)])
def test_mult18x18d_with_its_registers_gives_the_product_two_cycles_later(
        hdl_sim, tmp_path, a_width, b_width):
    verilog = to_verilog(Multiplier(a_width, b_width), "mul",
                         platform=ElaborationPlatform("MULT18X18D"))
    assert "MULT18X18D" in verilog
    a, b = operands(a_width, b_width, a_width + b_width)
    (tmp_path / "mul.v").write_text(verilog)
    (tmp_path / "tb.v").write_text(TESTBENCH.format(aw=a_width, bw=b_width,
                                                    pw=a_width + b_width, n=len(a)))
    (tmp_path / "a.hex").write_text(_hex(a, a_width))
    (tmp_path / "b.hex").write_text(_hex(b, b_width))
    _simulate(hdl_sim, tmp_path)
    got = [int(line) for line in (tmp_path / "p.txt").read_text().split()]
    assert got[1:len(a) + 1] == list(a * b)


@pytest.mark.mutation
@pytest.mark.parametrize("a_width, b_width", [(20, 17), (37, 17), (52, 18), (16, 17)])
def test_wide_multiplier_gives_the_product_latency_cycles_later(a_width, b_width):
    part = WideMultiplier(a_width, b_width)
    a, b = operands(a_width, b_width, a_width)
    expect = [int(x) * int(y) for x, y in zip(a, b)]  # Python ints: no 64-bit overflow
    assert part.chunks == max(1, -(-(a_width - 1) // 17))
    assert products(part, a, b, part.latency) == expect
