"""Pre-flight checks as Prefect tasks: the batch's (one run in the UI, warnings in its log and on the
terminal) and each recording's (the first task of the recording's own run, red with the reason)."""

from __future__ import annotations

from collections.abc import Sequence

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mea_pipeline.config import PipelineConfig, RecordingInputs
from mea_pipeline.preflight import check_batch, check_recording, refuse_recording
from mea_pipeline.runner import StepFailed


@task(name="preflight", cache_policy=NO_CACHE)
def preflight(config: PipelineConfig, steps: str | None, output: str,
              selection: Sequence[RecordingInputs]) -> list[str]:
    """Check every shared input of the batch before any recording starts; returns the warnings.

    Raises
    ------
    PreflightError
        One line naming the first bad input (the batch stops; the command line exits with 2).
    """
    report = check_batch(config, steps, output, selection)
    logger = get_run_logger()
    for warning in report.warnings:
        # Printed here and logged at INFO: a WARNING record would reach the terminal a second time.
        print(f"warning: {warning}", flush=True)
        logger.info(f"warning: {warning}")
    report.raise_for_errors()
    return report.warnings


class PreflightFailed(StepFailed):
    """A recording refused by its pre-flight check (``step`` is ``preflight``)."""

    def __init__(self, recording_id: str, reason: str):
        super().__init__(recording_id, "preflight", reason, heading="refused by pre-flight")


@task(name="preflight", task_run_name="preflight-{recording.recording_id}", cache_policy=NO_CACHE)
def recording_preflight(recording: RecordingInputs, config: PipelineConfig, steps: str | None) -> None:
    """What the selected steps read of this recording (raw headers, upstream outputs, sheet row, labels).

    Raises
    ------
    PreflightFailed
        The recording's errors in one line, also noted in its output file; no step runs.
    """
    report = check_recording(recording, config, steps)
    if report.errors:
        raise PreflightFailed(recording.recording_id, refuse_recording(recording, report, steps))
