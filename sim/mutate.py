"""``make mutate``: mutation testing of hdl/ with mutmut, survivors classified.

mutmut mutates the hardware description (flipped comparators, changed constants,
dropped terms ...) and runs the fast subset of the tests (pyproject ``[tool.mutmut]``)
against each mutant. A surviving mutant is either a missing test or an equivalent
mutant; the equivalent classes below are recognised from the mutant's diff, each with
the reason it cannot change what the hardware computes. Everything else is reported
as unexplained and counts against the score:

    score = killed / (mutants - equivalent)
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

MUTMUT = str(Path(sys.executable).parent / "mutmut")

def _strip(*patterns: str):
    """A normaliser deleting ``patterns`` and the punctuation they leave behind."""
    def normalise(line: str) -> str:
        for pattern in patterns:
            line = re.sub(pattern, "", line)
        return re.sub(r"[\s,]+", "", line)
    return normalise


#: (class, normaliser, why): a survivor belongs to the class when every changed line
#: equals its original once both are normalised.
EQUIVALENT = [
    ("name", _strip(r'name=(f?"[^"]*"|None)', r'f"[\w{}]*"', r", None\b"),
     "only a debug name changes (or goes); names never reach the logic"),
    ("reset", _strip(r"reset_less=\w+", r"data=\w+"),
     "a data register gains a reset (or loses an optional one); every data register is "
     "qualified by valid/close flags that do reset, so its value after reset never matters"),
    ("width", _strip(r"signed\([89]\)", r"max\(rows, [23]\)", r"k_max \+ [12]",
                     r"signed\(1[6-8]\)", r"max\(cfg\.acc_width, 1[67]\)",
                     r"p_shape\.width \+ 1[78]", r"signed\(6[45]\)"),
     "a register one bit wider than the values it holds (sign-extended operands, a row "
     "counter that never exceeds R-1, a beat counter that saturates at k_max, the w4a4 "
     "epilogue's 16-bit scales and operands held in 17 or 18 bits, its products one bit "
     "wider, or its 64-bit sum's addend in 65 bits: the bank keeps the low 64 either way)"),
    ("warning", _strip(r"_MustUse__silence = \w+"),
     "only whether Amaranth warns about a component that was never built"),
    ("case", _strip(r"if .* else m\.Default\(\)"),
     "the last row becomes an explicit case instead of the default branch: same "
     "multiplexer (only Verilator's CASEINCOMPLETE lint would notice)"),
]


def _survivors() -> list[str]:
    out = subprocess.run([MUTMUT, "results"], capture_output=True, text=True).stdout
    return [line.split(":")[0].strip() for line in out.splitlines() if line.endswith("survived")]


def _changed_lines(name: str) -> list[tuple[str, str]]:
    """(original, mutated) line pairs of a mutant's diff."""
    diff = subprocess.run([MUTMUT, "show", name], capture_output=True, text=True).stdout
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
    return "unexplained", " | ".join(f"{a.strip()} -> {b.strip()}" for a, b in pairs)


def main() -> int:
    run = subprocess.run([MUTMUT, "run", "--max-children", "2"], capture_output=True, text=True)
    total = len(re.findall(r"__mutmut_\d+", subprocess.run(
        [MUTMUT, "results", "--all", "true"], capture_output=True, text=True).stdout))
    survivors = _survivors()
    classes = {name: classify(name) for name in survivors}
    equivalent = sum(cls != "unexplained" for cls, _ in classes.values())
    killed = total - len(survivors)
    for name, (cls, why) in sorted(classes.items(), key=lambda kv: kv[1][0]):
        print(f"{cls:<12} {name}: {why}")
    score = killed / max(1, total - equivalent)
    print(f"\nmutants {total}, killed {killed}, equivalent {equivalent}, "
          f"unexplained {len(survivors) - equivalent}; score {score:.3f}")
    return 0 if run.returncode == 0 and score >= 0.90 else 1


if __name__ == "__main__":
    sys.exit(main())
