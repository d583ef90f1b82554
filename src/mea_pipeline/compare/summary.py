"""The one-screen summary of a comparison: counts, tolerance, and the keys to look at by pattern."""

from __future__ import annotations

import re
from collections import defaultdict

from .files import DIFFERS, DOCUMENTED, MISSING, KeyResult, Report
from .values import tolerance_text

# Classes listed key by key (grouped), in this order; the others are only counted.
LISTED = (DIFFERS, MISSING, DOCUMENTED)
# Patterns shown per listed class (two lines each), so the whole summary fits a screen.
PATTERNS_PER_CLASS = 5
WIDTH = 110

_UNIT = re.compile(r"(?<![^/@])unit_\d+(?![^/@])")
_NUMBER = re.compile(r"(?<![^/@])\d+(?![^/@])")


def pattern(path: str) -> str:
    """The key with its unit id and numeric segments (trials, directions) as placeholders."""
    return _NUMBER.sub("{n}", _UNIT.sub("{unit}", path))


def format_summary(report: Report) -> str:
    counts = report.counts
    total = sum(counts.values())
    lines = [f"LAB  {report.lab}", f"OURS {report.ours}",
             f"{total} keys: " + ", ".join(f"{n} {cls.replace('_', ' ')}" for cls, n in counts.items()),
             *(f"tolerance {part}" for part in tolerance_text(report.rtol).split("; "))]
    by_class: dict[str, list[KeyResult]] = defaultdict(list)
    for key in report.keys:
        by_class[key.cls].append(key)
    placeholders = False
    for cls in LISTED:
        if not by_class[cls]:
            continue
        groups: dict[str, list[KeyResult]] = defaultdict(list)
        for key in by_class[cls]:
            groups[pattern(key.path)].append(key)
        ranked = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
        lines.append(f"{cls} ({_count(len(by_class[cls]), 'key')}, {_count(len(groups), 'pattern')}):")
        for name, keys in ranked[:PATTERNS_PER_CLASS]:
            name = name if len(keys) > 1 else keys[0].path
            placeholders |= name != keys[0].path
            mark = (keys[0].mark or "no mark").split(":")[0]  # a fixed key's reason is in its detail
            lines.append(_clip(f"  {len(keys):>6} x [{mark}] {name}"))
            example = f"e.g. {keys[0].path}: " if len(keys) > 1 else ""
            lines.append(_clip(f"           {example}{keys[0].detail}"))
        if len(ranked) > PATTERNS_PER_CLASS:
            rest = ranked[PATTERNS_PER_CLASS:]
            hidden = sum(len(keys) for _, keys in rest)
            lines.append(f"         ... {_count(len(rest), 'more pattern')} ({_count(hidden, 'key')}): --json lists all")
    if placeholders:
        lines.append("{unit} = any unit_NNN, {n} = any number (trial, direction)")
    verdict = "nothing differs, nothing missing" if report.exit_code == 0 else \
        f"{counts[DIFFERS]} differ, {counts[MISSING]} missing"
    lines.append(f"result: {verdict} (exit {report.exit_code})")
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _clip(line: str) -> str:
    return line if len(line) <= WIDTH else line[:WIDTH - 3] + "..."
