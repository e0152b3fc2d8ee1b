"""``make mutate``: mutation testing of hdl/ with mutmut, survivors classified.

mutmut mutates the hardware description (flipped comparators, changed constants,
dropped terms ...) and runs the fast subset of the tests (the pytest marker
``mutation``, pyproject ``[tool.mutmut]``) against each mutant; its outcomes are read
from mutmut's own result files. Lines whose every mutant is equivalent by construction
carry ``# pragma: no mutate`` and get no mutants: signal declarations whose shape comes
from elsewhere, where only a debug name or the reset flag of a data register could
change. A surviving mutant is either a missing test or an equivalent
mutant; the equivalent classes below are recognised from the mutant's diff, each with
the reason it cannot change what the hardware computes, and single mutants are argued
one by one (:data:`ARGUED`); a few are killed only by a test outside the fast subset
(:data:`KILLED_BY`, checked by hand). Everything else is reported as unexplained and
counts against the score, per block (target 0.90 each):

    score = killed / (mutants - equivalent)     (killed includes KILLED_BY)

``accelgen mutate --report`` classifies the last run's results without running;
``--sample N`` runs N random mutants of each block instead of all of them (hours).
"""
from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
from pathlib import Path

MUTMUT = str(Path(sys.executable).parent / "mutmut")
#: Address space allowed to each process of a run (a mutant that makes a loop or a
#: memory unbounded fails on it instead of filling the machine: it counts as killed).
MEMORY_LIMIT = 6 << 30


def _mutmut(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """``mutmut args``, every process under :data:`MEMORY_LIMIT`, one BLAS thread each."""
    import os
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    return subprocess.run([MUTMUT, *args], preexec_fn=limit, env=env, **kwargs)


def _squash(line: str) -> str:
    """``line`` without whitespace and commas (so dropped arguments compare equal)."""
    return re.sub(r"[\s,]+", "", line)


def _strip(*patterns: str):
    """A normaliser deleting ``patterns`` and the punctuation they leave behind."""
    def normalise(line: str) -> str:
        for pattern in patterns:
            line = re.sub(pattern, "", line)
        return _squash(line)
    return normalise


#: Calls whose string arguments are only labels (debug names).
LABEL_CALLS = re.compile(r"RunReader\(|RowReader\(|ThresholdBin\(|create\(path=")
#: The tail of ``emit_rows(state, values, close_state, next_state)``: the close state's
#: name is a label (no other state names it), the next state's is not.
CLOSE_STATE = re.compile(r'(range\(lanes\)\], )("\w*"|None)')


def _labels(line: str) -> str:
    """``line`` without the labels it passes."""
    if LABEL_CALLS.search(line):
        line = re.sub(r'"\w*"|\bNone\b', "", line)
    line = CLOSE_STATE.sub(r"\1", line)
    return _squash(line)


#: (class, normaliser, why): a survivor belongs to the class when every changed line
#: equals its original once both are normalised.
EQUIVALENT = [
    ("name", _strip(r'name=(f?"[^"]*"|None)', r'f"[\w{}]*"', r", None\b"),
     "only a debug name changes (or goes); names never reach the logic"),
    ("reset", _strip(r"reset_less=\w+", r"data=\w+"),
     "a data register gains a reset (or loses an optional one); every data register is "
     "qualified by valid/close flags that do reset, so its value after reset never matters"),
    ("width", _strip(r"signed\([89]\)", r"max\(rows, [23]\)", r"k_max \+ [12]",
                     r"range\((rows|kw|p) \+ [12]\)", r"Signal\([56]\)",
                     r"range\([23] \* rows \+ 1\)",
                     r"signed\(1[6-8]\)", r"max\(cfg\.acc_width, 1[67]\)",
                     r"p_shape\.width \+ 1[78]", r"signed\(6[45]\)",
                     r"(?<=Const\(0), (1|None)(?=\))"),
     "a register one bit wider than the values it holds (sign-extended operands, a row "
     "counter that never exceeds R-1, a beat counter that saturates at k_max, a row "
     "count or digit shift with room for one more value, a 0..26 kernel offset in 6 "
     "bits, a run-reader setting up to 2 rows held in a 3 rows range, the w4a4 "
     "epilogue's 16-bit scales and operands held in 17 or 18 bits, its products one bit "
     "wider, or its 64-bit sum's addend in 65 bits: the bank keeps the low 64 either way; "
     "Const(0) is one bit wide, as Const(0, 1))"),
    ("label", _labels,
     "only a label changes: the name argument of a reader, threshold unit or stream "
     "path, or the name of a frame-closing state (which no other state names)"),
    ("warning", _strip(r"_MustUse__silence = \w+"),
     "only whether Amaranth warns about a component that was never built"),
    ("case", _strip(r"if .* else m\.Default\(\)"),
     "the last row becomes an explicit case instead of the default branch: same "
     "multiplexer (only Verilator's CASEINCOMPLETE lint would notice)"),
]


#: Single mutants argued one by one: (text of the original line, text of the mutated
#: line, why the hardware computes the same).
ARGUED = [
    ('w_shape = signed(8) if cfg.mode == "w4a8"', "or True",
     "the first weight registers are 8 bits wide in every mode: a narrower weight (w4a4's "
     "int4) is held sign-extended, the same value"),
    ("starts = [Const(1)]", "[Const(2)]",
     "lane 0 always starts a run; the flag is only read as a truth value (Mux selects and "
     "ORs of flags), and 2 is as true as 1"),
    ("self.rows = math.ceil(cfg.capacity / cfg.lanes)", "cfg.capacity * cfg.lanes",
     "the stores get more rows than a row of capacity elements fills; the rows beyond are "
     "never addressed"),
    ("BankedStore(", ', 2, "',
     "a second read port on a store that nobody reads through it"),
    ("return MergerConfig(ways=2, lanes=cfg.lanes,", "MergerConfig(ways=2, key_width",
     "a merge node's width is its lanes argument; the config's lanes is not read by it"),
    ('for f in "xyz"]', 'for f in "XXxyzXX"]',
     "four more offset registers that nothing reads (delta[0..2] are the ones used)"),
    ("or [Const(0, 1)]", "or [Const(0, 2)]", "the popcount of no bits is 0 at either width"),
    ("while (1 << level) < len(items):", "while (1 << level) <= len(items):",
     "the extra level has no operator: no index below n has bit log2(n) set"),
    ('base, end = Signal(width + 1, name=f"{name}_base")', "Signal(width - 1,",
     "a run's rows lie below ``rows``, so the read pointer needs bits(rows) bits: width "
     "+ 1 = bits(2 rows) + 1 leaves two to spare (the pointer past the last pair is "
     "never used)"),
]


#: Mutants killed by a test outside the fast subset (run by hand on the mutant), with
#: the test: they count as killed.
KILLED_BY = [
    ("hi = (1 << (wide.width - 1)) - 1", "hi = (2 <<",
     "tests/test_merger.py::test_sums_beyond_the_carry_width_clamp (2^16-entry runs: "
     "Icarus and Verilator, too long for the Amaranth subset)"),
    ("Mux(closing < -hi - 1, -hi - 1,", "-hi - 1, -hi - 2,",
     "tests/test_merger.py::test_sums_beyond_the_carry_width_clamp (2^16-entry runs: "
     "Icarus and Verilator, too long for the Amaranth subset)"),
]


def _listed(pairs: list[tuple[str, str]], entries) -> str | None:
    """The reason ``entries`` (:data:`ARGUED`, :data:`KILLED_BY`) give for a one-line
    mutant, or None."""
    if len(pairs) == 1:
        for before, after, why in entries:
            if before in pairs[0][0] and after in pairs[0][1]:
                return why
    return None


#: mutmut outcomes that leave a mutant alive: the tests passed (also when slow), or no
#: test reached it. "killed" and "timeout" (the tests did not finish) count as caught.
ALIVE = ("survived", "suspicious", "no tests")


def _statuses() -> dict[str, str]:
    """mutmut's outcome of every mutant of hdl/ ("not checked" when it has not run), from
    its result files (``mutants/hdl/<module>.py.meta``) read with mutmut's own loader and
    exit-code table."""
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code

    statuses = {}
    for meta in sorted((Path("mutants") / "hdl").glob("**/*.py.meta")):
        data = SourceFileMutationData(path=meta.relative_to("mutants").with_suffix(""))
        data.load()
        statuses.update({name: status_by_exit_code[code]
                         for name, code in data.exit_code_by_key.items()})
    return statuses


def _changed_lines(name: str) -> list[tuple[str, str]]:
    """(original, mutated) line pairs of a mutant's diff."""
    diff = _mutmut("show", name, capture_output=True, text=True).stdout
    lines = diff.splitlines()
    old = [x[1:] for x in lines if x.startswith("-") and not x.startswith("---")]
    new = [x[1:] for x in lines if x.startswith("+") and not x.startswith("+++")]
    return list(zip(old, new)) if len(old) == len(new) else []


def classify(name: str) -> tuple[str, str]:
    """(class, reason) of a surviving mutant; ('unexplained', diff) when no rule fits."""
    pairs = _changed_lines(name)
    for cls, normalise, why in EQUIVALENT:
        if pairs and all(normalise(a) == normalise(b) for a, b in pairs):
            return cls, why
    for cls, entries in (("argued", ARGUED), ("killed-by", KILLED_BY)):
        why = _listed(pairs, entries)
        if why:
            return cls, why
    return "unexplained", " | ".join(f"{a.strip()} -> {b.strip()}" for a, b in pairs)


#: hdl/ modules that belong to no block's name prefix: the top-k engines' histogram,
#: and the lane helpers and config check every block shares.
OWNER = {"histogram": "topk", "lanes": "shared", "checks": "shared", "compat": "shared"}


def block_of(mutant: str) -> str:
    """The block a mutant of ``hdl.<module>...`` belongs to: the registered block whose
    name prefixes the module (``topk_fast`` -> topk), else :data:`OWNER`."""
    from accelgen.registry import BLOCKS
    module = mutant.split(".")[1]
    for name in sorted(BLOCKS, key=len, reverse=True):
        if module == name or module.startswith(name + "_"):
            return name
    return OWNER.get(module, module)


def report(names: list[str], status: dict, classes: dict) -> list[tuple]:
    """(block, mutants run, killed, equivalent, score) per block."""
    rows = []
    for block in sorted({block_of(n) for n in names}):
        mine = [n for n in names if block_of(n) == block and status[n] != "not checked"]
        killed = sum(status[n] not in ALIVE or classes[n][0] == "killed-by" for n in mine)
        equivalent = sum(classes[n][0] not in ("unexplained", "killed-by")
                         for n in mine if n in classes)
        rows.append((block, len(mine), killed, equivalent,
                     killed / max(1, len(mine) - equivalent)))
    return rows


def sample(names: list[str], per_block: int, seed: int) -> list[str]:
    """Up to ``per_block`` mutants of each block, drawn at random (``seed``)."""
    rng, chosen = random.Random(seed), []
    for block in sorted({block_of(n) for n in names}):
        mine = sorted(n for n in names if block_of(n) == block)
        chosen += rng.sample(mine, min(per_block, len(mine)))
    return chosen


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="accelgen mutate", description=__doc__.splitlines()[0])
    p.add_argument("--report", action="store_true", help="only classify the last run's results")
    p.add_argument("--sample", type=int, metavar="N",
                   help="run N random mutants per block (all of a smaller block)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    ok, names = True, None
    if args.sample and not args.report:
        # mutmut generates every mutant (and maps tests to functions) on its first run
        _mutmut("run", "--max-children", "2", "hdl.checks*", capture_output=True)
        names = sample(list(_statuses()), args.sample, args.seed)
        (Path("mutants") / "sample.txt").write_text("\n".join(names) + "\n")
        ok = _mutmut("run", "--max-children", "2", *names).returncode == 0
    elif args.sample:
        names = (Path("mutants") / "sample.txt").read_text().split()
    elif not args.report:
        ok = _mutmut("run", "--max-children", "2").returncode == 0
    status = _statuses()
    names = names or list(status)
    classes = {n: classify(n) for n in names if status[n] in ALIVE}
    for name, (cls, why) in sorted(classes.items(), key=lambda kv: kv[1][0]):
        print(f"{cls:<12} {name}: {why}")
    print(f"\n{'block':<8} {'mutants':>8} {'killed':>7} {'equiv.':>7} {'score':>6}")
    for block, total, killed, equivalent, score in report(names, status, classes):
        print(f"{block:<8} {total:>8} {killed:>7} {equivalent:>7} {score:>6.3f}")
        ok &= score >= 0.90
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
