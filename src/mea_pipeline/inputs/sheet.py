"""The lab's sheet: this batch's snapshot (fetched once with service-account credentials) or a CSV export.

Fingerprint: the content of the row matched to the recording, so a new snapshot with the same
row reruns nothing and an edited row reruns exactly the steps that read the sheet.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .declaration import PATH, TEXT, ExternalInput, InputOption

DEFAULT_SHEET_TITLE = "MEA dashboard"
_TABLES: dict[tuple, object] = {}


def cached_table(path: Path, typed: bool = False):
    """The sheet table at ``path``, read once per file version (a batch reads one snapshot).

    Every cell as text, or with ``typed`` as pandas infers it (the lab's reading, see
    :func:`mea_pipeline.sheet.table.read_typed_table`).
    """
    from ..sheet.table import read_table, read_typed_table

    try:
        stat = Path(path).stat()
    except FileNotFoundError:
        raise InputError(f"Google-Sheet CSV {path} does not exist; give an export of the sheet (--gsheet-csv)"
                         ) from None
    identity = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if any(key[1:] != identity for key in _TABLES):
        _TABLES.clear()
    key = (typed, *identity)
    if key not in _TABLES:
        _TABLES[key] = read_typed_table(path) if typed else read_table(path)
    return _TABLES[key]


def _fingerprint(rec, config) -> dict:
    from ..sheet.table import match_row, row_digest

    path = config.sheet_table()
    if path is None:
        return {"absent": True}
    row, rule = match_row(cached_table(path), rec.recording_id)
    return {"rule": rule, "row": row_digest(row) if row is not None else None}


def _check_batch(report, config) -> None:
    """The table the recordings will read, or the credentials the batch fetches it with."""
    from ..sheet.source import credentials_path

    credentials = credentials_path(config)
    if credentials is not None and not credentials.is_file():
        report.warning(f"--gsheet-credentials {credentials} not found: the sheet cannot be fetched, "
                       f"the steps that read it read {config.gsheet_csv or 'no sheet'}")
    table = config.sheet_table()
    if table is not None:
        report.attempt(cached_table, table)
    elif credentials is None:
        report.warning("no sheet: pass --gsheet-csv FILE or --gsheet-credentials FILE; the steps that read it "
                       "record a warning and run without bad lanes and retina orientation")


def _check_recording(report, rec, config) -> None:
    from ..sheet.table import canonical_file_name, match_row

    table = config.sheet_table()
    if table is None:
        return
    sheet = report.attempt(cached_table, table)
    if sheet is not None and match_row(sheet, rec.recording_id)[0] is None:
        report.warning(f"{rec.recording_id}: no row of {table} has File_name "
                       f"{canonical_file_name(rec.recording_id)!r}; the steps that read the sheet record a warning")


SHEET = ExternalInput(
    "sheet", "the lab's sheet: this batch's snapshot (--gsheet-credentials, --gsheet-title) or --gsheet-csv",
    fingerprint=_fingerprint,
    options=(InputOption("gsheet_csv", PATH, "Local export of the lab's sheet (fallback)"),
             InputOption("gsheet_credentials", PATH, "Service-account JSON for the Google Sheet"),
             InputOption("gsheet_title", TEXT, f"Spreadsheet title (default '{DEFAULT_SHEET_TITLE}')",
                         DEFAULT_SHEET_TITLE)),
    check_batch=_check_batch, check_recording=_check_recording)
