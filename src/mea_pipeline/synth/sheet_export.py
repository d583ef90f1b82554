"""A synthetic CSV export of the lab's Google Sheet ("MEA dashboard"), one row per recording.

Same 42 columns in the same order as the lab's export, every cell text. The fields the pipeline
reads downstream carry the recording's ground truth: ``File_name`` (matching), ``Bad_lanes``
(1-based electrode columns, ap_tracking's bad-lane fix) and ``Center_xy`` (retina position of the
array centre, ap_tracking's orientation); the rest is plausible filler.
"""

from __future__ import annotations

import csv
import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from mea_pipeline.sheet.table import canonical_file_name

SHEET_COLUMNS = (
    "Manual az", "File_name", "Dur(Sec)", "DOB", "Sex", "Genotype", "Experimenter", "Quality (1-5)",
    "Condition", "Chip", "Bad_lanes", "Note", "Center_xy", "event_check", "harp", "LP", "Sorted",
    "Perfuse Time", "Euth Time", "Pictrure", "LP EST", "Date", "Time", "Age", "Simulation", "Hour",
    "File location", "Note2", "Check FN", "Since PT", "Since ET", "Events", "Note3", "AI_Count",
    "File_Location", "Step_Check", "event per min", "Max_Count/sec", "Max/min/mm2", "Stim_Type",
    "Sorted_Cell_Num", "Sheet Name",
)

# The lab's quadrant codes "L|R, VD, NT" (eye, ventral-dorsal, nasal-temporal), the common values.
CENTER_CODES = tuple(f"{eye}, {vd}, {nt}" for eye in ("L", "R") for vd in (-5, 5) for nt in (-5, 5))

N_COLUMNS = 65  # electrode columns of the chip; Bad_lanes are 1-based column numbers
_RECORDING_ID = re.compile(r"^(\d{4}\.\d\d\.\d\d)-(\d\d\.\d\d\.\d\d)-Rec$")
_GENOTYPES = ("Vglu-cre(+/-)/Rtdt(+/-)", "BLK")
_AGE_DAYS = 109


def sheet_row_truth(recording_id: str, rng: np.random.Generator) -> dict:
    """Draw the sheet facts of one synthetic recording: ``recording_id``, ``bad_lanes``, ``center_xy``.

    ``bad_lanes`` holds 0-2 distinct, non-adjacent 1-based column numbers in 2..64 (each bad lane
    then has good neighbours on both sides to be interpolated from), sorted; ``center_xy`` is
    one of :data:`CENTER_CODES`. Add ``duration_s`` to make a :func:`write_sheet_export` row.
    """
    n_bad = int(rng.integers(0, 3))
    lanes: list[int] = []
    while len(lanes) < n_bad:
        lane = int(rng.integers(2, N_COLUMNS))
        if all(abs(lane - other) > 1 for other in lanes):
            lanes.append(lane)
    center = CENTER_CODES[int(rng.integers(len(CENTER_CODES)))]
    return {"recording_id": recording_id, "bad_lanes": sorted(lanes), "center_xy": center}


def write_sheet_export(path: str | Path, rows: list[dict]) -> Path:
    """Write the CSV export with one row per item of ``rows``; return its path.

    Parameters
    ----------
    path
        Output CSV (parent folders are created).
    rows
        Each with ``recording_id`` (lab form ``YYYY.MM.DD-HH.MM.SS-Rec``), ``bad_lanes`` (list of
        1-based column numbers, possibly empty), ``center_xy`` (e.g. ``'L, 5, -5'`` or ``''``)
        and ``duration_s``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(SHEET_COLUMNS)
        for index, row in enumerate(rows):
            cells = _sheet_cells(index, row)
            writer.writerow([cells.get(column, "") for column in SHEET_COLUMNS])
    return path


def _sheet_cells(index: int, row: dict) -> dict[str, str]:
    recording_id = row["recording_id"]
    parsed = _RECORDING_ID.match(recording_id)
    if parsed is None:
        raise ValueError(f"synthetic sheet row: recording ID {recording_id!r} is not YYYY.MM.DD-HH.MM.SS-Rec")
    recorded = datetime.strptime(" ".join(parsed.groups()), "%Y.%m.%d %H.%M.%S")
    born = recorded - timedelta(days=_AGE_DAYS)
    return {
        "File_name": canonical_file_name(recording_id),
        "Dur(Sec)": f"{float(row['duration_s']):.1f}",
        "DOB": _sheet_date(born),
        "Sex": "F" if index % 2 == 0 else "M",
        "Genotype": _GENOTYPES[index % len(_GENOTYPES)],
        "Experimenter": "synthetic",
        "Quality (1-5)": str(4 - index % 2),
        "Condition": "play_optimization_set6_ipRGC_manual()",
        "Chip": "4144",
        "Bad_lanes": ", ".join(str(int(lane)) for lane in row["bad_lanes"]),
        "Center_xy": row["center_xy"],
        "Sorted": "TRUE",
        "Perfuse Time": (recorded - timedelta(minutes=13)).strftime("%H:%M:%S"),
        "Euth Time": (recorded - timedelta(minutes=80)).strftime("%H:%M:%S"),
        "Date": _sheet_date(recorded),
        "Time": recorded.strftime("%H:%M:%S"),
        "Age": str(_AGE_DAYS),
        "Simulation": "TRUE",
        "Sheet Name": f"Data_{recorded.year}",
    }


def _sheet_date(moment: datetime) -> str:
    """The sheet's US date text without zero padding: ``4/21/2024``."""
    return f"{moment.month}/{moment.day}/{moment.year}"
