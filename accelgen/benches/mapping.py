"""``make bench`` sections of the mapping unit: cycles per operation on a real point cloud
beside the model, the physical bound and a hash-table kernel map; ECP5 area and Fmax."""
from __future__ import annotations

from accelgen import registry
from accelgen.configure import load_config
from accelgen.run import run_block
from accelgen.table import markdown
from accelgen.sim.mapping import real_workload
from accelgen.golden.mapping_cycles import hash_cycles

from . import SYNTH_HEADER, synth, synth_row

#: (label, workload arguments) on the pygsp bunny
JOBS = [("kernel map k3 s1, sorted", dict(op="kernel_map")),
        ("kernel map k3 s1, shuffled", dict(op="kernel_map", shuffle=True)),
        ("kernel map k2 s2", dict(op="kernel_map", kernel_size=2, stride=2)),
        ("kernel map k3 s2", dict(op="kernel_map", stride=2)),
        ("kNN, 16 queries, k 16", dict(op="knn")),
        ("ball query, 16 queries, k 16, r2 10", dict(op="ball_query")),
        ("FPS, m 32", dict(op="fps"))]
VOXELS = (0.01, 0.005)
LANE_SWEEP = (1, 4, 8)


def _row(cfg, label, voxel, inputs, sim):
    _, rep = run_block(registry.get("mapping"), cfg, inputs, sim)
    hashed = hash_cycles(inputs, cfg.coord_width) if inputs["op"] == "kernel_map" else None
    return [label, f"bunny {voxel} ({len(inputs['coords'])})", cfg.lanes, rep["match"],
            rep["cycles"], rep["model_cycles"], rep["bound_cycles"], rep["bound_ratio"],
            hashed if hashed is not None else "-",
            f"{hashed / rep['cycles']:.2f}" if hashed else "-"]


HEADER = ["operation", "cloud (voxels)", "P", "match", "cycles", "model", "bound",
          "bound / cycles", "hash-table cycles", "hash / ours"]


def cycles(sim: str) -> str:
    """Every operation at the preset (P = 4) on the bunny at two voxel sizes."""
    block = registry.get("mapping")
    cfg = load_config(block, None, [])
    rows = []
    for voxel in VOXELS:
        for label, kw in JOBS:
            inputs = real_workload(cloud="bunny", voxel=voxel, **kw)
            inputs["op"] = str(inputs["op"])
            rows.append(_row(cfg, label, voxel, block.bench.check_inputs(cfg, inputs), sim))
    return markdown(HEADER, rows)


def lanes(sim: str) -> str:
    """Kernel maps (k = 3, stride 1) against the lane count: the hash table probes one
    (output, offset) a cycle whatever P is; a merge handles P entries a cycle."""
    block = registry.get("mapping")
    rows = []
    for lanes in LANE_SWEEP:
        cfg = load_config(block, None, [f"lanes={lanes}"])
        for label, kw in JOBS[:2]:
            inputs = real_workload(cloud="bunny", voxel=0.01, **kw)
            inputs["op"] = str(inputs["op"])
            rows.append(_row(cfg, label, 0.01, block.bench.check_inputs(cfg, inputs), sim))
    return markdown(HEADER, rows)


def area(sim: str) -> str:
    """P = 4, 16-bit coordinates, 4096 and 2048 points, through yosys only: the preset
    places (180 of the ECP5-85k's 208 DP16KD), but router2 left 17,593 wires overused
    after 13 iterations (24 minutes; 20.6 MHz estimated after placement), so its Fmax
    waits for the mapping unit's rebuild (the guard configuration's is in
    docs/results/timing.md)."""
    block = registry.get("mapping")
    rows = []
    for capacity in (4096, 2048):
        cfg = load_config(block, None, [f"capacity={capacity}"])
        rows.append([f"P={cfg.lanes}, {cfg.coord_width}-bit, {cfg.capacity} points",
                     *synth_row(synth("mapping", cfg, place=False))])
    return markdown(["unit", *SYNTH_HEADER], rows)


SECTIONS = [
    ("mapping: cycles per operation on the voxelized bunny, preset P = 4 ({sim})", cycles),
    ("mapping: kernel maps against the lane count ({sim})", lanes),
    ("mapping: ECP5-85k out of context (yosys only, harness subtracted)", area),
]
