"""The cocotb test that runs a player testbench (sim/player.py): clock, reset, wait.

All stimulus and checking of a job lives in the generated Verilog and its files, so
the simulation runs at the simulator's speed, not at Python's.
"""
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge


@cocotb.test()
async def run_job(dut):
    """Reset for 3 cycles, run until the testbench raises done, let the logs flush."""
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.done)
    await ClockCycles(dut.clk, 2)
