"""Stream payload packing (derived from the Amaranth layout) and valid/ready patterns.

A payload is packed from a dict of NumPy arrays, one per layout field, with one leading
axis for the beats (array fields add their element axis). Offsets and signedness come
from the same ``data.Layout`` object the hardware uses, so they are never written twice.
"""
from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Iterator

import numpy as np
from amaranth import Shape
from amaranth.lib import data

#: Patterns are materialized to this many cycles and then repeat.
PATTERN_CYCLES = 4096


def leaves(layout, path=()) -> list[tuple[tuple, int, Shape]]:
    """Every scalar field of ``layout`` as (path, bit offset, shape)."""
    if isinstance(layout, data.ArrayLayout):
        step = Shape.cast(layout.elem_shape).width
        inner = leaves(layout.elem_shape, ()) if isinstance(layout.elem_shape, data.Layout) \
            else [((), 0, Shape.cast(layout.elem_shape))]
        return [(path + (i,) + p, i * step + off, shape)
                for i in range(layout.length) for p, off, shape in inner]
    if isinstance(layout, data.StructLayout):
        out = []
        for name, fld in layout:
            if isinstance(fld.shape, data.Layout):
                out += [(p, fld.offset + off, s) for p, off, s in leaves(fld.shape, path + (name,))]
            else:
                out.append((path + (name,), fld.offset, Shape.cast(fld.shape)))
        return out
    raise TypeError(f"unsupported layout {layout!r}")


def _split(path: tuple) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """A leaf path as (field names, element indices): ("pairs", 3, "index") names the
    array ``fields["pairs"]["index"]`` at element 3."""
    return (tuple(p for p in path if isinstance(p, str)),
            tuple(p for p in path if not isinstance(p, str)))


def _column(fields: dict, path: tuple) -> np.ndarray:
    """The per-beat values of one leaf (beats on axis 0)."""
    names, index = _split(path)
    value = fields
    for name in names:
        value = value[name]
    return np.asarray(value)[(slice(None),) + index] if index else np.asarray(value)


def pack(layout, fields: dict[str, np.ndarray]) -> list[int]:
    """Pack per-field arrays (beats on axis 0) into one integer per beat."""
    words = None
    for path, offset, shape in leaves(layout):
        # 63- and 64-bit fields stay Python integers (an unsigned 64-bit key exceeds int64)
        column = _column(fields, path).astype(object if shape.width > 62 else np.int64)
        lo, hi = (-(1 << shape.width - 1), (1 << shape.width - 1) - 1) if shape.signed \
            else (0, (1 << shape.width) - 1)
        if column.size and (column.min() < lo or column.max() > hi):
            raise ValueError(f"field {'.'.join(map(str, path))}: values outside {lo}..{hi}")
        bits = (column.astype(object) & ((1 << shape.width) - 1)) << offset
        words = bits if words is None else words | bits
    return [int(w) for w in words]


def unpack(layout, words: list[int]) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack`: per-field int64 arrays with beats on axis 0 (fields of
    structs inside arrays come back as nested dicts of arrays)."""
    raw = np.array(words, dtype=object)
    parts: dict[tuple, dict[tuple, np.ndarray]] = {}
    for path, offset, shape in leaves(layout):
        col = (raw >> offset) & ((1 << shape.width) - 1)
        if shape.signed:
            col = np.where(col >= (1 << shape.width - 1), col - (1 << shape.width), col)
        names, index = _split(path)
        wide = shape.width == 64 and not shape.signed
        parts.setdefault(names, {})[index] = col.astype(np.uint64 if wide else np.int64)
    out: dict = {}
    for names, cols in parts.items():
        if () in cols:
            arr = cols[()]
        else:
            dims = tuple(int(d) + 1 for d in np.max(np.array(list(cols)), axis=0))
            arr = np.zeros((len(words),) + dims, dtype=next(iter(cols.values())).dtype)
            for index, col in cols.items():
                arr[(slice(None),) + index] = col
        node = out
        for name in names[:-1]:
            node = node.setdefault(name, {})
        node[names[-1]] = arr
    return out


def always() -> Iterator[bool]:
    """Valid or ready held high: no stalls."""
    return itertools.repeat(True)


def random_pattern(p_high: float, seed: int) -> Iterator[bool]:
    """High with probability ``p_high`` each cycle, reproducible from ``seed``."""
    rng = random.Random(seed)
    while True:
        yield rng.random() < p_high


def fixed(bits: Iterable[int]) -> Iterator[bool]:
    """A fixed sequence repeated forever, e.g. ``fixed([1, 1, 0])``."""
    return itertools.cycle(bool(b) for b in list(bits))


def materialize(pattern: Iterable[bool]) -> list[bool]:
    """The first PATTERN_CYCLES values of a pattern; players repeat them. A pattern
    that is never high would hang the stream, so it is rejected."""
    bits = [bool(b) for b in itertools.islice(iter(pattern), PATTERN_CYCLES)]
    if len(bits) < PATTERN_CYCLES:
        bits = list(itertools.islice(itertools.cycle(bits or [True]), PATTERN_CYCLES))
    if not any(bits):
        raise ValueError("a valid/ready pattern must be high at least once")
    return bits
