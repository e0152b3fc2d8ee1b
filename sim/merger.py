"""Testbench adapter of the ``merger`` block: npz streams → merge rounds on the RTL.

Stream i of the input is the next ``lengths[i]`` (key, value) entries. Up to W streams
are merged in one job (one stream per input port, unused ports get an empty stream);
more streams are merged in rounds (golden.merger.schedule: fewest entries first), each
round's output going back into the RTL as a new stream. Every round's cycles count.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from amaranth import Module

from accelgen.params.merger import MergerConfig
from accelgen.golden import merger as golden
from accelgen.hdl.merger import Merger, input_layout, output_layout

from .inputs import InputError, int_vector
from .adapter import misplaced_lasts, run_rounds
from .invariants import merge_contract
from .job import Job, Result, Sink, Source, cycle_limit
from .streams import pack, unpack

INPUTS = ("keys: uint [E] (key_width bits), values: int [E] (value_width bits, signed), "
          "lengths: int [S] >= 0 summing to E (stream i = the next lengths[i] entries, "
          "sorted by key; S > ways merges in rounds)")
OUTPUTS = "keys: uint64 [U] ascending, values: int64 [U] (the sum of each key's values)"


def check_inputs(cfg: MergerConfig, arrays) -> dict[str, np.ndarray]:
    """Validate the npz arrays of ``accelgen run merger``."""
    kmax = (1 << cfg.key_width) - 1
    keys = int_vector(arrays, "keys", f"[E] integers in 0..{kmax}")
    values = int_vector(arrays, "values", f"[E] integers in {cfg.value_range[0]}.."
                                           f"{cfg.value_range[1]}")
    lengths = int_vector(arrays, "lengths", "[S] >= 1 stream lengths >= 0 summing to E")
    if keys.size and (min(keys) < 0 or max(keys) > kmax):
        raise InputError(f"input keys: values {min(keys)}..{max(keys)} outside 0..{kmax}; "
                         f"expected key_width = {cfg.key_width} bits")
    lo, hi = cfg.value_range
    if values.size and (min(values) < lo or max(values) > hi):
        raise InputError(f"input values: values {min(values)}..{max(values)} outside "
                         f"{lo}..{hi}; expected value_width = {cfg.value_width} bits")
    if values.shape != keys.shape:
        raise InputError(f"input values: shape {list(values.shape)} does not match keys "
                         f"{list(keys.shape)}")
    if lengths.size == 0 or min(lengths) < 0 or sum(lengths) != keys.size:
        raise InputError(f"input lengths: {lengths.size} lengths summing to "
                         f"{int(sum(lengths)) if lengths.size else 0} are not allowed; expected "
                         f"[S] >= 1 lengths >= 0 summing to E = {keys.size}")
    inputs = {"keys": keys, "values": values, "lengths": lengths}
    for s, (k, _) in enumerate(streams(inputs)):
        if len(k) > 1 and any(a > b for a, b in zip(k[:-1], k[1:])):
            raise InputError(f"input keys: stream {s} is not sorted by key ascending")
    if not cfg.saturate and golden.overflows(streams(inputs), cfg.value_range):
        raise InputError(f"input values: some key's sum leaves {lo}..{hi} and saturate is "
                         f"false; allowed: set saturate=true or widen value_width")
    return inputs


def streams(inputs) -> list[tuple[np.ndarray, np.ndarray]]:
    """The input as a list of (keys, values) streams."""
    ends = np.cumsum(np.asarray(inputs["lengths"], np.int64))
    starts = ends - np.asarray(inputs["lengths"], np.int64)
    return [(inputs["keys"][a:b], inputs["values"][a:b]) for a, b in zip(starts, ends)]


def _beats(cfg: MergerConfig, keys, values) -> list[int]:
    """One stream as input beats of ``in_lanes`` entries (an empty stream: one beat)."""
    lanes = cfg.in_lanes
    n = len(keys)
    count = max(1, math.ceil(n / lanes))
    k = np.zeros(count * lanes, dtype=object)
    v = np.zeros(count * lanes, dtype=object)
    k[:n], v[:n] = keys, values
    counts = np.minimum(lanes, n - lanes * np.arange(count)).clip(0)
    return pack(input_layout(cfg), {
        "entries": {"key": k.reshape(count, lanes), "value": v.reshape(count, lanes)},
        "count": counts, "last": (np.arange(count) == count - 1).astype(np.int64)})


def out_beats(cfg: MergerConfig, unique: int) -> int:
    """Output beats of a job whose result has ``unique`` keys."""
    return max(1, math.ceil(unique / cfg.lanes))


def job(cfg: MergerConfig, inputs, valid, ready, max_cycles: int | None = None) -> Job:
    """One merge round of the run inputs' streams (at most ``ways`` of them)."""
    parts = streams(inputs)
    if len(parts) > cfg.ways:
        raise ValueError(f"{len(parts)} streams need rounds; simulate() runs them")
    return round_job(cfg, parts, valid, ready, max_cycles)


def round_job(cfg: MergerConfig, parts, valid, ready, max_cycles: int | None = None) -> Job:
    """One merge job: ``parts`` (<= ways streams) on ports i0.., empty streams after."""
    total = sum(len(k) for k, _ in parts)
    unique = len(np.unique(np.concatenate([np.asarray(k).astype(np.uint64) for k, _ in parts]))) \
        if total else 0
    sources = {}
    for w in range(cfg.ways):
        keys, values = parts[w] if w < len(parts) else ((), ())
        sources[f"i{w}"] = Source(_beats(cfg, keys, values), valid)
    limit = max_cycles or cycle_limit(golden.tree_cycles([k for k, _ in parts], cfg))
    return Job(sources=sources, sinks={"o": Sink(out_beats(cfg, unique), ready)},
               max_cycles=limit)


def decode(cfg: MergerConfig, inputs, beats: list[int]) -> dict[str, np.ndarray]:
    """Keys and values of the valid lanes of the output beats, in order."""
    if not beats:
        return {"keys": np.zeros(0, np.uint64), "values": np.zeros(0, np.int64)}
    out = unpack(output_layout(cfg), beats)
    cnt = out["count"]
    keys = [out["entries"]["key"][j, :cnt[j]] for j in range(len(beats))]
    values = [out["entries"]["value"][j, :cnt[j]] for j in range(len(beats))]
    return {"keys": np.concatenate(keys).astype(np.uint64),
            "values": np.concatenate(values).astype(np.int64)}


def simulate(cfg: MergerConfig, inputs, sim: str, valid, ready, workdir: Path,
             waves: Path | None) -> tuple[Job, Result]:
    """Every merge round on the RTL; a round's output is a stream of later rounds."""
    pool = streams(inputs)

    def merged(beats):
        out = decode(cfg, inputs, beats)
        pool.append((out["keys"], out["values"]))
    return run_rounds(sim, Merger(cfg), "merger",
                      golden.schedule([len(k) for k, _ in pool], cfg.ways),
                      lambda ids: round_job(cfg, [pool[i] for i in ids], valid, ready), merged,
                      workdir, waves)


def flagged(cfg: MergerConfig, inputs, beats: list[int]) -> int:
    """Output beats whose ``last`` flag is not on the final beat only."""
    if not beats:
        return 0
    return misplaced_lasts(unpack(output_layout(cfg), beats)["last"], [len(beats)])


def expected(cfg: MergerConfig, inputs) -> dict[str, np.ndarray]:
    keys, values = golden.run_rounds(streams(inputs), cfg.ways, cfg.value_range, cfg.saturate)
    return {"keys": keys.astype(np.uint64), "values": values.astype(np.int64)}


def timing(cfg: MergerConfig, inputs, job_, result) -> tuple[dict, dict]:
    elements = int(np.sum(inputs["lengths"]))
    return {}, {"elements_per_cycle_per_lane":
                round(elements / result.span / cfg.lanes, 4) if result.span else 0.0,
                "rounds": len(golden.schedule(list(inputs["lengths"]), cfg.ways))}


def round_model(cfg: MergerConfig, keys: list[np.ndarray]) -> dict[str, int]:
    """Model cycles (golden.merger.tree_cycles) of merging streams holding ``keys`` in
    the rounds of golden.merger.schedule, and the number of rounds; a round's result
    holds the distinct keys of its inputs."""
    pool = [np.asarray(k).astype(np.uint64) for k in keys]
    rounds = golden.schedule([len(k) for k in pool], cfg.ways)
    cycles = 0
    for ids in rounds:
        cycles += golden.tree_cycles([pool[i] for i in ids], cfg)
        pool.append(np.unique(np.concatenate([pool[i] for i in ids])))
    return {"model_cycles": cycles, "rounds": len(rounds)}


def model(cfg: MergerConfig, inputs) -> dict[str, float]:
    got = round_model(cfg, [k for k, _ in streams(inputs)])
    return {"model_cycles": got["model_cycles"],
            "bound_cycles": golden.bound_cycles(int(np.sum(inputs["lengths"])), cfg.lanes)}


def random_streams(cfg: MergerConfig, streams_: int, length: int, seed: int = 0,
                   key_range: int | None = None) -> dict[str, np.ndarray]:
    """``streams_`` random sorted streams of ``length`` entries, keys below
    ``key_range`` (default: the full key width), small random values."""
    rng = np.random.default_rng(seed)
    top = min(key_range or (1 << cfg.key_width), 1 << cfg.key_width)
    keys = np.concatenate([np.sort(rng.integers(0, top, length, dtype=np.uint64))
                           for _ in range(streams_)])
    lo, hi = cfg.value_range
    values = rng.integers(max(lo, -100), min(hi, 100) + 1, keys.size)
    return {"keys": keys.astype(np.int64) if cfg.key_width < 63 else keys.astype(object),
            "values": values, "lengths": np.full(streams_, length)}


def default_workload(cfg: MergerConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """W random streams of 64 entries."""
    return random_streams(cfg, cfg.ways, 64, seed)


def soak_workload(cfg: MergerConfig, items: int, seed: int = 0) -> dict[str, np.ndarray]:
    """W random streams with at least ``items`` entries in all."""
    return random_streams(cfg, cfg.ways, math.ceil(items / cfg.ways), seed)


component = Merger


# ---------------------------------------------------------------- formal

def invariants(m: Module, dut) -> None:
    """Every output beat but a stream's last is full, and the output keys rise strictly
    (equal keys were combined) when every input stream is sorted."""
    cfg = dut.cfg
    merge_contract(m, {f"i{w}": (getattr(dut, f"i{w}"), cfg.in_lanes)
                        for w in range(cfg.ways)}, dut.o, cfg.lanes, lambda e: e.key)
