"""The mapping CSV (which .cmcr/.cmtr pairs to process) and the ``scan`` that writes one."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .config import RecordingInputs
from .errors import InputError
from .mcs_io import recording_id_from_path as recording_id

REQUIRED_COLUMNS = ("cmcr_path", "cmtr_path", "matched")


def parse_path_map(specs: list[str] | tuple[str, ...] | None) -> list[tuple[str, str]]:
    r"""``['M:\=/mnt/m/']`` -> ``[('M:\\', '/mnt/m/')]``; each spec is ``PREFIX=REPLACEMENT``."""
    pairs = []
    for spec in specs or ():
        prefix, sep, replacement = spec.partition("=")
        if not sep or not prefix:
            raise InputError(f"--path-map {spec!r}: write it as PREFIX=REPLACEMENT, e.g. 'M:\\=/mnt/m/'")
        pairs.append((prefix, replacement))
    return pairs


def remap_path(path: str, path_map: list[tuple[str, str]]) -> Path:
    """Apply the first matching prefix rewrite (case-insensitive, either slash) to a CSV path."""
    text = str(path).strip()
    for prefix, replacement in path_map:
        norm_prefix = prefix.replace("\\", "/").lower()
        if text.replace("\\", "/").lower().startswith(norm_prefix):
            rest = text[len(prefix):].replace("\\", "/").lstrip("/")
            return Path(replacement.rstrip("/") + "/" + rest if rest else replacement)
    return Path(text)


def read_mapping(csv: str | Path, path_map: list[tuple[str, str]] | None = None) -> list[tuple[str, Path, Path]]:
    """Matched rows of the mapping CSV as ``(recording_id, cmcr_path, cmtr_path)``, in file order."""
    csv = Path(csv)
    if not csv.is_file():
        raise InputError(f"mapping CSV not found: {csv}; pass --csv FILE (columns {', '.join(REQUIRED_COLUMNS)})")
    try:
        table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"mapping CSV {csv} cannot be read: {exc}") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"mapping CSV {csv}: missing column(s) {', '.join(missing)}; "
                         f"it needs {', '.join(REQUIRED_COLUMNS)} (extra columns are ignored)")
    matched = table[table["matched"].str.strip().str.lower() == "true"]
    rows = []
    for cmcr, cmtr in zip(matched["cmcr_path"], matched["cmtr_path"]):
        rows.append((recording_id(cmtr), remap_path(cmcr, path_map or []), remap_path(cmtr, path_map or [])))
    return rows


def recordings(csv, output_dir, path_map=None, start: int = 0, end: int | None = None) -> list[RecordingInputs]:
    """The ``[start, end)`` slice of matched rows as :class:`RecordingInputs`."""
    output_dir = Path(output_dir)
    return [RecordingInputs(rid, output_dir / f"{rid}.h5", cmcr, cmtr)
            for rid, cmcr, cmtr in read_mapping(csv, path_map)[start:end]]


_CMTR = re.compile(r"^(?P<stem>.+-Rec)-\.cmtr$", re.IGNORECASE)


def scan(roots: list[str | Path]) -> tuple[pd.DataFrame, list[str]]:
    """Pair every ``*-Rec-.cmtr`` under ``roots`` with the ``*-Rec.cmcr`` beside it.

    Returns the mapping table (``recording_id``, ``cmcr_path``, ``cmtr_path``, ``matched``) and
    a list of messages about files that could not be paired.
    """
    rows, problems, seen = [], [], set()
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise InputError(f"scan: folder not found: {root}")
        for cmtr in sorted(root.rglob("*.cmtr")):
            match = _CMTR.match(cmtr.name)
            if not match:
                problems.append(f"{cmtr}: name does not end in '-Rec-.cmtr'; not paired")
                continue
            cmcr = cmtr.with_name(match["stem"] + ".cmcr")
            rows.append({"recording_id": match["stem"], "cmcr_path": str(cmcr) if cmcr.is_file() else "",
                         "cmtr_path": str(cmtr), "matched": cmcr.is_file()})
            seen.add(cmcr)
            if not cmcr.is_file():
                problems.append(f"{cmtr}: no {cmcr.name} beside it")
        for cmcr in sorted(root.rglob("*.cmcr")):
            if cmcr not in seen:
                problems.append(f"{cmcr}: no matching '-Rec-.cmtr' beside it")
    return pd.DataFrame(rows, columns=["recording_id", "cmcr_path", "cmtr_path", "matched"]), problems
