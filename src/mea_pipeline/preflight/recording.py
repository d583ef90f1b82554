"""The per-recording check, run just before a recording's steps: cheap reads only, no raw data."""

from __future__ import annotations

from pathlib import Path

from ..config import PipelineConfig, RecordingInputs
from ..inputs import cached_table
from ..mapping import windows_path_hint
from ..mcs_io import McsFormatError, check_header
from ..sheet.table import canonical_file_name, match_row
from ..steps import REGISTRY
from ..steps.registry import Registry
from ..store import OutputFile
from .report import Report


def check_recording(rec: RecordingInputs, config: PipelineConfig, steps: str | None = None,
                    registry: Registry = REGISTRY) -> Report:
    """Check what the selected steps read of this recording.

    Errors: the output path is a folder; a step's upstream output is neither in the file nor
    selected; a raw file the steps read is missing (with a ``--path-map`` hint for a Windows
    path), unreadable or not an MCS file of its kind (header only, see
    :func:`~mea_pipeline.mcs_io.check_header`). Warnings: no sheet row, no label folder, an
    existing output HDF5 cannot read (it will be replaced).
    """
    report = Report()
    selected = registry.select(steps)
    names = {step.name for step in selected}
    reads = set().union(*(step.reads for step in selected))
    output = Path(rec.output_path)
    if output.is_dir():
        report.error(f"{output} is a folder; the output of {rec.recording_id} must be a file there: move the folder")
        return report
    _check_upstream(report, rec, selected, names)
    for kind, path in (("cmcr", rec.cmcr_path), ("cmtr", rec.cmtr_path)):
        if kind in reads:
            try:
                check_header(path, kind)
            except McsFormatError as exc:
                hint = windows_path_hint(path) if path is None or not Path(path).exists() else ""
                report.error(f"{rec.recording_id}: {exc}{hint}")
    table = config.sheet_table()
    if "sheet" in reads and table is not None:
        sheet = report.attempt(cached_table, table)
        if sheet is not None and match_row(sheet, rec.recording_id)[0] is None:
            report.warning(f"{rec.recording_id}: no row of {table} has File_name "
                           f"{canonical_file_name(rec.recording_id)!r}; step 8 records a warning")
    if "labels" in reads and config.labels is not None and not (Path(config.labels) / rec.recording_id).is_dir():
        report.warning(f"{rec.recording_id}: no label folder {Path(config.labels) / rec.recording_id}; "
                       "every unit is 'no_label'")
    return report


def _check_upstream(report: Report, rec: RecordingInputs, selected, names: set[str]) -> None:
    output = OutputFile(rec.output_path)
    with output.open() as h5:
        if h5 is None and rec.output_path.exists():
            report.warning(f"{rec.output_path} exists but HDF5 cannot read it (truncated?); the run replaces it "
                           "with a new file (move it away first to keep it)")
    records = output.verified_records()
    for step in selected:
        missing = [u for u in step.upstream if u not in names and u not in records]
        if missing:
            report.error(f"{rec.recording_id}: step {step.name} reads the output of {', '.join(missing)}, which "
                         f"{rec.output_path.name} does not hold; include it in --steps")
            return
