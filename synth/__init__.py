"""Out-of-context synthesis reports (LUT, FF, DSP, BRAM, Fmax) for accelgen blocks."""

from .flow import SynthError, synthesize

__all__ = ["SynthError", "synthesize"]
