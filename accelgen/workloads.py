"""Write real workloads as npz files for ``accelgen run``.

``accelgen workloads mac OUT.npz [--mode w8a8 --tokens 16 --layer 0 --linear
ffn1 --rank 32 --head 0]``: MiniLM-L6 activations on real text and that layer's
weights, from golden/minilm.py and golden/quant.py; no download, deterministic.
w8a8: per-token int8 activations, per-channel int8 weights; w4a8: QServe's two-level
uint4 weights (q, s2, z); w4a4: SVDQuant's int4 operands with fixed-point scales and a
low-rank branch of ``--rank``; msb_lsb: one attention head's Q (int8) times K^T (12-bit)
with the LSB pass requested for the rows whose MSB-only softmax peaks below 0.1
(``--tokens`` queries and keys, ``--layer``, ``--head``).

``accelgen workloads topk OUT.npz [--kind probs --rows 32 --n 256 --k 32]``:
rows of real attention scores, uint16: ``probs`` are softmax probability rows (one
query of one head: SpAtten's local V pruning), ``importance`` SpAtten's cumulative
token importance (sum over heads and queries, accumulated over layers; token pruning),
each row scaled to its own maximum. Rows longer than 512 tokens (the model's context)
are concatenations of 256-token rows.

``accelgen workloads spgemm OUT.npz [--matrix bar --n 256]``: A = B = the
first n rows and columns of a real matrix shipped by pyamg/pygsp (golden/matrices.py,
deterministic integer values in -8..8); ``--matrix scale`` is the scale case (the
distance-3 graph of pyamg's helmholtz_2D mesh, a 1024-node BFS subgraph: 136,496
nonzeros, 19.2 million partial products for A . A).

``accelgen workloads mapping OUT.npz [--op kernel_map --cloud bunny --voxel
0.01 --points N --shuffle --queries 16 --k 16 --radius2 10 --m 32 --kernel-size 3
--stride 1]``: a real point cloud shipped by a package (golden/pointclouds.py),
voxelized as torchsparse does (sorted by key); ``--points`` keeps the first N voxels,
``--shuffle`` permutes them (seeded); queries are voxels evenly spaced through the cloud.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from accelgen.golden import matrices, pointclouds
from accelgen.golden import quant
from accelgen.golden.minilm import attention_score_rows, real_mac_case

TOPK_KINDS = ("probs", "importance")


MAC_MODES = ("w8a8", "w4a8", "w4a4", "msb_lsb")


def mac(tokens: int, layer: int, linear: str, mode: str = "w8a8", rank: int = 32,
        head: int = 0) -> dict[str, np.ndarray]:
    """The run inputs of a real MiniLM GEMM in ``mode`` (see the module docstring)."""
    if mode == "w4a8":
        return quant.w4a8_case(tokens, layer, linear)[0]
    if mode == "w4a4":
        inputs = quant.w4a4_case(tokens, layer, linear, rank)[0]
        return {key: np.asarray(value) for key, value in inputs.items()}
    if mode == "msb_lsb":
        return quant.msb_lsb_case(tokens, layer, head)[0]
    case = real_mac_case(tokens=tokens, layer=layer, linear=linear)
    return {"a": case["a"], "w": case["w"]}


def topk_rows(kind: str, rows: int, n: int) -> np.ndarray:
    """``rows`` real score rows of length ``n`` (3 <= n), uint16; deterministic."""
    if kind not in TOPK_KINDS:
        raise ValueError(f"kind: {kind!r} is unknown; allowed: {' | '.join(TOPK_KINDS)}")
    if n < 3 or rows < 1:
        raise ValueError("need n >= 3 and rows >= 1")
    seg = n if n <= 512 else 256
    parts = -(-n // seg)
    pool = attention_score_rows(rows=rows * parts, tokens=seg, chunks=8)[kind]
    picked = pool[np.arange(rows * parts) % len(pool)]
    return picked.reshape(rows, parts * seg)[:, :n]


def topk(kind: str, rows: int, n: int, k: int) -> dict[str, np.ndarray]:
    return {"scores": topk_rows(kind, rows, n), "k": np.array(k)}


def spgemm(matrix: str, n: int) -> dict[str, np.ndarray]:
    """CSR arrays of A = B for ``accelgen run spgemm``."""
    if matrix == "scale":
        a = matrices.scale_case()
    else:
        a = matrices.slice_cols(matrices.slice_rows(matrices.load(matrix), n), n)
    out = {}
    for side in ("a", "b"):
        out.update({f"{side}_data": a.data, f"{side}_indices": a.indices,
                    f"{side}_indptr": a.indptr, f"{side}_shape": np.array(a.shape)})
    return out


def mapping(op: str, cloud: str, voxel: float, points: int = 0, shuffle: bool = False,
            queries: int = 16, k: int = 16, radius2: int = 10, m: int = 32,
            kernel_size: int = 3, stride: int = 1) -> dict[str, np.ndarray]:
    """A mapping job on a voxelized real point cloud."""
    coords = pointclouds.voxel_cloud(cloud, voxel)
    if points:
        coords = coords[:points]
    if shuffle:
        coords = coords[np.random.default_rng(0).permutation(len(coords))]
    out = {"coords": coords.astype(np.int32), "op": np.array(op)}
    picks = np.linspace(0, len(coords) - 1, queries).astype(np.int64)
    params = {"kernel_map": {"kernel_size": kernel_size, "stride": stride},
              "knn": {"queries": coords[picks], "k": k},
              "ball_query": {"queries": coords[picks], "k": k, "radius2": radius2},
              "fps": {"m": m}}[op]
    out.update({key: np.asarray(v, np.int32) if key == "queries" else np.array(v)
                for key, v in params.items()})
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="accelgen workloads", description=__doc__)
    p.add_argument("block", choices=["mac", "topk", "spgemm", "mapping"])
    p.add_argument("output")
    p.add_argument("--kind", default="probs", choices=TOPK_KINDS)
    p.add_argument("--rows", type=int, default=32)
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--matrix", default="bar", choices=list(matrices.NAMES) + ["scale"])
    p.add_argument("--tokens", type=int, default=16)
    p.add_argument("--layer", type=int, default=0)
    p.add_argument("--linear", default="ffn1", choices=["q", "k", "v", "attn_out", "ffn1", "ffn2"])
    p.add_argument("--mode", default="w8a8", choices=MAC_MODES)
    p.add_argument("--rank", type=int, default=32)
    p.add_argument("--head", type=int, default=0)
    p.add_argument("--op", default="kernel_map", choices=["kernel_map", "knn", "ball_query", "fps"])
    p.add_argument("--cloud", default="bunny", choices=pointclouds.NAMES)
    p.add_argument("--voxel", type=float, default=0.01)
    p.add_argument("--points", type=int, default=0)
    p.add_argument("--shuffle", action="store_true")
    p.add_argument("--queries", type=int, default=16)
    p.add_argument("--radius2", type=int, default=10)
    p.add_argument("--m", type=int, default=32)
    p.add_argument("--kernel-size", type=int, default=3, choices=[2, 3])
    p.add_argument("--stride", type=int, default=1, choices=[1, 2])
    args = p.parse_args(argv)
    if args.block == "mac":
        np.savez(args.output, **mac(args.tokens, args.layer, args.linear, args.mode,
                                    args.rank, args.head))
    elif args.block == "mapping":
        np.savez(args.output, **mapping(args.op, args.cloud, args.voxel, args.points,
                                        args.shuffle, args.queries, args.k, args.radius2,
                                        args.m, args.kernel_size, args.stride))
    elif args.block == "spgemm":
        np.savez(args.output, **spgemm(args.matrix, args.n))
    else:
        np.savez(args.output, **topk(args.kind, args.rows, args.n, args.k))
    return 0


if __name__ == "__main__":
    sys.exit(main())
