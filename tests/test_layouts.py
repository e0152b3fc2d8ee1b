"""Every port's payload, field by field, as the layouts' docstrings and the READMEs'
stream contracts state it (the cocotb packing derives from the layouts, so a wrong
field width would pass every simulation unnoticed)."""
import pytest
from amaranth import Shape
from amaranth.lib import data

from accelgen.hdl.compat import silence_unused
from accelgen.params import MacConfig, MappingConfig, MergerConfig, SpgemmConfig, TopkConfig
from accelgen.registry import get

#: the fast subset that mutation testing runs (pyproject [tool.mutmut])
pytestmark = pytest.mark.mutation


def fields(layout, prefix="") -> dict:
    """{dotted field: "s8"/"u4" (x lanes for arrays)} of a payload layout."""
    if isinstance(layout, data.StructLayout):
        return {k: v for name, member in layout.members.items()
                for k, v in fields(member, prefix + name + ".").items()}
    if isinstance(layout, data.ArrayLayout):
        return {k: f"{v} x{layout.length}" for k, v in fields(layout.elem_shape, prefix).items()}
    shape = Shape.cast(layout)
    return {prefix.rstrip("."): ("s" if shape.signed else "u") + str(shape.width)}


def ports(block, cfg) -> dict:
    comp = get(block).component(cfg)
    silence_unused(comp)  # only its signature is read
    return {name: fields(getattr(comp, name).payload.shape())
            for name in comp.signature.members}


def u(w):
    return f"u{w}"


@pytest.mark.parametrize("mode", ["w8a8", "w4a8", "w4a4", "msb_lsb"])
def test_mac_layouts(mode):
    """A column of R A values and a row of C W values (w4a8: uint4 q; w4a4: int4 both),
    msb_lsb's msb flag, last; w4a8's scale beat (s2, stored zero byte per column);
    w4a4's scales (16-bit a per row, w per column, last) and low-rank beats (int16 u per
    row, l2 per column, 16-bit scale, last); results: int32 (w4a4: int64) per column,
    last, overflow."""
    a, w = {"w4a8": ("s8", "u4"), "w4a4": ("s4", "s4")}.get(mode, ("s8", "s8"))
    msb = {"msb": "u1"} if mode == "msb_lsb" else {}
    want = {"i": {"a": f"{a} x2", "w": f"{w} x3", **msb, "last": "u1"},
            "o": {"c": f"s{64 if mode == 'w4a4' else 32} x3", "last": "u1", "overflow": "u1"}}
    if mode == "w4a8":
        want["s"] = {"s2": "u8 x3", "neg_z": "u8 x3"}
    if mode == "w4a4":
        want["s"] = {"a_scale": "u16 x2", "w_scale": "u16 x3", "last": "u1"}
        want["lr"] = {"u": "s16 x2", "l2": "s16 x3", "scale": "u16", "last": "u1"}
    group = {"w4a4": 8, "w4a8": 4}.get(mode, 0)
    assert ports("mac", MacConfig(rows=2, cols=3, k_max=16, mode=mode, group=group)) == want


@pytest.mark.parametrize("signed", [False, True])
def test_topk_layouts(signed):
    """P scores, a lane count 0..P, the row's k (0..capacity), last; out: P (index,
    value) pairs, count, last."""
    cfg = TopkConfig(lanes=4, width=5, signed=signed, capacity=20)
    s = ("s" if signed else "u") + "5"
    assert ports("topk", cfg) == {
        "i": {"scores": f"{s} x4", "count": "u3", "k": "u5", "last": "u1"},
        "o": {"pairs.index": "u5 x4", "pairs.value": f"{s} x4", "count": "u3", "last": "u1"}}


def test_merger_layouts():
    """Beats of (key, signed value) entries, a lane count, last; the inputs carry the
    leaves' lanes (``in_lanes``), the output P."""
    cfg = MergerConfig(ways=4, lanes=4, key_width=7, value_width=9)
    beat = lambda p: {"entries.key": f"u7 x{p}", "entries.value": f"s9 x{p}",
                      "count": u(p.bit_length()), "last": "u1"}
    assert ports("merger", cfg) == {**{f"i{w}": beat(cfg.in_lanes) for w in range(4)},
                                    "o": beat(4)}


def test_spgemm_layouts():
    """Work beats: lanes of (row, col, b), A's value, count, last, merged; out: entries
    keyed (row, col), the merger's framing."""
    cfg = SpgemmConfig(ways=2, lanes=2, row_width=3, col_width=4, a_width=5, b_width=6,
                       value_width=12)
    p = cfg.in_lanes
    work = {"entries.row": f"u3 x{p}", "entries.col": f"u4 x{p}", "entries.b": f"s12 x{p}",
            "a": "s5", "count": u(p.bit_length()), "last": "u1", "merged": "u1"}
    assert ports("spgemm", cfg) == {"i0": work, "i1": work, "o": {
        "entries.key": "u7 x2", "entries.value": "s12 x2", "count": "u2", "last": "u1"}}


def test_mapping_layouts():
    """cmd: op (2 bits), n, 24-bit query count, k, m (0..capacity), radius2 (one bit
    over a squared distance), kernel3, stride2; p: P points; q: a point; o: P lanes of
    (5-bit offset, index, value: a distance, index or packed coordinate), count, last."""
    cfg = MappingConfig(lanes=4, coord_width=6, capacity=100)
    dist = (3 * 63 * 63).bit_length()
    point = {"x": "u6", "y": "u6", "z": "u6"}
    assert ports("mapping", cfg) == {
        "cmd": {"op": "u2", "n": "u7", "queries": "u24", "k": "u7", "m": "u7",
                "radius2": u(dist + 1), "kernel3": "u1", "stride2": "u1"},
        "p": {f"points.{f}": "u6 x4" for f in "xyz"},
        "q": point,
        "o": {"lanes.offset": "u5 x4", "lanes.index": "u7 x4",
              "lanes.value": f"u{max(dist, 7, 18)} x4", "count": "u3", "last": "u1"}}
    narrow = MappingConfig(lanes=1, coord_width=2, capacity=200)  # an index is the widest value
    assert ports("mapping", narrow)["o"]["lanes.value"] == "u8 x1"
