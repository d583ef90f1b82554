"""The per-recording check, run just before a recording's steps: cheap reads only, no raw data."""

from __future__ import annotations

from pathlib import Path

from ..config import PipelineConfig, RecordingInputs
from ..inputs import INPUTS
from ..steps import REGISTRY
from ..steps.registry import Registry
from ..store import OutputFile
from .report import Report


def check_recording(rec: RecordingInputs, config: PipelineConfig, steps: str | None = None,
                    registry: Registry = REGISTRY) -> Report:
    """Check what the selected steps read of this recording.

    Errors: the output path is a folder; a step's upstream output is neither in the file nor
    selected. Warnings: an existing output HDF5 cannot read (it will be replaced). Then each
    input the selected steps read runs its ``check_recording`` (the raw files' headers, the
    sheet row, the label folder, ...).
    """
    report = Report()
    selected = registry.select(steps, config.enabled_steps)
    names = {step.name for step in selected}
    reads = set().union(*(step.reads for step in selected))
    output = Path(rec.output_path)
    if output.is_dir():
        report.error(f"{output} is a folder; the output of {rec.recording_id} must be a file there: move the folder")
        return report
    _check_upstream(report, rec, selected, names)
    for name in sorted(reads):
        if INPUTS[name].check_recording is not None:
            INPUTS[name].check_recording(report, rec, config)
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


def refuse_recording(rec: RecordingInputs, report: Report, steps: str | None = None,
                     registry: Registry = REGISTRY) -> str:
    """The one-line reason of a recording's pre-flight errors, noted on its first selected step.

    Noted in the output file's record, so ``status`` and ``--only-failed`` see the failure (a
    file that cannot take the note, e.g. an output path that is a folder, is left alone: the
    reason is returned all the same).
    """
    reason = "; ".join(e.removeprefix(f"{rec.recording_id}: ") for e in report.errors)
    first = registry.select(steps)[0].name
    try:
        OutputFile(rec.output_path).record_failure(first, f"pre-flight: {reason}")
    except OSError:
        pass
    return reason
