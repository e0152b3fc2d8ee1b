"""Checks on user-supplied arrays: one-line errors naming the field and what is allowed."""
from __future__ import annotations

import math

import numpy as np

from accelgen.params.base import ConfigError


class InputError(ConfigError):
    """A missing, mis-shaped or out-of-range input array (exit code 2)."""


def int_array(arrays, key: str, ndim: int, lo: int, hi: int, what: str) -> np.ndarray:
    """``arrays[key]`` as int64, checked to be an ``ndim``-D integer array in lo..hi,
    non-empty; ``what`` describes the expected array in the message."""
    if key not in arrays:
        raise InputError(f"input {key}: missing; expected {what}")
    value = np.asarray(arrays[key])
    if value.dtype.kind not in "iu":
        raise InputError(f"input {key}: dtype {value.dtype} is not allowed; expected {what}")
    if value.ndim != ndim:
        raise InputError(f"input {key}: shape {list(value.shape)} is not allowed; expected {what}")
    if 0 in value.shape:
        raise InputError(f"input {key}: shape {list(value.shape)} is empty; expected {what}")
    if value.min() < lo or value.max() > hi:
        raise InputError(f"input {key}: values {value.min()}..{value.max()} outside "
                         f"{lo}..{hi}; expected {what}")
    return value.astype(np.int64)


def scalar(arrays, key: str, lo: int, hi: int, allowed: str, real: bool = False) -> int:
    """A scalar (or one-element array) integer in lo..hi; ``real`` also takes a real
    number and rounds it up. ``allowed`` describes the value in the message."""
    if key not in arrays:
        raise InputError(f"input {key}: missing; expected {allowed}")
    value = np.asarray(arrays[key])
    kinds = "iuf" if real else "iu"
    if value.size != 1 or value.ndim > 1 or value.dtype.kind not in kinds or \
            not np.isfinite(value).all():
        raise InputError(f"input {key}: {value.dtype} {list(value.shape)} is not allowed; "
                         f"expected {allowed}")
    number = math.ceil(float(value.reshape(()))) if value.dtype.kind == "f" else \
        int(value.reshape(()))
    if not lo <= number <= hi or value.reshape(()) < lo:
        raise InputError(f"input {key}: {value.reshape(())} is out of range; allowed: {allowed}")
    return number


def int_vector(arrays, key: str, what: str) -> np.ndarray:
    """``arrays[key]`` as a 1-D integer vector (int64, or Python ints for uint64 so no
    value wraps); may be empty. ``what`` describes it in the message."""
    if key not in arrays:
        raise InputError(f"input {key}: missing; expected {what}")
    value = np.asarray(arrays[key])
    if value.ndim != 1 or (value.size and value.dtype.kind not in "iu"):
        raise InputError(f"input {key}: shape {list(value.shape)} dtype {value.dtype} is not "
                         f"allowed; expected {what}")
    return value.astype(np.int64) if value.dtype != np.uint64 else value.astype(object)
