"""NumPy golden models and analytic cycle models. Never imports hdl/ or sim/."""
