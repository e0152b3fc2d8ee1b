"""Amaranth components, one module per block."""
