"""synth/levels.py on hand-made netlists: the deepest register-to-register path in LUT
levels, counted as docs/timing.md says (LUTs 1, slice muxes 0, a carry chain 1, an
unregistered multiplier or block-RAM read their calibrated worth)."""
from accelgen.synth.levels import BRAM_LEVELS, MULT_LEVELS, deepest_path

LUT = {"A": "input", "B": "input", "C": "input", "D": "input", "Z": "output"}
FF = {"CLK": "input", "DI": "input", "LSR": "input", "Q": "output"}
CCU2C = {**{f"{p}{i}": "input" for p in "ABCD" for i in (0, 1)}, "CIN": "input",
         "S0": "output", "S1": "output", "COUT": "output"}


def _cell(kind, dirs, conns, **params):
    return {"type": kind, "port_directions": dirs, "connections": conns, "parameters": params}


def _netlist(cells, ports=None):
    return {"modules": {"top": {"cells": cells, "ports": ports or {}}}}


def _lut(a, z, b="0"):
    return _cell("LUT4", LUT, {"A": [a], "B": [b] if b == "0" else [b], "C": ["0"], "D": ["0"],
                               "Z": [z]})


def test_a_chain_of_luts_between_flip_flops():
    # ff1 -> lut -> lut -> lut -> ff2, and a one-LUT side path
    cells = {"ff1": _cell("TRELLIS_FF", FF, {"CLK": [1], "DI": [9], "LSR": ["0"], "Q": [2]}),
             "l1": _lut(2, 3), "l2": _lut(3, 4), "l3": _lut(4, 5), "side": _lut(2, 6),
             "ff2": _cell("TRELLIS_FF", FF, {"CLK": [1], "DI": [5], "LSR": ["0"], "Q": [7]}),
             "ff3": _cell("TRELLIS_FF", FF, {"CLK": [1], "DI": [6], "LSR": ["0"], "Q": [8]})}
    path = deepest_path(_netlist(cells), "top")
    assert path.levels == 3 and path.cells == ("l1", "l2", "l3")


def test_a_carry_chain_is_one_level_and_slice_muxes_are_free():
    # ff -> lut -> ccu2c(A0) -> ccu2c(CIN) -> ccu2c(CIN).S1 -> pfumx -> ff
    ff = _cell("TRELLIS_FF", FF, {"CLK": [1], "DI": [20], "LSR": ["0"], "Q": [2]})
    carry = [_cell("CCU2C", CCU2C, {**{f"{p}{i}": ["0"] for p in "ABCD" for i in (0, 1)},
                                    "A0": [3] if n == 0 else ["0"], "CIN": [10 + n] if n else ["0"],
                                    "S0": [30 + n], "S1": [40 + n], "COUT": [11 + n]})
             for n in range(3)]
    mux = _cell("PFUMX", {"ALUT": "input", "BLUT": "input", "C0": "input", "Z": "output"},
                {"ALUT": [42], "BLUT": ["0"], "C0": ["0"], "Z": [50]})
    end = _cell("TRELLIS_FF", FF, {"CLK": [1], "DI": [50], "LSR": ["0"], "Q": [60]})
    cells = {"ff": ff, "lut": _lut(2, 3), "c0": carry[0], "c1": carry[1], "c2": carry[2],
             "mux": mux, "end": end}
    assert deepest_path(_netlist(cells), "top").levels == 1 + 1


def test_unregistered_multiplier_and_block_ram_read_count_their_worth():
    mult = _cell("MULT18X18D", {"A0": "input", "B0": "input", "P0": "output"},
                 {"A0": [2], "B0": ["0"], "P0": [3]}, REG_INPUTA_CLK="NONE", REG_OUTPUT_CLK="NONE")
    bram = _cell("DP16KD", {"CLKA": "input", "ADA0": "input", "DOA0": "output"},
                 {"CLKA": [1], "ADA0": ["0"], "DOA0": [2]}, REGMODE_A="NOREG")
    lut = _lut(3, 4)
    ff = _cell("TRELLIS_FF", FF, {"CLK": [1], "DI": [4], "LSR": ["0"], "Q": [5]})
    path = deepest_path(_netlist({"bram": bram, "mult": mult, "lut": lut, "ff": ff}), "top")
    assert path.levels == BRAM_LEVELS + MULT_LEVELS + 1 and path.multiplier
    registered = dict(mult, parameters={"REG_INPUTA_CLK": "NONE", "REG_OUTPUT_CLK": "CLK0"})
    path = deepest_path(_netlist({"bram": bram, "mult": registered, "lut": lut, "ff": ff}), "top")
    # the registered multiplier ends the block-RAM's path and starts a one-LUT one
    assert (path.levels, path.cells, path.multiplier) == (BRAM_LEVELS, (), False)


def test_ports_bound_paths_and_a_combinational_loop_is_left_out():
    ports = {"i": {"direction": "input", "bits": [2]}, "o": {"direction": "output", "bits": [4]}}
    loop = {"loop1": _lut(5, 6, b=7), "loop2": _lut(6, 5), "deep": _lut(7, 8), "deeper": _lut(8, 9),
            "ff": _cell("TRELLIS_FF", FF, {"CLK": [1], "DI": [6], "LSR": ["0"], "Q": [7]})}
    cells = {"a": _lut(2, 3), "b": _lut(3, 4), **loop}
    assert deepest_path(_netlist(cells, ports), "top").levels == 2
