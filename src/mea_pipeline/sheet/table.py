"""The Google-Sheet table: dated snapshots, CSV reading, matching a recording to its row.

The table is read with every cell as the sheet's text (``''`` for empty), so a value never
changes type between recordings the way the lab's pandas round trip made it (float in one file,
``""`` in another); :func:`read_typed_table` reads it the lab's way for the lab's key.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from datetime import date
from pathlib import Path

import pandas as pd

from mea_pipeline.errors import InputError

FILE_NAME_COLUMN = "File_name"
SNAPSHOT_PREFIX = "gsheet_snapshot_"


def snapshot_path(folder: str | Path, today: date | None = None) -> Path:
    """``<folder>/gsheet_snapshot_YYYY-MM-DD.csv`` for ``today`` (default: the current date)."""
    return Path(folder) / f"{SNAPSHOT_PREFIX}{(today or date.today()).isoformat()}.csv"


def write_snapshot(table: pd.DataFrame, folder: str | Path, *, today: date | None = None) -> Path:
    """Write ``table`` as the dated snapshot CSV in ``folder``, atomically; return its path.

    A reader never sees a half-written snapshot: the CSV is written to a temporary file in the
    same folder and moved into place with :func:`os.replace`.
    """
    target = snapshot_path(folder, today)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            table.to_csv(stream, index=False)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV export or snapshot of the sheet with every cell as text (``''`` when empty).

    Raises
    ------
    InputError
        The file is missing, not a readable CSV, or has no ``File_name`` column.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"Google-Sheet CSV {path} does not exist; give an export of the sheet (--gsheet-csv)"
                         ) from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = " ".join(str(exc).split())
        raise InputError(f"Google-Sheet CSV {path} is not a readable CSV ({reason}); export the sheet again") from None
    if FILE_NAME_COLUMN not in table.columns:
        raise InputError(f"Google-Sheet CSV {path} has no {FILE_NAME_COLUMN!r} column; export the sheet's Data_ tabs "
                         "with their header row")
    return table


def canonical_file_name(recording_id: str) -> str:
    """The sheet's ``File_name`` of a recording: ``2024.08.08-10.40.20-Rec`` -> ``2024.08.08.10.40.20.Rec.cmcr``."""
    return recording_id.replace("-", ".") + ".cmcr"


def substring_candidates(recording_id: str) -> list[str]:
    """The lab's substring rule: the ID as is, with ``-`` -> ``.``, and without ``-Rec`` with ``-`` -> ``.``."""
    variants = [recording_id, recording_id.replace("-", "."), recording_id.replace("-Rec", "").replace("-", ".")]
    return [v for v in dict.fromkeys(variants) if v]


def match_row(table: pd.DataFrame, recording_id: str) -> tuple[dict[str, str] | None, str]:
    """Find the row of ``recording_id`` in the sheet table (see :func:`match_position`).

    Returns
    -------
    tuple
        ``(row, rule)``: ``row`` maps the table's column names to cell text (``''`` when empty).
    """
    position, rule = match_position(table, recording_id)
    return (None if position is None else _row_at(table, position)), rule


def match_position(table: pd.DataFrame, recording_id: str) -> tuple[int | None, str]:
    """Position (0-based, table order) of the row of ``recording_id`` in the sheet table, and the rule.

    First the first row whose stripped ``File_name`` equals :func:`canonical_file_name` (rule
    ``'exact'``); else the lab's rule, the first row whose ``File_name`` contains any of
    :func:`substring_candidates` (rule ``'substring'``); else ``(None, 'none')``.
    """
    if FILE_NAME_COLUMN not in table.columns:
        raise InputError(f"Google-Sheet table has no {FILE_NAME_COLUMN!r} column")
    names = table[FILE_NAME_COLUMN].map(_cell_text)
    exact = names.str.strip() == canonical_file_name(recording_id)
    if exact.any():
        return int(exact.to_numpy().argmax()), "exact"
    contains = pd.Series(False, index=names.index)
    for candidate in substring_candidates(recording_id):
        contains |= names.str.contains(candidate, regex=False)
    if contains.any():
        return int(contains.to_numpy().argmax()), "substring"
    return None, "none"


def read_typed_table(path: str | Path) -> pd.DataFrame:
    """The same CSV read with pandas' default type inference, as the lab's CSV fallback reads it.

    A column of numbers becomes int64 or float64 (float64 when a cell is empty), a column of
    TRUE/FALSE booleans, anything else text; empty cells are NaN. Row order and columns are
    those of :func:`read_table` of the same file.
    """
    return pd.read_csv(Path(path), encoding="utf-8-sig")


def row_values(table: pd.DataFrame, position: int) -> dict[str, object]:
    """Column name -> the cell's value, as the table holds it, of the row at ``position``."""
    return {str(column): value for column, value in table.iloc[int(position)].items()}


def sanitize_key(column: str) -> str:
    """The lab's HDF5 key for a column: ``/`` and ``\\`` -> ``_`` (``Max/min/mm2`` -> ``Max_min_mm2``).

    Spaces and parentheses are kept (``Quality (1-5)``, ``Dur(Sec)``, ``Sheet Name``).
    """
    return column.replace("/", "_").replace("\\", "_")


def row_fields(row: dict[str, object]) -> dict[str, str]:
    """Sanitised column names -> cell text (``''`` for empty cells), in the row's column order.

    Raises
    ------
    InputError
        Two columns sanitise to the same key (e.g. ``A/B`` and ``A_B``).
    """
    fields: dict[str, str] = {}
    origin: dict[str, str] = {}
    for column, value in row.items():
        key = sanitize_key(str(column))
        if key in fields:
            raise InputError(f"Google-Sheet columns {origin[key]!r} and {column!r} both become the key {key!r}; "
                             "rename one of them in the sheet")
        fields[key], origin[key] = _cell_text(value), str(column)
    return fields


def row_digest(row: dict[str, object]) -> str:
    """SHA-256 of the row's (column, text) pairs: changes when any cell of the matched row changes."""
    payload = json.dumps([[str(column), _cell_text(value)] for column, value in row.items()], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _row_at(table: pd.DataFrame, position: int) -> dict[str, str]:
    return {str(column): _cell_text(value) for column, value in table.iloc[int(position)].items()}


def _cell_text(value: object) -> str:
    """A cell as text; missing values (None, NaN from a table not read by :func:`read_table`) are ''."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)
