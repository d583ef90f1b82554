"""Inputs of steps 8-10 from outside the recording: the sheet, the label folder, the CNN weights.

A missing sheet row or label folder is a warning (the steps record it and complete, as the
product decides); a sheet CSV that cannot be read, a ``--labels`` path that is not a folder, or
weights that do not load into the lab's architecture are errors.
"""

from __future__ import annotations

from pathlib import Path

from ..config import PipelineConfig
from ..inputs import cached_table
from ..labels import LABEL_CLASSES
from ..sheet.source import credentials_path
from .report import Report


def check_sheet(report: Report, config: PipelineConfig) -> None:
    """The sheet table step 8 will read, or the credentials the batch fetches it with."""
    credentials = credentials_path(config)
    if credentials is not None and not credentials.is_file():
        report.warning(f"--gsheet-credentials {credentials} not found: the sheet cannot be fetched, "
                       f"step 8 reads {config.gsheet_csv or 'no sheet'}")
    table = config.sheet_table()
    if table is not None:
        report.attempt(cached_table, table)
    elif credentials is None:
        report.warning("no sheet: pass --gsheet-csv FILE or --gsheet-credentials FILE; step 8 records a warning "
                       "and steps 10-11 run without bad lanes and retina orientation")


def check_labels_root(report: Report, config: PipelineConfig) -> None:
    """A ``--labels`` given must be a folder (a recording without its sub-folder is only a warning)."""
    if config.labels is not None and not Path(config.labels).is_dir():
        report.error(f"--labels {config.labels} is not a folder; give the folder holding "
                     f"<recording_id>/{{{','.join(LABEL_CLASSES)}}} (or leave --labels out: every unit is "
                     "then 'no_label')")


def check_model(report: Report, config: PipelineConfig) -> None:
    """The CNN weights load strictly into the lab's architecture on the configured device."""
    # torch is imported only when step 10 is selected.
    from ..ap_tracking.model_io import load_model

    report.attempt(load_model, config.ap_model, config.device)
