"""The mapping CSV (which .cmcr/.cmtr pairs to process) and the ``scan`` that writes one."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .config import RecordingInputs
from .errors import InputError
from .mcs_io import recording_id_from_path as recording_id

REQUIRED_COLUMNS = ("cmcr_path", "cmtr_path", "matched")
MATCHED_VALUES = ("true", "false")
# A drive letter (M:\ or M:/) or a UNC share (\\server\share\) at the start of a CSV path.


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
    """Matched rows of the mapping CSV as ``(recording_id, cmcr_path, cmtr_path)``, in file order.

    ``matched`` must read True or False (any case): any other value (``1``, ``yes``, empty) is an
    error naming its line, never a row silently left out. An empty file, a header without rows
    and a matched row without both paths are errors too.
    """
    csv = Path(csv)
    if not csv.is_file():
        kind = "is a folder, not a file" if csv.is_dir() else "not found"
        raise InputError(f"mapping CSV {kind}: {csv}; pass --csv FILE (columns {', '.join(REQUIRED_COLUMNS)})")
    try:
        table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise InputError(f"mapping CSV {csv} is empty; it needs the header {','.join(REQUIRED_COLUMNS)} "
                         "and one row per recording") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"mapping CSV {csv} cannot be read: {' '.join(str(exc).split())}") from None
    except PermissionError as exc:
        raise InputError(f"mapping CSV {csv} cannot be read ({exc.strerror}); give this user read access") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"mapping CSV {csv}: missing column(s) {', '.join(missing)}; "
                         f"it needs {', '.join(REQUIRED_COLUMNS)} (extra columns are ignored)")
    if table.empty:
        raise InputError(f"mapping CSV {csv} has a header but no rows; add one row per recording "
                         "(or write it with `mea-pipeline scan`)")
    flags = table["matched"].str.strip().str.lower()
    bad = flags.index[~flags.isin(MATCHED_VALUES)]
    if len(bad):
        raise InputError(f"mapping CSV {csv} line {bad[0] + 2}: matched = {table['matched'][bad[0]]!r}; write "
                         f"True or False ({len(bad)} row(s) hold another value)")
    rows = []
    for index in flags.index[flags == "true"]:
        cmcr, cmtr = table["cmcr_path"][index].strip(), table["cmtr_path"][index].strip()
        if not cmcr or not cmtr:
            column = "cmtr_path" if cmcr else "cmcr_path"
            raise InputError(f"mapping CSV {csv} line {index + 2}: matched = True but {column} is empty; "
                             "give both files or set matched to False")
        rows.append((recording_id(cmtr), remap_path(cmcr, path_map or []), remap_path(cmtr, path_map or [])))
    return rows


def select_rows(n_rows: int, start: int = 0, end: int | None = None, where: str = "the mapping CSV") -> slice:
    """The slice ``[start, end)`` of ``n_rows`` matched rows; an error when it selects none.

    Negative values are errors: Python's "count from the end" made ``--start -1`` run only the
    last row.
    """
    given = f"--start {start}" + ("" if end is None else f" --end {end}")
    if start < 0 or (end is not None and end < 0):
        raise InputError(f"{given}: rows are counted from 0, the first matched row of {where}")
    if n_rows == 0:
        raise InputError(f"{where} has no row with matched = True; nothing to process")
    if start >= n_rows or (end is not None and end <= start):
        raise InputError(f"{given} selects none of the {n_rows} matched rows of {where} (rows 0 to {n_rows - 1})")
    return slice(start, end)


def recordings(csv, output_dir, path_map=None, start: int = 0, end: int | None = None) -> list[RecordingInputs]:
    """The ``[start, end)`` slice of matched rows as :class:`RecordingInputs` (see :func:`select_rows`)."""
    output_dir = Path(output_dir)
    rows = read_mapping(csv, path_map)
    return [RecordingInputs(rid, output_dir / f"{rid}.h5", cmcr, cmtr)
            for rid, cmcr, cmtr in rows[select_rows(len(rows), start or 0, end, f"mapping CSV {csv}")]]


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
