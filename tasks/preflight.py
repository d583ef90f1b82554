"""The batch's pre-flight check as a Prefect task: one run in the UI, warnings in its log and on the terminal."""

from __future__ import annotations

from collections.abc import Sequence

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mea_pipeline.config import PipelineConfig, RecordingInputs
from mea_pipeline.preflight import check_batch


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
