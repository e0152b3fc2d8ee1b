"""Plain Markdown tables for the demo, bench and synthesis reports."""
from __future__ import annotations


def markdown(headers: list[str], rows: list[list]) -> str:
    """A Markdown table; floats get 4 significant digits."""
    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
