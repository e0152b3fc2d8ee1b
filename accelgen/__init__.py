"""accelgen: verified, parameterized RTL for the accelerator blocks of MIT HAN Lab papers."""
__version__ = "0.1.0"
