"""Golden model of SpAtten's top-k selection, and SpAtten's published latency model.

Golden rule (papers.md §1, binding): the indices of the k largest values of a row, ties
broken toward the lower index, returned in ascending index order (input order); k >= n
returns the whole row.

Latency model (SpAtten ``sim/TopKLatencyModel.scala``): quick-select rounds, each
streaming the current candidates through P lanes in ceil(n_r / P) + 3 cycles; the
pivot is a uniformly random candidate; the search recurses into the side holding the
k-th element and stops when the pivot is it. This is the paper's model (no replay pass);
the RTL engines get their own cycle models beside their hardware.
"""
from __future__ import annotations

import math

import numpy as np


def select(row: np.ndarray, k: int) -> np.ndarray:
    """Ascending indices of the k largest values of ``row`` (ties: lower index first)."""
    row = np.asarray(row)
    if k >= row.size:
        return np.arange(row.size)
    order = np.lexsort((np.arange(row.size), -row.astype(np.int64)))  # value desc, index asc
    return np.sort(order[:k])


def select_rows(scores: np.ndarray, k: np.ndarray | int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per row: the selected indices and their values (row lengths may differ with k)."""
    ks = np.broadcast_to(np.asarray(k), (len(scores),))
    indices = [select(row, int(kk)) for row, kk in zip(scores, ks)]
    return indices, [np.asarray(row)[idx] for row, idx in zip(scores, indices)]


def bound_cycles(n: int, lanes: int) -> int:
    """Physical limit of any engine with P lanes: every element passes a lane once."""
    return math.ceil(n / lanes)


def spatten_model_cycles(row: np.ndarray, k: int, lanes: int, rng: np.random.Generator) -> int:
    """SpAtten's quick-select latency for finding the k-th largest of ``row``."""
    cand = np.asarray(row, dtype=np.int64)
    rank = min(k, cand.size)  # 1-based rank from the top
    cycles = 0
    while cand.size:
        cycles += math.ceil(cand.size / lanes) + 3
        pivot = cand[rng.integers(cand.size)]
        greater, equal = cand[cand > pivot], int(np.count_nonzero(cand == pivot))
        if rank <= greater.size:
            cand = greater
        elif rank <= greater.size + equal:
            break
        else:
            rank -= greater.size + equal
            cand = cand[cand < pivot]
    return cycles


def spatten_model_mean(n: int, k: int, lanes: int = 16, trials: int = 100,
                       seed: int = 1) -> float:
    """Mean of the model over random rows, as the paper's TopKLatencyModel reports it."""
    rng = np.random.default_rng(seed)
    return float(np.mean([spatten_model_cycles(rng.integers(-2**31, 2**31, n), k, lanes, rng)
                          for _ in range(trials)]))


# ---------------------------------------------------------------------------- sort keys
def order_keys(row: np.ndarray, width: int, signed: bool) -> np.ndarray:
    """Scores as unsigned numbers of the same order (two's complement: offset by 2^(w-1))."""
    row = np.asarray(row, dtype=np.int64)
    return row + (1 << (width - 1)) if signed else row


def float_keys(u: np.ndarray, width: int) -> np.ndarray:
    """Order-preserving bijection u -> (bit length of u, bits below its leading one,
    left-aligned to width-1 bits), as one integer."""
    u = np.asarray(u, dtype=np.int64)
    length = np.zeros_like(u)
    for b in range(width):
        length[(u >> b) & 1 == 1] = b + 1
    mant = ((u << (width - length)) & ((1 << (width - 1)) - 1)) if width > 1 else np.zeros_like(u)
    return (length << (width - 1)) | mant


# ------------------------------------------------------------- engine cycle models
LFSR_TAPS = 0xB400


class Lfsr:
    """The 16-bit Galois LFSR the quickselect engine draws pivot lanes from."""

    def __init__(self) -> None:
        self.state = 1

    def lane(self, count: int, lanes: int) -> int:
        bits = max(1, (lanes - 1).bit_length())
        lane = ((self.state & ((1 << bits) - 1)) * count) >> bits
        self.state = (self.state >> 1) ^ (LFSR_TAPS if self.state & 1 else 0)
        return lane


def quickselect_rounds(keys: np.ndarray, k: int, lanes: int, lfsr: Lfsr) -> list[int]:
    """Candidate counts of the rounds after the ingest, with the engine's pivot rule:
    candidates stay in input order (zero-elimination keeps order), the pivot is lane
    ``lfsr.lane`` of their first P (of the row's first beat for the ingest)."""
    cand = np.asarray(keys, dtype=np.int64)
    rank = min(k, cand.size)
    pivot = cand[lfsr.lane(min(lanes, cand.size), lanes)] if cand.size else 0
    rounds = []
    while rank:
        greater, equal = cand[cand > pivot], int(np.count_nonzero(cand == pivot))
        if rank <= greater.size:
            cand = greater
        elif rank <= greater.size + equal:
            break
        else:
            rank -= greater.size + equal
            cand = cand[cand < pivot]
        rounds.append(cand.size)
        pivot = cand[lfsr.lane(min(lanes, cand.size), lanes)]
    return rounds


def engine_cycles(engine, scores, ks, lanes, width, signed) -> dict:
    """Placeholder until calibrated."""
    return {"total": 0, "latency": np.zeros(len(scores))}
