"""The fault matrix as the tests saw it: one entry per row of docs/reliability.md.

Each row's test calls :func:`record` with what the user saw (the line about the fault and the
whole output around it) and what was lost; the entry is kept before it is checked, so the
figures printed at the end of the session count failing rows honestly.
"""

from __future__ import annotations

from dataclasses import dataclass

ROWS: dict[str, "Row"] = {}


@dataclass
class Row:
    line: str
    clear: bool
    traceback: bool
    lost: int


def record(row: str, line: str, output: str = "", *, names: tuple[str, ...] | str = (), lost: int = 0) -> None:
    """Record matrix row ``row`` and check it: ``line`` is one line of ``output`` naming ``names``,
    nothing in ``output`` is a traceback, and no result was lost."""
    names = (names,) if isinstance(names, str) else tuple(names)
    output = output or line
    line = line.strip()
    clear = bool(line) and "\n" not in line and line in output and all(name in line for name in names)
    ROWS[row] = Row(line, clear, "Traceback" in output, lost)
    assert "\n" not in line, f"{row}: more than one line: {line!r}"
    assert line in output, f"{row}: {line!r} not in the output:\n{output}"
    assert all(name in line for name in names), f"{row}: {line!r} does not name {names}"
    assert "Traceback" not in output, f"{row}: a traceback reached the user:\n{output}"
    assert lost == 0, f"{row}: {lost} result(s) lost"


def figures() -> str:
    rows = ROWS.values()
    return (f"reliability matrix: {len(ROWS)} faults tried, {sum(r.clear for r in rows)} clear one-line errors, "
            f"{sum(r.lost for r in rows)} results lost, {sum(r.traceback for r in rows)} tracebacks")
