"""Checks on user-supplied arrays: one-line errors naming the field and what is allowed."""
from __future__ import annotations

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
