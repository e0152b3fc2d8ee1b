"""The spgemm RTL against SciPy, on real sparse matrices and corner cases, on every
simulator, under random valid/ready stalls. The reference is computed here from SciPy
alone: C's pattern is the structural product of the stored entries of A and B (stored
zeros count, entries that cancel to 0 stay), its values are those of A @ B."""
import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from accelgen.params.spgemm import SpgemmConfig
from accelgen.registry import get
from accelgen.run import run_block
from accelgen.workloads import matrices
from accelgen.sim.streams import random_pattern

BLOCK = get("spgemm")
STALLS = {
    "none": lambda: (None, None),
    "random": lambda: (random_pattern(0.6, seed=31), random_pattern(0.5, seed=32)),
}
# The one build of this file: 4 ways, so a row of A with more than 4 stored entries
# makes more partial matrices than ways (merge rounds); 8-bit operands, 32-bit sums.
CFG = SpgemmConfig(ways=4, lanes=2, row_width=8, col_width=8)
SETS = ["--set", "ways=4", "--set", "lanes=2", "--set", "row_width=8", "--set", "col_width=8"]


def csr(dense_or_triples, shape=None):
    """int64 CSR in canonical form; ``(rows, cols, values)`` keeps stored zeros."""
    if shape is None:
        m = sp.csr_matrix(np.asarray(dense_or_triples, dtype=np.int64))
    else:
        r, c, v = dense_or_triples
        m = sp.csr_matrix((np.asarray(v, np.int64), (r, c)), shape=shape)
    m.sum_duplicates()
    m.sort_indices()
    return m


def reference(a, b):
    """C in CSR from SciPy: the pattern of (ones at A's stored entries) @ (ones at B's),
    and A @ B (computed densely) at those positions, rows then ascending columns."""
    ones_a = sp.csr_matrix((np.ones(a.nnz), a.indices, a.indptr), shape=a.shape)
    ones_b = sp.csr_matrix((np.ones(b.nnz), b.indices, b.indptr), shape=b.shape)
    pattern = (ones_a @ ones_b).tocoo()
    keep = pattern.data > 0  # counts of paths: positive wherever a product exists
    rows, cols = pattern.row[keep], pattern.col[keep]
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    product = a.toarray() @ b.toarray()
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=a.shape[0]))])
    return {"c_indptr": indptr, "c_indices": cols, "c_data": product[rows, cols],
            "c_shape": [a.shape[0], b.shape[1]]}


def check(outputs, ref):
    for key in ("c_indptr", "c_indices", "c_data", "c_shape"):
        assert np.asarray(outputs[key]).tolist() == np.asarray(ref[key]).tolist(), key


def run(a, b, sim, stalls="random"):
    """A @ B on the RTL, every output array compared with SciPy, the stream rules and
    the framing checked; returns the report."""
    valid, ready = STALLS[stalls]()
    outputs, report = run_block(BLOCK, CFG, {"a": a, "b": b}, sim, valid=valid, ready=ready)
    check(outputs, reference(a, b))
    assert report["match"] and report["stream_violations"] == 0 and not report["timed_out"]
    assert report["error_flags"] == 0
    # one partial matrix per condensed column of A: as many as A's longest row
    assert report["partial_matrices"] == int(np.diff(a.indptr).max(initial=0))
    return report


def _slice(name, n):
    return matrices.load(name)[:n, :n].tocsr()


@pytest.mark.parametrize("name, n, rounds", [("minnesota", 64, 1), ("airfoil", 48, 3)])
def test_real_matrix_squared(hdl_sim, name, n, rounds):
    """Leading n x n block of a real matrix times itself; airfoil's rows hold up to 8
    entries: 8 partial matrices through 4 ways take merge rounds."""
    a = _slice(name, n)
    assert a.nnz > 2 * n  # a real slice, not an almost empty one
    report = run(a, a, hdl_sim)
    assert report["rounds"] == rounds


def test_rectangular_real_slices_empty_rows_and_columns(hdl_sim):
    """A = unit_cube rows 0..39, columns 0..29 with row 5 and column 7 emptied, times
    B = unit_cube rows 0..29, columns 0..47 with rows 3 and 11 emptied: C has an empty
    row, and the products through B's empty rows vanish."""
    u = matrices.load("unit_cube")
    a = u[:40, :30].toarray()
    a[5, :] = 0
    a[:, 7] = 0
    b = u[:30, :48].toarray()
    b[[3, 11], :] = 0
    a, b = csr(a), csr(b)
    assert np.diff(a.indptr)[5] == 0 and 7 not in a.indices
    assert np.diff(b.indptr)[[3, 11]].tolist() == [0, 0]
    report = run(a, b, hdl_sim)
    assert report["rounds"] > 1


def test_small_case_with_rounds(any_sim):
    """4 x 6 by 6 x 3 on every simulator: a 6-entry row of A (6 partial matrices through
    4 ways: two rounds, the second merging a round's result), an empty row of A, an
    empty row of B, a stored zero in A, and a sum that cancels to 0 at (0, 1)."""
    a = csr(([0, 0, 0, 0, 0, 0, 1, 3, 3], [0, 1, 2, 3, 4, 5, 2, 0, 5],
             [1, 2, 3, 4, 5, 6, 0, -8, 7]), (4, 6))
    b = csr(([0, 0, 2, 2, 3, 4, 5, 5], [0, 1, 1, 2, 0, 1, 1, 2], [3, -2, 2, 5, -7, -2, 1, 1]),
            (6, 3))
    assert np.diff(a.indptr).tolist() == [6, 1, 0, 2] and np.diff(b.indptr)[1] == 0
    assert (a @ b).toarray()[0, 1] == 0  # -2 + 3*2 + 5*(-2) + 6*1
    assert run(a, b, any_sim)["rounds"] == 2


CORNERS = {
    # no stored entries in A: C has none either
    "a-empty": lambda: (csr(np.zeros((5, 4))), csr(np.arange(12).reshape(4, 3) - 5)),
    # nor in B
    "b-empty": lambda: (csr(np.arange(12).reshape(3, 4) - 5), csr(np.zeros((4, 6)))),
    "1x1": lambda: (csr([[-7]]), csr([[9]])),
    # a stored zero of A: C has one entry, of value 0
    "1x1-stored-zero": lambda: (csr(([0], [0], [0]), (1, 1)), csr([[5]])),
    # -128 * -128 summed 6 times = 98304: beyond 16 bits, inside value_width = 32
    "extremes": lambda: (csr(np.array([[-128] * 6, [127] * 6, [-128, 127] * 3])),
                         csr(np.array([[-128, 127, -128]] * 6))),
    # row 0 . col 0 = 3*2 + (-2)*3 = 0 and row 1 . col 1 = 4*1 + 4*(-1) = 0: kept as 0;
    # a stored zero of A (row 2) and of B (row 3) give structural entries of value 0
    "cancellation": lambda: (
        csr(([0, 0, 1, 1, 2, 2], [0, 1, 0, 1, 2, 3], [3, -2, 4, 4, 0, 5]), (3, 4)),
        csr(([0, 0, 1, 1, 2, 3], [0, 1, 0, 1, 2, 0], [2, 1, 3, -1, 6, 0]), (4, 3))),
    # full 256 x 256 index range of row_width = col_width = 8: the last row and column
    "index-range": lambda: (csr(([0, 255, 255], [255, 0, 255], [1, 2, -3]), (256, 256)),
                            csr(([0, 255, 255], [255, 0, 255], [4, 5, 6]), (256, 256))),
}


@pytest.mark.parametrize("case", list(CORNERS))
def test_corner_cases(hdl_sim, case):
    """Random stalls, except the 1 x 1 product: valid and ready always high."""
    a, b = CORNERS[case]()
    run(a, b, hdl_sim, "none" if case == "1x1" else "random")


def test_cancelled_entries_are_present():
    """The reference itself, against C worked out by hand: rows 0 and 1 are 3*B0 - 2*B1
    = (0, 5) and 4*B0 + 4*B1 = (20, 0); row 2 is 0*B2 + 5*B3 with B3 a stored zero."""
    a, b = CORNERS["cancellation"]()
    ref = reference(a, b)
    rows = np.repeat(np.arange(3), np.diff(ref["c_indptr"]))
    got = dict(zip(zip(rows.tolist(), ref["c_indices"].tolist()), ref["c_data"].tolist()))
    assert got == {(0, 0): 0, (0, 1): 5, (1, 0): 20, (1, 1): 0, (2, 0): 0, (2, 2): 0}
    assert ref["c_indptr"].tolist() == [0, 2, 4, 6]


def test_cli_run_on_a_real_slice(tmp_path):
    """`accelgen run spgemm` on minnesota rows/columns 0..63 squared, from CSR arrays in
    an npz: the written c_* arrays equal SciPy's."""
    from conftest import require_sim
    require_sim("verilator")
    a = _slice("minnesota", 64)
    arrays = {}
    for side in ("a", "b"):
        arrays.update({f"{side}_data": a.data, f"{side}_indices": a.indices,
                       f"{side}_indptr": a.indptr, f"{side}_shape": np.array(a.shape)})
    np.savez(tmp_path / "in.npz", **arrays)
    proc = subprocess.run([sys.executable, "-m", "accelgen", "run", "spgemm", *SETS,
                           "--sim", "verilator", "--input", str(tmp_path / "in.npz"),
                           "--output", str(tmp_path / "out.npz"), "--report",
                           str(tmp_path / "r.json")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report == json.loads((tmp_path / "r.json").read_text())
    assert report["match"] is True and report["sim"] == "verilator"
    assert report["params"]["ways"] == 4 and report["stream_violations"] == 0
    check(np.load(tmp_path / "out.npz"), reference(a, a))
