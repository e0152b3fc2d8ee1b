"""The synthesis flow reports sane numbers for an 8-bit stream accumulator on ECP5."""

import json

import pytest
from amaranth import Fragment, Module, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from accelgen.synth import SynthError, synthesize
from accelgen.synth.harness import NullDut, SynthHarness, dut_ports, harness_ffs, port_widths


class Accumulator(wiring.Component):
    """Adds each accepted 8-bit beat into a register and streams out the running sum."""

    i: In(stream.Signature(unsigned(8)))
    o: Out(stream.Signature(unsigned(8)))

    def elaborate(self, platform):
        m = Module()
        acc = Signal(8)
        m.d.comb += [self.i.ready.eq(~self.o.valid | self.o.ready), self.o.payload.eq(acc)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [acc.eq(acc + self.i.payload), self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


def _used(dut):
    """Elaborate ``dut`` once (cheap) so Amaranth does not warn that it was never used."""
    Fragment.get(dut, None)
    return dut


def test_harness_sees_every_port_bit():
    inputs, outputs = dut_ports(_used(Accumulator()))
    assert sum(map(len, inputs)) == 8 + 1 + 1  # payload, valid, o.ready
    assert sum(map(len, outputs)) == 1 + 8 + 1  # i.ready, payload, valid
    assert list(_used(SynthHarness(Accumulator())).signature.members) == ["sin", "shift", "sout"]
    null = _used(NullDut(*port_widths(_used(Accumulator()))))
    assert port_widths(null) == ((8, 1, 1), (1, 8, 1))
    assert harness_ffs(10, 10) == 10 + 11 + 3 + 1


def test_ecp5_report(tmp_path):
    report = synthesize(Accumulator, name="acc8", target="ecp5", out_dir=tmp_path, seeds=(1, 2))
    assert json.loads((tmp_path / "acc8.ecp5.json").read_text()) == report
    assert "| LUT |" in (tmp_path / "acc8.ecp5.md").read_text()

    res = report["resources"]
    for row in res.values():
        assert 0 <= row["used"] <= row["available"]
    # Harness cost comes from a second run around a null DUT; the split is exact.
    for key in ("lut", "ff"):
        assert res[key]["harness"] + res[key]["dut"] == res[key]["used"]
    assert len(list((tmp_path / "harness").glob("null.ecp5.*.cells.json"))) == 1
    assert res["lut"]["used"] > 0 and res["ff"]["used"] > 0
    assert 4 <= res["lut"]["dut"] <= 40  # an 8-bit adder plus handshake logic
    assert res["ff"]["dut"] == 8 + 1  # accumulator and o.valid
    # Harness: 10 chain FFs, 11 capture FFs, XOR levels of 3 and 1 (one LUT4 each).
    assert (res["ff"]["harness"], res["lut"]["harness"]) == (10 + 11 + 4, 4)
    assert res["dsp"]["used"] == res["bram"]["used"] == 0
    # Fmax per seed from each nextpnr report, their median, and the median seed's
    # critical path, whose delay is that seed's clock period
    fmax, path = report["fmax_mhz"], report["critical_path"]
    runs = {seed: json.loads((tmp_path / f"acc8.ecp5.seed{seed}.nextpnr.json").read_text())
            for seed in (1, 2)}
    each = {str(s): min(c["achieved"] for c in run["fmax"].values()) for s, run in runs.items()}
    assert fmax["seeds"] == pytest.approx(each, abs=0.01)
    assert fmax["median"] == pytest.approx(sum(each.values()) / 2, abs=0.01)
    assert fmax["constraint"] == 125
    assert path["seed"] == min(runs, key=lambda s: each[str(s)])
    assert path["logic_ns"] + path["routing_ns"] == pytest.approx(1000 / each[str(path["seed"])],
                                                                  rel=0.02)
    assert path["logic_levels"] >= 1 and any(s.startswith("tests/") for s in path["sources"])
    assert "critical path (seed" in (tmp_path / "acc8.ecp5.md").read_text()


def test_tool_timeout_names_the_log(tmp_path, monkeypatch):
    monkeypatch.setattr("accelgen.synth.flow.TIMEOUT_S", 0.01)
    with pytest.raises(SynthError, match=r"^yosys timed out .*bad\.ecp5\.yosys\.log$"):
        synthesize(Accumulator, name="bad", target="ecp5", out_dir=tmp_path)


def test_tool_failure_quotes_the_error(tmp_path, monkeypatch):
    def script(stem, tgt, nodsp, netlist):
        return f"read_rtlil {stem}.il\nno_such_pass\n"
    monkeypatch.setattr("accelgen.synth.flow._yosys_script", script)
    with pytest.raises(SynthError, match=r"^yosys failed \(exit 1\): ERROR: No such command: "
                                         r"no_such_pass .*; log: .*bad\.ecp5\.yosys\.log$"):
        synthesize(Accumulator, name="bad", target="ecp5", out_dir=tmp_path)


def test_the_classic_lut_mapper_maps_the_same_logic(tmp_path, monkeypatch):
    """Where yosys fails one of its own assertions inside ABC9 (it does on some netlists,
    differently from release to release), the flow maps LUTs with classic ABC instead
    and says so in the report."""
    from accelgen.synth import flow

    real = flow._yosys

    def abc9_asserts(out, stem, script):
        if "abc -lut" not in script and stem.startswith("acc8"):
            (out / f"{stem}.yosys.log").write_text("ERROR: Assert `x' failed in rtlil.cc.\n")
            raise SynthError("yosys failed (exit 1): ERROR: Assert `x' failed in rtlil.cc.")
        real(out, stem, script)
    monkeypatch.setattr(flow, "_yosys", abc9_asserts)
    report = synthesize(Accumulator, name="acc8", target="ecp5", out_dir=tmp_path, place=False)
    assert report["lut_mapper"] == "abc (abc9 failed: ERROR: Assert `x' failed in rtlil.cc.)"
    assert (tmp_path / "acc8.ecp5.abc9.yosys.log").exists()
    assert 4 <= report["resources"]["lut"]["dut"] <= 40
    assert report["resources"]["ff"]["dut"] == 8 + 1
    assert "LUT mapping: abc" in (tmp_path / "acc8.ecp5.md").read_text()


class AccumulatorWithSpare(Accumulator):
    """The accumulator with one more (unused) register: another RTLIL text."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        spare = Signal(name="spare")
        m.d.sync += spare.eq(self.i.valid)
        return m


def test_a_report_is_reused_only_for_the_same_inputs(tmp_path, monkeypatch):
    """A second synthesis of the same design, flow and tool versions returns the saved
    report without running yosys; a changed design or seed list runs again."""
    from accelgen.synth import flow

    first = synthesize(Accumulator, name="acc8", target="ecp5", out_dir=tmp_path, place=False)

    def no_yosys(*args, **kwargs):
        raise AssertionError("yosys ran for a cached report")
    monkeypatch.setattr(flow, "_run_yosys", no_yosys)
    assert synthesize(Accumulator, name="acc8", target="ecp5", out_dir=tmp_path,
                      place=False) == first
    with pytest.raises(AssertionError, match="yosys ran"):
        synthesize(AccumulatorWithSpare, name="acc8", target="ecp5", out_dir=tmp_path, place=False)
    with pytest.raises(AssertionError, match="yosys ran"):
        synthesize(Accumulator, name="acc8", target="ecp5", out_dir=tmp_path, nodsp=True,
                   place=False)


class BlockRamStore(wiring.Component):
    """A 512 x 16-bit block RAM with one write port and one registered read port."""

    w_addr: In(9)
    w_data: In(16)
    w_en: In(1)
    r_addr: In(9)
    r_data: Out(16)

    def __init__(self, attrs):
        self.attrs = attrs
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=16, depth=512, init=[], attrs=self.attrs)
        wp, rp = mem.write_port(), mem.read_port(transparent_for=())
        m.d.comb += [wp.addr.eq(self.w_addr), wp.data.eq(self.w_data), wp.en.eq(self.w_en),
                     rp.addr.eq(self.r_addr), self.r_data.eq(rp.data)]
        return m


@pytest.mark.parametrize("no_rw_check", (False, True))
def test_a_store_marked_no_rw_check_reads_straight_from_its_block_ram(tmp_path, no_rw_check):
    """Amaranth's read port returns the old data when it reads the row being written;
    the DP16KD does not across its ports, so yosys adds a bypass register per bit and
    a multiplexer after the read. A memory marked ``no_rw_check`` (its owner never uses
    such a read) gets neither: the flow makes its collisions don't-care."""
    attrs = {"ram_style": "block", **({"no_rw_check": 1} if no_rw_check else {})}
    report = synthesize(lambda: BlockRamStore(attrs), name="store", target="ecp5",
                        out_dir=tmp_path, place=False)
    res = report["resources"]
    assert res["bram"]["dut"] == 1
    if no_rw_check:
        assert res["ff"]["dut"] == 0 and res["lut"]["dut"] == 0
    else:
        assert res["ff"]["dut"] >= 16 and res["lut"]["dut"] >= 16


class RegisteredRead(wiring.Component):
    """A 512 x 16-bit block RAM whose read goes into a register (no reset): every
    cycle, or (``enable``) only when ``hold`` is low."""

    w_addr: In(9)
    w_data: In(16)
    w_en: In(1)
    r_addr: In(9)
    hold: In(1)
    r_data: Out(16)

    def __init__(self, enable: bool):
        self.enable = enable
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(
            shape=16, depth=512, init=[], attrs={"ram_style": "block", "no_rw_check": 1})
        wp, rp = mem.write_port(), mem.read_port(transparent_for=())
        m.d.comb += [wp.addr.eq(self.w_addr), wp.data.eq(self.w_data), wp.en.eq(self.w_en),
                     rp.addr.eq(self.r_addr)]
        read = Signal(16, reset_less=True)
        with m.If(~self.hold if self.enable else 1):
            m.d.sync += read.eq(rp.data)
        m.d.comb += self.r_data.eq(read)
        return m


@pytest.mark.parametrize("enable", (False, True))
def test_a_block_ram_reads_register_moves_into_the_block_ram(tmp_path, enable):
    """The flip-flops that take a DP16KD read every cycle become its output register
    (synth/outreg.py: REGMODE OUTREG, 16 flip-flops fewer); with a clock enable they
    stay in the fabric."""
    report = synthesize(lambda: RegisteredRead(enable), name="outreg", target="ecp5",
                        out_dir=tmp_path, place=False)
    netlist = json.loads((tmp_path / "outreg.ecp5.netlist.json").read_text())
    brams = [c for c in netlist["modules"]["top"]["cells"].values() if c["type"] == "DP16KD"]
    modes = {c["parameters"]["REGMODE_A"] for c in brams} | \
        {c["parameters"]["REGMODE_B"] for c in brams}
    assert report["resources"]["bram"]["dut"] == len(brams) == 1
    if enable:
        assert report["bram_output_registers"] == 0 and modes == {"NOREG"}
        assert report["resources"]["ff"]["dut"] >= 16
    else:
        assert report["bram_output_registers"] == 16 and "OUTREG" in modes
        assert report["resources"]["ff"]["dut"] == 0
