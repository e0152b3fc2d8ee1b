"""Testbench adapter of the ``mapping`` block: an npz job (coords, op and the op's
parameters) → a command beat, point beats and query beats → result frames.

Frames on ``o`` (hdl/mapping_layouts.py): kernel_map with stride 2 sends the output
coordinates, then the maps; knn and ball_query one frame per query; fps one frame.
Every frame is ceil(len/P) beats (one beat of count 0 when empty).
"""
from __future__ import annotations

import math

import numpy as np
from amaranth import Cat, Module, Mux, Value
from amaranth.hdl import Assert, Assume

from accelgen.params.mapping import OPS, MappingConfig
from accelgen.golden import mapping as golden
from accelgen.golden import mapping_cycles
from accelgen.workloads import pointclouds
from accelgen.hdl.mapping import MappingUnit
from accelgen.hdl.mapping_layouts import (QUERY_COUNT_WIDTH, command_layout, coord_layout,
                                 output_layout, points_layout)

from .inputs import InputError, int_array, scalar
from .adapter import misplaced_lasts
from .invariants import constant, framed
from .job import Job, Sink, Source, cycle_limit
from .streams import pack, unpack

INPUTS = ("coords: int [N,3] unique, each 0..2^coord_width-1, N <= capacity; op: str, one "
          "of " + " | ".join(OPS) + "; knn: queries int [Q,3], k 1..N; ball_query: queries, "
          "k 1..N, radius2 (a number >= 0); fps: m 1..N; kernel_map: kernel_size 2 | 3, "
          "stride 1 | 2")
OUTPUTS = ("kernel_map: offset, in_idx, out_idx int64 [M] by offset then out_idx (+ out_coords "
           "int64 [U,3] for stride 2); knn: indices, dist2 int64 [Q,k] nearest first; "
           "ball_query: indices int64 [Q,k]; fps: indices int64 [m]")


def _op(arrays) -> str:
    allowed = " | ".join(OPS)
    if "op" not in arrays:
        raise InputError(f"input op: missing; allowed: {allowed}")
    value = np.asarray(arrays["op"]).reshape(-1)
    op = value[0].decode() if value.size == 1 and value.dtype.kind == "S" else \
        str(value[0]) if value.size == 1 else str(value.tolist())
    if op not in OPS:
        raise InputError(f"input op: {op!r} is not allowed; allowed: {allowed}")
    return op


def _coords(cfg: MappingConfig, arrays, key: str, most: int) -> np.ndarray:
    top = (1 << cfg.coord_width) - 1
    what = f"int [{'N' if key == 'coords' else 'Q'},3] in 0..{top}"
    if key in arrays and np.asarray(arrays[key]).size == 0:
        value = np.asarray(arrays[key])
        if value.ndim != 2 or value.shape[1] != 3:
            raise InputError(f"input {key}: shape {list(value.shape)} is not allowed; "
                             f"expected {what}")
        return np.zeros((0, 3), np.int64)
    value = int_array(arrays, key, 2, 0, top, what)
    if value.shape[1] != 3:
        raise InputError(f"input {key}: shape {list(value.shape)} is not allowed; expected {what}")
    if len(value) > most:
        raise InputError(f"input {key}: {len(value)} rows is too many; allowed: at most {most}")
    return value


def check_inputs(cfg: MappingConfig, arrays) -> dict:
    """Validate the npz arrays of ``accelgen run mapping``."""
    op = _op(arrays)
    coords = _coords(cfg, arrays, "coords", cfg.capacity)
    if len(np.unique(golden.coord_keys(coords, cfg.coord_width))) != len(coords):
        raise InputError("input coords: has repeated points; allowed: unique coordinates")
    n = len(coords)
    out = {"coords": coords, "op": op}
    if op == "kernel_map":
        out["kernel_size"] = scalar(arrays, "kernel_size", 2, 3, "2 | 3")
        out["stride"] = scalar(arrays, "stride", 1, 2, "1 | 2")
        return out
    if n == 0:
        raise InputError(f"input coords: no points; allowed: 1..{cfg.capacity} points for {op}")
    if op == "fps":
        out["m"] = scalar(arrays, "m", 1, n, f"1..{n} (the number of points)")
        return out
    out["queries"] = _coords(cfg, arrays, "queries", (1 << QUERY_COUNT_WIDTH) - 1)
    out["k"] = scalar(arrays, "k", 1, n, f"1..{n} (the number of points)")
    if op == "ball_query":
        out["radius2"] = scalar(arrays, "radius2", 0, np.iinfo(np.int64).max,
                                 "a number >= 0", real=True)
    return out


def expected(cfg: MappingConfig, inputs) -> dict[str, np.ndarray]:
    c, op, w = inputs["coords"], inputs["op"], cfg.coord_width
    if op == "kernel_map":
        maps = golden.kernel_map(c, inputs["kernel_size"], inputs["stride"], w)
        out = {k: maps[k].astype(np.int64) for k in ("offset", "in_idx", "out_idx")}
        if inputs["stride"] == 2:
            out["out_coords"] = maps["out_coords"].astype(np.int64)
        return out
    if op == "knn":
        idx, d2 = golden.knn(c, inputs["queries"], inputs["k"], w) if len(inputs["queries"]) \
            else (np.zeros((0, inputs["k"]), np.int64),) * 2
        return {"indices": idx.astype(np.int64), "dist2": d2.astype(np.int64)}
    if op == "ball_query":
        idx = golden.ball_query(c, inputs["queries"], inputs["radius2"], inputs["k"], w) \
            if len(inputs["queries"]) else np.zeros((0, inputs["k"]), np.int64)
        return {"indices": idx.astype(np.int64)}
    return {"indices": golden.fps(c, inputs["m"], w).astype(np.int64)}


def frames(cfg: MappingConfig, inputs) -> list[int]:
    """Lanes of each output frame, in order."""
    op = inputs["op"]
    if op == "kernel_map":
        ref = expected(cfg, inputs)
        return ([len(ref["out_coords"])] if inputs["stride"] == 2 else []) + [len(ref["offset"])]
    if op in ("knn", "ball_query"):
        return [inputs["k"]] * len(inputs["queries"])
    return [inputs["m"]]


def _frame_beats(cfg: MappingConfig, lanes_: int) -> int:
    return max(1, math.ceil(lanes_ / cfg.lanes))


def job(cfg: MappingConfig, inputs, valid, ready, max_cycles: int | None = None) -> Job:
    c, op = inputs["coords"], inputs["op"]
    n, p = len(c), cfg.lanes
    queries = inputs.get("queries", np.zeros((0, 3), np.int64))
    radius2 = min(inputs.get("radius2", 0), cfg.max_dist2 + 1)  # every d2 is below max + 1
    cmd = {"op": np.array([OPS.index(op)]), "n": np.array([n]),
           "queries": np.array([len(queries)]), "k": np.array([inputs.get("k", 0)]),
           "m": np.array([inputs.get("m", 0)]), "radius2": np.array([radius2]),
           "kernel3": np.array([int(inputs.get("kernel_size", 3) == 3)]),
           "stride2": np.array([int(inputs.get("stride", 1) == 2)])}
    beats = math.ceil(n / p)
    padded = np.zeros((beats * p, 3), np.int64)
    padded[:n] = c
    pts = {"points": {f: padded[:, i].reshape(beats, p) for i, f in enumerate("xyz")}}
    qs = {f: queries[:, i] for i, f in enumerate("xyz")}
    out_beats = sum(_frame_beats(cfg, f) for f in frames(cfg, inputs))
    limit = max_cycles or cycle_limit(model(cfg, inputs)["model_cycles"])
    return Job(sources={"cmd": Source(pack(command_layout(cfg), cmd), valid),
                        "p": Source(pack(points_layout(cfg), pts) if beats else [], valid),
                        "q": Source(pack(coord_layout(cfg), qs) if len(queries) else [], valid)},
               sinks={"o": Sink(out_beats, ready)}, max_cycles=limit)


def _frames_of(cfg: MappingConfig, inputs, beats: list[int]) -> list[dict[str, np.ndarray]]:
    """Per frame, its lanes' fields (the first ``count`` lanes of its beats)."""
    out = unpack(output_layout(cfg), beats) if beats else None
    got, at = [], 0
    for size in frames(cfg, inputs):
        b = _frame_beats(cfg, size)
        lanes_ = {f: np.concatenate([out["lanes"][f][j, :out["count"][j]]
                                     for j in range(at, min(at + b, len(beats)))] or
                                    [np.zeros(0, np.int64)]).astype(np.int64)
                  for f in ("offset", "index", "value")} if out is not None else \
            {f: np.zeros(0, np.int64) for f in ("offset", "index", "value")}
        if len(lanes_["index"]) != size:  # a wrong count: mark the frame wrong
            lanes_ = {f: np.full(size, -1, np.int64) for f in lanes_}
        got.append(lanes_)
        at += b
    return got


#: Result fields an operation does not use: they must be 0.
UNUSED = {"knn": ("offset",), "ball_query": ("offset", "value"), "fps": ("offset", "value")}


def decode(cfg: MappingConfig, inputs, beats: list[int]) -> dict[str, np.ndarray]:
    """The results of ``beats``; a frame whose unused fields are not 0 (a stride-2
    coordinate frame's offset included) decodes as indices -1."""
    op, got = inputs["op"], _frames_of(cfg, inputs, beats)
    w = cfg.coord_width
    unused = UNUSED.get(op, ("offset",) if inputs.get("stride") == 2 else ())
    for frame in got[:1] if op == "kernel_map" else got:
        if any(frame[f].any() for f in unused):
            frame["index"][:] = -1
    if op == "kernel_map":
        maps = got[-1]
        out = {"offset": maps["offset"], "in_idx": maps["index"], "out_idx": maps["value"]}
        if inputs["stride"] == 2:
            key, mask = got[0]["value"], (1 << w) - 1
            out["out_coords"] = np.stack([key >> 2 * w, (key >> w) & mask, key & mask], axis=1) \
                if len(key) else np.zeros((0, 3), np.int64)
            out["out_coords"][got[0]["index"] != np.arange(len(key))] = -1
        return out
    if op == "fps":
        return {"indices": got[0]["index"]}
    k = inputs["k"]
    idx = np.array([f["index"] for f in got], np.int64).reshape(len(got), k)
    if op == "ball_query":
        return {"indices": idx}
    return {"indices": idx,
            "dist2": np.array([f["value"] for f in got], np.int64).reshape(len(got), k)}


def flagged(cfg: MappingConfig, inputs, beats: list[int]) -> int:
    """Output beats whose ``last`` flag is not where a frame ends."""
    if not beats:
        return 0
    return misplaced_lasts(unpack(output_layout(cfg), beats)["last"],
                           [_frame_beats(cfg, size) for size in frames(cfg, inputs)])


def model(cfg: MappingConfig, inputs) -> dict[str, float]:
    cycles = mapping_cycles.unit_cycles(cfg.lanes, inputs, cfg.coord_width)
    return {"model_cycles": cycles["total"], "bound_cycles": cycles["bound"]}


def timing(cfg: MappingConfig, inputs, job_, result) -> tuple[dict, dict]:
    bound = model(cfg, inputs)["bound_cycles"]
    return {}, {"bound_ratio": round(bound / result.span, 4) if result.span else 0.0}


def default_workload(cfg: MappingConfig, seed: int = 0) -> dict:
    """A kernel map (k = 3, stride 1) of 200 random voxels in a 12^3 cube."""
    rng = np.random.default_rng(seed)
    side = min(12, 1 << cfg.coord_width)
    keys = rng.choice(side ** 3, min(200, cfg.capacity, side ** 3), replace=False)
    coords = np.stack([keys // side ** 2, keys // side % side, keys % side], axis=1)
    return {"coords": coords, "op": "kernel_map", "kernel_size": 3, "stride": 1}


def soak_workload(cfg: MappingConfig, items: int, seed: int = 0) -> dict:
    """Ball queries (k = 4, radius2 = 6) from ``items`` random query points into 16 random
    points of a 4^3 cube: about ``items`` input beats, hits from none to all."""
    rng = np.random.default_rng(seed)
    side = min(4, 1 << cfg.coord_width)
    keys = rng.choice(side ** 3, min(16, cfg.capacity), replace=False)
    coords = np.stack([keys // side ** 2, keys // side % side, keys % side], axis=1)
    return {"coords": coords, "op": "ball_query", "queries": rng.integers(0, side, (items, 3)),
            "k": 4, "radius2": 6}


component = MappingUnit


# ---------------------------------------------------------------- real workload

#: ``accelgen workloads mapping`` options (argparse keyword arguments of :func:`real_workload`)
WORKLOAD_OPTIONS = {
    "op": dict(default="kernel_map", choices=list(OPS)),
    "cloud": dict(default="bunny", choices=pointclouds.NAMES),
    "voxel": dict(type=float, default=0.01), "points": dict(type=int, default=0),
    "shuffle": dict(action="store_true"), "queries": dict(type=int, default=16),
    "k": dict(type=int, default=16), "radius2": dict(type=int, default=10),
    "m": dict(type=int, default=32), "kernel_size": dict(type=int, default=3, choices=[2, 3]),
    "stride": dict(type=int, default=1, choices=[1, 2])}


def real_workload(op: str = "kernel_map", cloud: str = "bunny", voxel: float = 0.01,
                  points: int = 0, shuffle: bool = False, queries: int = 16, k: int = 16,
                  radius2: int = 10, m: int = 32, kernel_size: int = 3,
                  stride: int = 1) -> dict[str, np.ndarray]:
    """A mapping job on a real point cloud shipped by a package (workloads/pointclouds.py),
    voxelized as torchsparse does (sorted by key); ``points`` keeps the first N voxels,
    ``shuffle`` permutes them (seeded); queries are voxels evenly spaced through it."""
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


# ---------------------------------------------------------------- formal

def invariants(m: Module, dut) -> None:
    """Result frames are full but for their last beat and every index names one of the
    job's points (the first ``capacity`` of them), for every command, also those the CLI
    refuses (n above capacity or 0, k and m above n or 0)."""
    cfg, cmd, o = dut.cfg, dut.cmd, dut.o
    layout = cmd.payload.shape()
    command = constant(m, cmd.payload, "any_command")
    job = layout(command)
    m.d.comb += Assume(~cmd.valid | (Value.cast(cmd.payload) == command))
    kept = Mux(job.n > cfg.capacity, cfg.capacity, job.n)  # any n, k, m: the unit clamps
    lanes = o.payload.lanes
    named = [(o.payload.count <= j) | (lanes[j].index < kept) for j in range(cfg.lanes)]
    m.d.comb += Assert(framed(o, cfg.lanes) & (~o.valid | Cat(*named).all()))
