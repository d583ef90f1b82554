"""One Prefect task per pipeline step; each is a thin wrapper around ``runner.run_step``.

Steps that read the raw files retry on transient I/O errors (network drives); deterministic
errors (bad input, a step's own error) are never retried. Results passed through Prefect are
small summaries; arrays stay in the HDF5.
"""

from __future__ import annotations

from prefect import task

from mea_pipeline.config import PipelineConfig, RecordingInputs
from mea_pipeline.errors import PipelineError
from mea_pipeline.runner import run_step
from mea_pipeline.steps import REGISTRY

from .caching import step_cache_key

RETRY_DELAYS_S = [10, 60]


def transient_io_error(task, task_run, state) -> bool:
    """Retry only when the step failed on I/O (e.g. a network drive hiccup), not on bad data."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - we classify whatever the step raised
        cause = exc.__cause__ or exc
        return isinstance(cause, (OSError, TimeoutError)) and not isinstance(cause, PipelineError)
    return False


def step_task(name: str):
    """The Prefect task of step ``name`` (task name = step name, run name shows the recording)."""
    step = REGISTRY[name]

    def run(recording: RecordingInputs, config: PipelineConfig, force: bool = False) -> dict:
        return run_step(name, recording, config, force=force)

    run.__name__ = name
    run.__doc__ = step.description
    return task(
        run,
        name=name,
        task_run_name=f"{name}-{{recording.recording_id}}",
        description=step.description,
        cache_key_fn=step_cache_key,
        persist_result=True,
        retries=len(RETRY_DELAYS_S) if step.needs_raw else 0,
        retry_delay_seconds=RETRY_DELAYS_S,
        retry_condition_fn=transient_io_error,
    )


load_recording = step_task("load_recording")
section_time = step_task("section_time")
section_spike_times = step_task("section_spike_times")
dense_noise_sta = step_task("dense_noise_sta")
file_metadata = step_task("file_metadata")
