"""Where a batch takes the lab's sheet from: gspread once per batch, else the local CSV export.

:func:`resolve_sheet` runs once per batch: with service-account credentials (``--gsheet-credentials``,
config key ``gsheet_credentials`` or the environment variable ``MEA_PIPELINE_GSHEET_CREDENTIALS``)
it fetches every ``Data_*`` worksheet of the spreadsheet ``--gsheet-title`` and writes a dated
snapshot next to the outputs; every recording of the batch then reads that snapshot. Without
credentials, or when the API fails, the recordings read ``--gsheet-csv``; gsheet_metadata records
which source it used.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import PipelineConfig

CREDENTIALS_ENV = "MEA_PIPELINE_GSHEET_CREDENTIALS"
# Base URL standing in for Google's APIs (a local stand-in in tests, or a proxy); unset = Google.
API_BASE_ENV = "MEA_PIPELINE_GOOGLE_API_BASE"


def credentials_path(config: PipelineConfig) -> Path | None:
    value = config.gsheet_credentials or os.environ.get(CREDENTIALS_ENV)
    return Path(value).expanduser() if value else None


def api_endpoints() -> dict | None:
    base = os.environ.get(API_BASE_ENV)
    if not base:
        return None
    base = base.rstrip("/")
    return {"sheets": f"{base}/v4/spreadsheets", "drive": f"{base}/drive/v3/files"}


def resolve_sheet(config: PipelineConfig, output_dir: Path) -> tuple[PipelineConfig, str]:
    """The config every recording of the batch uses, and one line saying which sheet source it is."""
    from .fetch import SheetUnavailable, fetch_sheet_table
    from .table import write_snapshot

    credentials = credentials_path(config)
    fallback = (f"--gsheet-csv {config.gsheet_csv}" if config.gsheet_csv
                else "no sheet (gsheet_metadata records a warning)")
    if credentials is None:
        return (dataclasses.replace(config, sheet_source="csv" if config.gsheet_csv else None),
                f"sheet: no credentials, using {fallback}")
    try:
        table = fetch_sheet_table(credentials, config.gsheet_title, api_endpoints=api_endpoints())
    except SheetUnavailable as exc:
        return (dataclasses.replace(config, sheet_source=f"csv (gspread failed: {exc})" if config.gsheet_csv else None),
                f"sheet: {exc}; using {fallback}")
    snapshot = write_snapshot(table, Path(output_dir))
    return (dataclasses.replace(config, sheet_snapshot=snapshot, sheet_source="gspread"),
            f"sheet: fetched '{config.gsheet_title}' ({len(table)} rows) -> {snapshot}")
