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


def select(row: np.ndarray, k: int, smallest: bool = False) -> np.ndarray:
    """Ascending indices of the k largest (``smallest``: k smallest) values of ``row``
    (ties: lower index first)."""
    row = np.asarray(row)
    if k >= row.size:
        return np.arange(row.size)
    values = row.astype(np.int64)
    order = np.lexsort((np.arange(row.size), values if smallest else -values))
    return np.sort(order[:k])


def select_rows(scores: np.ndarray, k: np.ndarray | int,
                smallest: bool = False) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per row: the selected indices and their values (row lengths may differ with k)."""
    ks = np.broadcast_to(np.asarray(k), (len(scores),))
    indices = [select(row, int(kk), smallest) for row, kk in zip(scores, ks)]
    return indices, [np.asarray(row)[idx] for row, idx in zip(scores, indices)]


def bound_cycles(n: int, lanes: int) -> int:
    """Physical limit of any engine with P lanes: every element passes a lane once."""
    return math.ceil(n / lanes)


def partition(cand: np.ndarray, pivot: int, rank: int) -> tuple[np.ndarray | None, int]:
    """One quick-select step: the side holding the rank-th largest (None when it is the
    pivot itself) and the rank within it."""
    greater, equal = cand[cand > pivot], int(np.count_nonzero(cand == pivot))
    if rank <= greater.size:
        return greater, rank
    if rank <= greater.size + equal:
        return None, rank
    return cand[cand < pivot], rank - greater.size - equal


def spatten_model_cycles(row: np.ndarray, k: int, lanes: int, rng: np.random.Generator) -> int:
    """SpAtten's quick-select latency for finding the k-th largest of ``row``."""
    cand = np.asarray(row, dtype=np.int64)
    rank = min(k, cand.size)  # 1-based rank from the top
    cycles = 0
    while cand is not None and cand.size:
        cycles += math.ceil(cand.size / lanes) + 3
        cand, rank = partition(cand, cand[rng.integers(cand.size)], rank)
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
        cand, rank = partition(cand, pivot, rank)
        if cand is None:
            break
        rounds.append(cand.size)
        pivot = cand[lfsr.lane(min(lanes, cand.size), lanes)]
    return rounds



def digit_ends(width: int) -> list[int]:
    """Key bits resolved after each radix level of the fast engine (from the top):
    the first min(6, G) bits of the G-bit float key, then 6 more per level."""
    g = width.bit_length() + width - 1
    ends = [min(RADIX_BITS, g)]
    while ends[-1] < g:
        ends.append(min(ends[-1] + RADIX_BITS, g))
    return ends


RADIX_BITS = 6


def threshold_bin(counts: np.ndarray, need: int) -> tuple[int, int, int]:
    """(bin, count above it, count in it) of the highest bin whose suffix count
    reaches ``need``; bin 0 when the total falls short."""
    suffix = np.concatenate([np.cumsum(counts[::-1])[::-1], [0]])
    hits = np.nonzero(suffix[:-1] >= need)[0]
    b = int(hits[-1]) if hits.size else 0
    return b, int(suffix[b + 1]), int(counts[b])


def fast_latencies(lanes: int) -> tuple[int, int]:
    """Fast-engine cycles with P lanes: from a row's final beat to its job at the head of
    stage 1's queue (7, the histogram's 2 + one per fourfold of lanes beyond 4, the
    compactor's 3 + 2 per two of its ceil(log2 P) layers), and a refinement pass's
    beyond one per survivor row (1, the histogram's, the threshold search's 3; the
    last pass takes 2 more: each next pass starts 2 cycles before the answer, and the
    job is offered in the cycle after the last answer)."""
    tree, width = 0, lanes
    while width > 4:
        tree, width = tree + 1, math.ceil(width / 4)
    layers = max(1, (lanes - 1).bit_length())
    return 7 + tree + 2 + 3 + 2 * math.ceil(layers / 2), 1 + tree + 2 + 3


def fast_row_plan(row: np.ndarray, k: int, lanes: int, width: int, signed: bool,
                  smallest: bool = False) -> dict:
    """What the fast engine does with one row (streamed without stalls): which elements
    survive the running filter, how many refinement passes run, and the survivor-store
    row that holds the last selected element. ``smallest``: the engine's keys are the
    float keys complemented."""
    gbits = width.bit_length() + width - 1
    g = float_keys(order_keys(row, width, signed), width)
    if smallest:
        g = (1 << gbits) - 1 - g
    ends = digit_ends(width)
    bins = g >> (gbits - ends[0])
    n = row.size
    beats = math.ceil(n / lanes)
    survive = np.zeros(n, bool)
    counts = np.zeros(1 << RADIX_BITS, np.int64)
    history = [counts.copy()]                       # counts before beat j
    for j in range(beats):
        lane = slice(j * lanes, min(n, (j + 1) * lanes))
        bound = threshold_bin(history[j], k)[0] if j else 0   # of the beats before
        survive[lane] = bins[lane] >= bound
        counts = counts + np.bincount(bins[lane], minlength=counts.size)
        history.append(counts.copy())
    k_eff = min(k, n)
    b, above, inside = threshold_bin(counts, k_eff)
    theta, need, level = b << (gbits - ends[0]), k_eff - above, 0
    passes = 0
    sg = g[survive]
    while not (inside == need or level == len(ends) - 1):
        mask = ((1 << ends[level]) - 1) << (gbits - ends[level])
        match = sg[(sg & mask) == theta]
        shift = gbits - ends[level + 1]
        digits = (match >> shift) & ((1 << (ends[level + 1] - ends[level])) - 1)
        b, above, inside = threshold_bin(np.bincount(digits, minlength=1 << RADIX_BITS), need)
        theta |= b << shift
        need -= above
        level += 1
        passes += 1
    chosen = np.zeros(n, bool)
    chosen[select(row, k, smallest)] = True
    order = np.nonzero(chosen[survive])[0]           # selected, as survivor positions
    return {"survivors": int(survive.sum()), "passes": passes,
            "dropped_selected": int(np.count_nonzero(chosen & ~survive)),
            "final_row": int(order[-1]) // lanes, "final_count": _final_count(order, lanes)}


def _final_count(positions: np.ndarray, lanes: int) -> int:
    """Selected elements in the store row of the last one."""
    return int(np.count_nonzero(positions // lanes == positions[-1] // lanes))


def _network_stages(lanes: int) -> int:
    """Registers of one log-depth lane network of the engines (a prefix count, a
    zero-eliminator's shifts, a rotator): one every two of its ceil(log2 P) layers."""
    return max(1, math.ceil((lanes - 1).bit_length() / 2))


def replay_lag(lanes: int) -> int:
    """Cycles from the replay addressing a store row to its kept items landing in the
    output queue: the read, the read data registered, classify, keep, and four
    log-depth networks (prefix count; the queue's zero-eliminator prefix count and
    shift levels; its rotator), plus the queue's pointer stage."""
    return 5 + 4 * _network_stages(lanes)


def _two_slots(k_eff: int, final_count: int, lanes: int) -> int:
    """1 when the replay's final push completes two output beats at once (the second
    leaves a cycle later)."""
    before = (k_eff - final_count) % lanes
    return int(before + final_count > lanes and k_eff % lanes != 0)


def engine_cycles(engine: str, scores: np.ndarray, ks, lanes: int, width: int,
                  signed: bool, smallest: bool = False, regions: int = 4) -> dict:
    """Cycle model of an engine on rows streamed back to back, output always ready:
    ``total`` (first input beat to last output beat) and per-row ``latency``
    (the row's first input beat to its last output beat), both inclusive. ``regions``:
    the fast engine's survivor-store regions, rows in flight (four: stage 1, stage 2
    and two in the replay)."""
    scores = np.asarray(scores, dtype=np.int64)
    r, n = scores.shape if scores.ndim == 2 else (0, 0)
    ks = np.broadcast_to(np.asarray(ks), (r,))
    beats = math.ceil(n / lanes) if n else 0
    starts, ends = [], []
    if engine == "quickselect":
        lfsr, t = Lfsr(), 0
        for row, k in zip(scores, ks):
            keys = order_keys(row, width, signed)
            keys = (1 << width) - 1 - keys if smallest else keys
            drain = 4 + 3 * _network_stages(lanes)  # pivot, classify, the stores' writers
            decide = t + beats + 2 + drain  # (the input and view registers)
            for size in quickselect_rounds(keys, int(k), lanes, lfsr):
                decide += math.ceil(size / lanes) + 2 + drain
            sel = select(row, int(k), smallest)
            final_push = decide + 2 + replay_lag(lanes) + int(sel[-1]) // lanes
            starts.append(t)
            ends.append(final_push + 1 + _two_slots(sel.size, _final_count(sel, lanes), lanes))
            t = final_push + 2
    elif engine == "fast":
        s1_free = s2_idle = issue_free = 0
        region_free, hands, landed, stalls = [0] * regions, [], [], set()
        to_job, pass_extra = fast_latencies(lanes)
        to_keep, lag = 3 + _network_stages(lanes), replay_lag(lanes)

        def advanced(t: int, steps: int) -> int:
            """The replay pipeline's cycle ``steps`` advancing cycles after cycle ``t``
            (an advancing cycle itself): it holds in the ``stalls`` cycles."""
            while steps or t in stalls:
                steps -= t not in stalls
                t += 1
            return t

        for i, (row, k) in enumerate(zip(scores, ks)):
            plan = fast_row_plan(row, int(k), lanes, width, signed, smallest)
            # a row starts once its region is free and the job two rows back is taken
            a = max(s1_free, region_free[i % regions], hands[i - 2] + 1 if i >= 2 else 0)
            s1_free = a + beats
            hand = max(a + beats - 1 + to_job, s2_idle)
            hands.append(hand)
            rows = math.ceil(plan["survivors"] / lanes)
            passes = plan["passes"] * (rows + pass_extra) + 2 * (plan["passes"] > 0)
            # the replay takes the job into a slot freed by the job two back
            start = max(hand + 1 + passes, landed[i - 2] + 1 if i >= 2 else 0)
            s2_idle = start  # stage 2 takes the next job as this one leaves
            # one advancing cycle fetches the job, after it is taken and the previous
            # job's rows end (its last row addressed, or the cycle after its final row
            # was kept); its rows are addressed from the next
            fetch = advanced(max(start + 1, issue_free), 0)
            final_addr = advanced(fetch, 1 + plan["final_row"])
            kept = advanced(final_addr, to_keep)
            last_addr = advanced(fetch, rows)
            issue_free = last_addr + 1 if last_addr <= kept else kept + 2
            final_push = advanced(final_addr, lag)
            landed.append(final_push)
            two = _two_slots(min(int(k), n), plan["final_count"], lanes)
            if two:
                stalls.add(final_push + 1)
            region_free[i % regions] = final_push + 2  # (stage 1 sees it a cycle late)
            starts.append(a)
            ends.append(final_push + 1 + two)
    else:
        raise ValueError(f"engine: {engine!r} is unknown; allowed: quickselect | fast")
    latency = np.array(ends, np.int64) - np.array(starts, np.int64) + 1
    total = ends[-1] - starts[0] + 1 if r else 0
    return {"total": int(total), "latency": latency}


def quickselect_rounds_mean(n: int, k: int, lanes: int = 16, trials: int = 200,
                            seed: int = 1) -> float:
    """Mean over random rows of the quickselect engine's rounds alone, in SpAtten's
    accounting (every round, the ingest included, ceil(n_r / P) + 3; no replay), with
    the engine's own pivot rule: comparable with :func:`spatten_model_mean`."""
    rng, lfsr, total = np.random.default_rng(seed), Lfsr(), 0
    for _ in range(trials):
        sizes = [n] + quickselect_rounds(rng.integers(0, 1 << 16, n), k, lanes, lfsr)
        total += sum(math.ceil(size / lanes) + 3 for size in sizes)
    return total / trials
