"""gsheet_metadata: the recording's row of the lab's Google Sheet.

The table is this batch's snapshot (fetched once per batch with gspread, see
:mod:`mea_pipeline.sheet.source`) or the local export ``--gsheet-csv``. The row is found by exact
equality of ``File_name`` with the canonical name (``2024.08.08-10.40.20-Rec`` ->
``2024.08.08.10.40.20.Rec.cmcr``) first, the lab's substring rule only as a fallback; which rule
matched and which source was read are written next to the row and in the step record. A recording
without a row, or a batch without a sheet, is a recorded warning, not a failure: ap_tracking then
runs without bad lanes and retina orientation.

The row is written twice: ``metadata/gsheet_row`` as the lab's scripts write it (each cell with
the type pandas reads it with: numbers as int64 or float64, TRUE/FALSE as booleans, empty cells
as ``''``), so the lab's notebooks read the same values, and ``metadata/gsheet_text`` with every
cell as the sheet's text, whose type never changes between recordings.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..inputs import cached_table
from ..lab_values import sheet_cell
from ..schema import LAB, OURS, Out
from ..sheet.table import canonical_file_name, match_position, row_fields, row_values
from .registry import Step, StepContext, reader

MATCH = "metadata/gsheet_match"
# The row's keys are the sheet's columns, which the lab adds and renames: known only when read.
ROW_CELL = Out("metadata/gsheet_row/{field}", "any", 0,
               "every column of the matched row, as the lab writes it: the cell as pandas reads the table (int64, "
               "float64, bool or text, by column and recording; '' when empty); key = column name with '/' and '\\' "
               "replaced by '_' (e.g. Max/min/mm2 -> Max_min_mm2); written when the recording has a row",
               required=False, origin=LAB)
TEXT_CELL = Out("metadata/gsheet_text/{field}", "str", 0,
                "every column of the matched row as the sheet's text ('' when empty); same keys as gsheet_row; "
                "written when the recording has a row", required=False, origin=OURS)
MATCH_SOURCE = Out(f"{MATCH}/source", "str", 0, "gspread (this batch's dated snapshot), csv (--gsheet-csv) or none",
                   origin=OURS)
MATCH_RULE = Out(f"{MATCH}/rule", "str", 0, "exact (File_name = canonical name), substring (the lab's rule) or none",
                 origin=OURS)
MATCH_TABLE = Out(f"{MATCH}/table", "str", 0, "the snapshot or CSV file read ('' without a sheet)", origin=OURS)
MATCH_FILE_NAME = Out(f"{MATCH}/file_name", "str", 0, "File_name of the matched row ('' without a row)", origin=OURS)


@dataclass(frozen=True)
class GsheetMetadataParams:
    """How the recording's row is found in the sheet.

    Attributes
    ----------
    allow_substring_match : bool
        When no ``File_name`` equals the canonical name, accept the first row whose ``File_name``
        contains the recording ID, as is or dotted (the lab's rule; warned); False leaves such a
        recording without a row.
    """

    allow_substring_match: bool = True


@reader("gsheet_metadata")
def cell(h5, column: str) -> str | None:
    """Text of the matched row's ``column`` (sanitised key), None when there is no such cell or row."""
    path = TEXT_CELL.at(field=column)
    return h5[path].asstr()[()] if path in h5 else None


def sheet_source(config) -> str:
    """Which sheet the recordings of this run read: gspread snapshot, CSV export, or none."""
    if config.sheet_snapshot is not None:
        return config.sheet_source or "gspread"
    if config.gsheet_csv is not None:
        return config.sheet_source or "csv"
    return "none"


def run(ctx: StepContext, p: GsheetMetadataParams) -> dict:
    table_path = ctx.config.sheet_table()
    source = sheet_source(ctx.config)
    rid = ctx.recording.recording_id
    position, rule = None, "none"
    if table_path is None:
        ctx.warn("no sheet: pass --gsheet-credentials (gspread) or --gsheet-csv FILE to read the lab's sheet; "
                 "ap_tracking runs without bad lanes and retina orientation")
    else:
        table = cached_table(table_path)
        position, rule = match_position(table, rid)
        if rule == "substring" and not p.allow_substring_match:
            position, rule = None, "none (substring match disabled)"
        if position is None:
            ctx.warn(f"no row of {table_path} has File_name {canonical_file_name(rid)!r}; "
                     "add the recording to the sheet")
    text, typed = {}, {}
    if position is not None:
        text = row_fields(row_values(table, position))
        typed = dict(zip(text, row_values(cached_table(table_path, typed=True), position).values()))
        if rule == "substring":
            ctx.warn(f"sheet row matched by substring only (File_name {text['File_name']!r}); check the sheet")
    for key in text:
        ctx.tx.write(ROW_CELL.at(field=key), sheet_cell(typed[key]))
        ctx.tx.write(TEXT_CELL.at(field=key), text[key])
    for out, value in ((MATCH_SOURCE, source), (MATCH_RULE, rule), (MATCH_TABLE, str(table_path or "")),
                       (MATCH_FILE_NAME, text.get("File_name", ""))):
        ctx.tx.write(out.at(), value)
    return {"source": source, "rule": rule, "n_columns": len(text)}


STEP = Step(
    name="gsheet_metadata", position=8, upstream=(), reads=frozenset({"sheet"}),
    params=GsheetMetadataParams, version="2", run=run,
    outputs=(ROW_CELL, TEXT_CELL, MATCH_SOURCE, MATCH_RULE, MATCH_TABLE, MATCH_FILE_NAME),
    description="The recording's row of the lab's Google Sheet (gspread snapshot or CSV export), typed as the "
                "lab's and as text",
)
