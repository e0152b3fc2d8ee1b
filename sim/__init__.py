"""Simulation: stream players, the cocotb runner glue, per-block testbench adapters."""
