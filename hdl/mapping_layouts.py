"""Stream payloads of the ``mapping`` block (PointAcc's mapping unit), defined once: the
testbench packs and unpacks them from these layouts.

A job is one command beat on ``cmd``, then ``n`` points on ``p`` (P a beat, the final
beat partial), then, for kNN and ball query, ``queries`` query beats on ``q`` (one query
each). Results leave on ``o`` in frames of up to P lanes a beat, every beat full but a
frame's final one, which carries ``last`` (an empty frame is one beat of count 0):

- kernel_map: stride 2 first sends the output coordinates (one frame: ``index`` = output
  index, ``value`` = x << 2w | y << w | z); then one frame of maps (``offset``,
  ``index`` = input index, ``value`` = output index), by offset, then output index.
- knn: a frame per query of k lanes (``index``, ``value`` = squared distance), nearest
  first; ball_query: a frame per query of k lanes (``index``); fps: one frame of m
  lanes (``index``). Fields an operation does not use are 0.
"""
from __future__ import annotations

from amaranth import unsigned
from amaranth.lib import data, enum

from accelgen.params.mapping import OPS, MappingConfig

#: Bits of the command's query count.
QUERY_COUNT_WIDTH = 24
#: Bits of a kernel offset index (0 .. 26).
OFFSET_WIDTH = 5


class Op(enum.Enum, shape=2):
    """The operation of a job (its code on ``cmd.op``)."""
    KERNEL_MAP = 0
    KNN = 1
    BALL_QUERY = 2
    FPS = 3


assert [op.name.lower() for op in Op] == list(OPS)


def coord_layout(cfg: MappingConfig) -> data.StructLayout:
    w = cfg.coord_width
    return data.StructLayout({"x": unsigned(w), "y": unsigned(w), "z": unsigned(w)})


def command_layout(cfg: MappingConfig) -> data.StructLayout:
    """A job: the operation, the point count n, the query count, k (kNN, ball query),
    m (FPS), radius2 (ball query: d2 < radius2 hits), the kernel (size 3 when
    ``kernel3``, else 2) and ``stride2`` (stride 2, else 1)."""
    return data.StructLayout({
        "op": Op,
        "n": unsigned(cfg.count_width),
        "queries": unsigned(QUERY_COUNT_WIDTH),
        "k": unsigned(cfg.count_width),
        "m": unsigned(cfg.count_width),
        "radius2": unsigned(cfg.dist_width + 1),
        "kernel3": unsigned(1),
        "stride2": unsigned(1),
    })


def points_layout(cfg: MappingConfig) -> data.StructLayout:
    """P points; the job's final beat holds n mod P (or P) of them in its low lanes."""
    return data.StructLayout({"points": data.ArrayLayout(coord_layout(cfg), cfg.lanes)})


def value_width(cfg: MappingConfig) -> int:
    """Bits of a result lane's value: a squared distance, an index or a packed coordinate."""
    return max(cfg.dist_width, cfg.index_width, 3 * cfg.coord_width)


def result_layout(cfg: MappingConfig) -> data.StructLayout:
    return data.StructLayout({"offset": unsigned(OFFSET_WIDTH),
                              "index": unsigned(cfg.index_width),
                              "value": unsigned(value_width(cfg))})


def output_layout(cfg: MappingConfig) -> data.StructLayout:
    return data.StructLayout({
        "lanes": data.ArrayLayout(result_layout(cfg), cfg.lanes),
        "count": unsigned(cfg.lanes.bit_length()),
        "last": unsigned(1),
    })


def sort_key_width(cfg: MappingConfig) -> int:
    """Bits of a stored sort key: a coordinate key (x most significant) or a kNN
    candidate's (squared distance, index)."""
    return max(3 * cfg.coord_width, cfg.dist_width + cfg.index_width)


def entry_layout(cfg: MappingConfig) -> data.StructLayout:
    """An entry of the sort buffers: its key and a point index."""
    return data.StructLayout({"key": unsigned(sort_key_width(cfg)),
                              "value": unsigned(cfg.index_width)})


def merge_key_width(cfg: MappingConfig) -> int:
    """Bits of a key on the merge node: a sort key or a kernel-map key (three fields of
    ``field_width``), and below it the side bit (0: outputs, 1: inputs)."""
    return max(sort_key_width(cfg), 3 * cfg.field_width) + 1
