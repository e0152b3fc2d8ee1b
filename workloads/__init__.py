"""Real workloads: MiniLM's weights, text and activations, sparse matrices and point
clouds read from installed packages, and the mac modes' real operands. Imports only the
golden models (to quantize) and the configs; never hdl/ or sim/."""
