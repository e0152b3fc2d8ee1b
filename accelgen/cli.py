"""The ``accelgen`` command line: list, generate, run, synth, and the project's tools
(workloads, demo, bench, lint, formal, soak, mutate), each with its own options.

Exit codes: 0 success, 1 RTL output differs from the golden model, 2 bad input (one
line on stderr naming the field and what is allowed; no output files are written).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from accelgen import __version__, registry
from accelgen.configure import UsageError, load_config
from accelgen.params.base import ConfigError, as_dict
from accelgen.run import pick_sim
from accelgen.sim.runner import SIMULATORS
from accelgen.synth import ROUTERS


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"usage: {message}")


# -- output files: all or nothing ----------------------------------------------------

def check_writable(path: Path, flag: str) -> None:
    """Fail early (before any work) when ``path`` cannot become a file."""
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a directory; expected a file path")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"{flag} {path}: {parent} is a file, not a directory")
            break


def _write_all(files: dict[Path, bytes], flags: dict[Path, str]) -> None:
    """Write every file to a temporary name first, then rename them all."""
    for path in files:
        check_writable(path, flags[path])
    staged = []
    try:
        for path, data in files.items():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            except OSError as exc:
                raise UsageError(f"{flags[path]} {path}: cannot write ({exc.strerror})") from None
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            staged.append((tmp, path))
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)


# -- commands ------------------------------------------------------------------------

def cmd_list(args) -> int:
    for block in registry.BLOCKS.values():
        bench = block.bench
        print(f"{block.name}: {block.summary}")
        print(f"  run inputs:  {bench.INPUTS}")
        print(f"  run outputs: {bench.OUTPUTS}")
        for name, kind, default, allowed, doc in block.parameters():
            print(f"  {name:<10} {kind:<4} default {str(default):<6} "
                  f"allowed {allowed:<22} {doc}")
    return 0


def _generate_one(block: registry.Block, cfg, out_dir: Path) -> dict[Path, bytes]:
    from accelgen.manifest import manifest
    from accelgen.hdl.rtl import to_verilog

    component = block.component(cfg)
    verilog = to_verilog(component, block.name)
    meta = manifest(block.name, cfg, component, verilog)
    return {out_dir / f"{block.name}.v": verilog.encode(),
            out_dir / f"{block.name}.json": (json.dumps(meta, indent=2) + "\n").encode()}


def cmd_generate(args) -> int:
    if args.all == bool(args.block):
        raise UsageError("generate: give one BLOCK or --all, not both or neither")
    names = list(registry.BLOCKS) if args.all else [args.block]
    files: dict[Path, bytes] = {}
    for name in names:
        block = registry.get(name)
        files.update(_generate_one(block, load_config(block, args.config, args.set),
                                   Path(args.output)))
    _write_all(files, {path: "-o" for path in files})
    for path in files:
        print(path)
    return 0


def load_npz(path: str) -> dict[str, np.ndarray]:
    """All arrays of an npz file; unreadable files are a one-line UsageError."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise UsageError(f"--input {path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile):
        raise UsageError(f"--input {path}: not a readable .npz file (numpy.savez)") from None


def cmd_run(args) -> int:
    from accelgen.run import run_block

    block = registry.get(args.block)
    cfg = load_config(block, args.config, args.set)
    inputs = block.bench.check_inputs(cfg, load_npz(args.input))
    flags = {Path(args.output): "--output"}
    if args.report:
        flags[Path(args.report)] = "--report"
    for path, flag in flags.items():
        check_writable(path, flag)
    if args.waves and Path(args.waves).exists() and not Path(args.waves).is_dir():
        raise UsageError(f"--waves {args.waves}: is a file; expected a directory")
    sim = pick_sim(args.sim)
    outputs, report = run_block(block, cfg, inputs, sim,
                                waves=Path(args.waves) if args.waves else None)
    buf = tempfile.SpooledTemporaryFile()
    np.savez(buf, **outputs)
    buf.seek(0)
    files = {Path(args.output): buf.read()}
    if args.report:
        files[Path(args.report)] = (json.dumps(report, indent=2) + "\n").encode()
    _write_all(files, flags)
    print(json.dumps(report, indent=2))
    return 0 if report["match"] else 1


def cmd_synth(args) -> int:
    from accelgen.synth import SynthError, synthesize
    from accelgen.synth.flow import to_markdown

    block = registry.get(args.block)
    cfg = load_config(block, args.config, args.set)
    if Path(args.output).exists() and not Path(args.output).is_dir():
        raise UsageError(f"-o {args.output}: is a file; expected a directory")
    try:
        report = synthesize(lambda: block.component(cfg), name=block.name,
                            target=args.target, out_dir=Path(args.output), nodsp=args.nodsp,
                            seeds=tuple(range(1, args.seeds + 1)), router=args.router)
    except SynthError as exc:
        print(f"accelgen: synth failed: {exc}", file=sys.stderr)
        return 1
    print(to_markdown(report))
    print(f"parameters: {json.dumps(as_dict(cfg))}")
    return 0


#: Subcommands that hand the rest of the command line to a tool's own ``main(argv)``.
TOOLS = {
    "workloads": ("accelgen.npz_workloads", "write a real workload as an npz input for run"),
    "demo": ("accelgen.demo", "every block's default workload on Verilator, one table"),
    "bench": ("accelgen.bench", "cycles on real workloads + ECP5 synthesis -> docs/results/"),
    "lint": ("accelgen.sim.lint", "verilator --lint-only on every .v of a folder"),
    "docs": ("accelgen.contract", "regenerate the contracts in docs/blocks/ from the registry"),
    "timing": ("accelgen.timing", "calibrate the timing guard's LUT levels against nextpnr Fmax"),
    "formal": ("accelgen.formal", "prove the stream rules and invariants (yosys-smtbmc)"),
    "soak": ("accelgen.soak", "10^6 beats through every block under random stalls"),
    "mutate": ("accelgen.mutate", "mutation testing of hdl/ with mutmut"),
}


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; expected a whole number >= 1")
    return int(text)


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE.yaml", help="parameter: value mapping")
    p.add_argument("--set", action="append", default=[], metavar="key=value",
                   help="override one parameter (repeatable)")


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="accelgen", description=__doc__.splitlines()[0])
    top.add_argument("--version", action="version", version=f"accelgen {__version__}")
    sub = top.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="blocks, parameters and run contracts").set_defaults(func=cmd_list)

    gen = sub.add_parser("generate", help="write BLOCK.v and BLOCK.json")
    gen.add_argument("block", nargs="?")
    gen.add_argument("--all", action="store_true", help="every registered block")
    gen.add_argument("-o", "--output", default="out/rtl", metavar="DIR")
    _config_args(gen)
    gen.set_defaults(func=cmd_generate)

    run = sub.add_parser("run", help="simulate BLOCK on an npz input, compare with golden")
    run.add_argument("block")
    run.add_argument("--input", required=True, metavar="IN.npz")
    run.add_argument("--output", required=True, metavar="OUT.npz")
    run.add_argument("--sim", default="verilator", choices=SIMULATORS)
    run.add_argument("--waves", metavar="DIR", help="write a VCD of the run into DIR")
    run.add_argument("--report", metavar="R.json")
    _config_args(run)
    run.set_defaults(func=cmd_run)

    syn = sub.add_parser("synth", help="yosys + nextpnr out-of-context report")
    syn.add_argument("block")
    syn.add_argument("--target", required=True, choices=("ecp5", "ice40"))
    syn.add_argument("--nodsp", action="store_true", help="map multipliers to LUTs")
    syn.add_argument("--seeds", type=_positive, default=3, metavar="N",
                     help="place and route with seeds 1..N, in parallel (default 3); "
                          "the report gives each Fmax and their median")
    syn.add_argument("--router", default="router1", choices=ROUTERS,
                     help="nextpnr's router (default router1: the better clocks; router2 "
                          "finishes large designs that router1 leaves congested)")
    syn.add_argument("-o", "--output", default="out/synth", metavar="DIR")
    _config_args(syn)
    syn.set_defaults(func=cmd_synth)
    for name, (_, summary) in TOOLS.items():
        sub.add_parser(name, help=f"{summary} (accelgen {name} --help)", add_help=False)
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in TOOLS:
        return importlib.import_module(TOOLS[argv[0]][0]).main(argv[1:])
    try:
        args = parser().parse_args(argv)
        return args.func(args)
    except ConfigError as exc:
        print(f"accelgen: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
