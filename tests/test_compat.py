"""The private APIs that hdl/compat.py relies on still behave as it assumes: an upgrade
of Amaranth, cocotb or mutmut that changes one fails here, by name, not somewhere
downstream."""

import gc
import inspect
import warnings

from amaranth import Fragment, Module, Signal
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from accelgen.hdl.compat import AnyConst, silence_unused


class _Unused(wiring.Component):
    o: Out(1)

    def elaborate(self, platform):
        return Module()


def _warnings_of_a_dropped_component(silence: bool) -> list:
    Fragment.get(_Unused(), None)  # Amaranth warns only once something was elaborated
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        component = _Unused()
        if silence:
            silence_unused(component)
        del component
        gc.collect()
    return [w for w in caught if "never used" in str(w.message)]


def test_silence_unused_silences_amaranths_never_used_warning():
    assert _warnings_of_a_dropped_component(silence=False)  # the warning exists...
    assert not _warnings_of_a_dropped_component(silence=True)  # ...and is silenced


def test_anyconst_becomes_yosys_anyconst():
    m, value = Module(), Signal(4)
    m.d.comb += value.eq(AnyConst(4))
    assert "$anyconst" in rtlil.convert(m, ports=[value])


def test_cocotb_verilator_build_command_has_the_flag_we_drop():
    from cocotb_tools.runner import Verilator

    source = inspect.getsource(Verilator._build_command)
    assert "--public-flat-rw" in source


def test_mutation_results_are_read_from_mutmuts_own_files(tmp_path, monkeypatch):
    """accelgen/mutate.py reads mutmut's result files with mutmut's loader and exit-code
    table: a file written by mutmut's own writer reads back as mutmut's statuses."""
    from mutmut.mutation.data import SourceFileMutationData

    from accelgen.mutate import _statuses

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mutants" / "hdl").mkdir(parents=True)
    data = SourceFileMutationData(path="hdl/lanes.py")
    data.exit_code_by_key = {"hdl.lanes.x_popcount__mutmut_1": 1,
                             "hdl.lanes.x_popcount__mutmut_2": 0,
                             "hdl.lanes.x_popcount__mutmut_3": None,
                             "hdl.lanes.x_popcount__mutmut_4": 36}
    data.save()
    assert _statuses() == {"hdl.lanes.x_popcount__mutmut_1": "killed",
                           "hdl.lanes.x_popcount__mutmut_2": "survived",
                           "hdl.lanes.x_popcount__mutmut_3": "not checked",
                           "hdl.lanes.x_popcount__mutmut_4": "timeout"}
