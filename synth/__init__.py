"""Out-of-context synthesis reports (LUT, FF, DSP, BRAM, Fmax) for accelgen blocks."""

from .flow import ROUTERS, SynthError, synthesize

__all__ = ["ROUTERS", "SynthError", "synthesize"]
