"""Write real workloads as npz files for ``accelgen run``.

``python -m accelgen.workloads mac OUT.npz [--tokens 16 --layer 0 --linear ffn1]``:
MiniLM-L6 activations on real text (per-token int8) and that layer's weights
(per-channel int8), from golden/minilm.py; no download, deterministic.
"""
from __future__ import annotations

import argparse

import numpy as np

from golden.minilm import real_mac_case


def mac(tokens: int, layer: int, linear: str) -> dict[str, np.ndarray]:
    case = real_mac_case(tokens=tokens, layer=layer, linear=linear)
    return {"a": case["a"], "w": case["w"]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m accelgen.workloads", description=__doc__)
    p.add_argument("block", choices=["mac"])
    p.add_argument("output")
    p.add_argument("--tokens", type=int, default=16)
    p.add_argument("--layer", type=int, default=0)
    p.add_argument("--linear", default="ffn1", choices=["q", "k", "v", "attn_out", "ffn1", "ffn2"])
    args = p.parse_args(argv)
    np.savez(args.output, **mac(args.tokens, args.layer, args.linear))


if __name__ == "__main__":
    main()
