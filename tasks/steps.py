"""The Prefect task of each pipeline step, made from its declaration (a thin wrapper around ``runner.run_step``).

A step retries on transient I/O errors as many times as it declares (``Step.retries``; by
default the steps that read the raw files, on network drives, retry twice); deterministic errors
(bad input, disk full, permission denied, a step's own error) are never retried
(:mod:`mea_pipeline.faults`). Results passed through Prefect are
small summaries; arrays stay in the HDF5.
"""

from __future__ import annotations

from prefect import Task, task

from mea_pipeline.config import PipelineConfig, RecordingInputs
from mea_pipeline.faults import is_transient
from mea_pipeline import runner
from mea_pipeline.steps import REGISTRY
from mea_pipeline.steps.registry import Step

from .caching import step_cache_key
from .progress import StepProgress

RETRY_DELAYS_S = [10, 60]
_TASKS: dict[Step, Task] = {}


def transient_io_error(task, task_run, state) -> bool:
    """Retry only a transient I/O error (e.g. a network drive hiccup): never disk full,
    permission denied or bad data, which fail the same way on every attempt."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - we classify whatever the step raised
        return is_transient(exc.__cause__ or exc)
    return False


def retries_of(step: Step) -> int:
    """The step's declared retries; by default steps that read the raw files (network drives) retry."""
    if step.retries is not None:
        return step.retries
    return len(RETRY_DELAYS_S) if step.needs_raw else 0


def retry_delays(count: int) -> list[int]:
    """Seconds before each retry: the default delays, the last one repeated for more retries."""
    return [RETRY_DELAYS_S[min(i, len(RETRY_DELAYS_S) - 1)] for i in range(count)]


def step_task(name: str) -> Task:
    """The Prefect task of step ``name`` (task name = step name, run name shows the recording).

    Made once per declaration, so a step registered at run time gets its task like the others.
    """
    step = REGISTRY[name]
    if step not in _TASKS:
        def run(recording: RecordingInputs, config: PipelineConfig, force: bool = False) -> dict:
            progress = StepProgress(f"{name} {recording.recording_id}")
            try:
                return runner.run_step(name, recording, config, force=force, progress=progress)
            finally:
                progress.close()

        run.__name__ = name
        run.__doc__ = step.description
        count = retries_of(step)
        retries = {"retries": count, "retry_delay_seconds": retry_delays(count),
                   "retry_condition_fn": transient_io_error} if count else {}
        _TASKS[step] = task(
            run,
            name=name,
            task_run_name=f"{name}-{{recording.recording_id}}",
            description=step.description,
            cache_key_fn=step_cache_key,
            persist_result=True,
            **retries,
        )
    return _TASKS[step]
