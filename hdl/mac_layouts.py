"""Payload layouts of the ``mac`` block's streams, per mode (defined once; the cocotb
and simulator packing in sim/ derives from them)."""
from __future__ import annotations

from amaranth import signed, unsigned
from amaranth.lib import data

from accelgen.params.mac import MacConfig


def operand_layout(cfg: MacConfig) -> data.StructLayout:
    """One operand beat: an A column (R values), a W row (C values), end of tile (of a
    group in w4a4); msb_lsb adds ``msb`` (this beat's products count 16 times)."""
    a, w = {"w4a8": (signed(8), unsigned(4)), "w4a4": (signed(4), signed(4))}.get(
        cfg.mode, (signed(8), signed(8)))
    fields = {"a": data.ArrayLayout(a, cfg.rows), "w": data.ArrayLayout(w, cfg.cols)}
    if cfg.mode == "msb_lsb":
        fields["msb"] = unsigned(1)
    return data.StructLayout({**fields, "last": unsigned(1)})


def scale_layout(cfg: MacConfig) -> data.StructLayout | None:
    """One beat of the per-group scale stream ``s``: w4a8 has QServe's s2 and stored
    zero byte (-z) mod 256 per column; w4a4 has a_scale per row and w_scale per column
    (fixed-point integers) and ``last`` on a tile's final group. None for other modes."""
    if cfg.mode == "w4a8":
        return data.StructLayout({"s2": data.ArrayLayout(unsigned(8), cfg.cols),
                                  "neg_z": data.ArrayLayout(unsigned(8), cfg.cols)})
    if cfg.mode == "w4a4":
        return data.StructLayout({"a_scale": data.ArrayLayout(unsigned(16), cfg.rows),
                                  "w_scale": data.ArrayLayout(unsigned(16), cfg.cols),
                                  "last": unsigned(1)})
    return None


def lowrank_layout(cfg: MacConfig) -> data.StructLayout:
    """One beat of w4a4's low-rank stream ``lr``: column j of U = X.L1^T for the tile's R
    rows, row j of L2 for its C columns, the branch's scale, ``last`` on the tile's
    final rank index."""
    return data.StructLayout({"u": data.ArrayLayout(signed(16), cfg.rows),
                              "l2": data.ArrayLayout(signed(16), cfg.cols),
                              "scale": unsigned(16), "last": unsigned(1)})


def result_layout(cfg: MacConfig) -> data.StructLayout:
    """One result beat: a row of C sums (int32; int64 in w4a4); ``last`` marks the
    tile's final row; ``overflow`` is set on every row of a tile longer than ``k_max``
    beats (msb_lsb: 2 k_max over both passes; w4a4: with a group longer than
    ``group``), whose sums may have wrapped (such
    a tile is bad input; the next tile is unaffected)."""
    return data.StructLayout({
        "c": data.ArrayLayout(signed(cfg.result_width), cfg.cols),
        "last": unsigned(1),
        "overflow": unsigned(1),
    })


def partial_layout(cfg: MacConfig) -> data.StructLayout:
    """A row of the array's own sums as they leave its shadow bank."""
    return data.StructLayout({"c": data.ArrayLayout(signed(cfg.acc_width), cfg.cols),
                              "last": unsigned(1), "overflow": unsigned(1)})
