"""Per-recording subflow: the selected steps in order, each a cached Prefect task.

A failing step fails this flow with the step's error as its message; the steps before it have
already been committed to the output file. A recording whose selected steps read raw files
holds one slot of the ``mea-raw-reads`` global concurrency limit while it runs, so at most that
many recordings read the (network) drives at once, across every batch sharing the server.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from prefect import flow
from prefect.concurrency.sync import concurrency

from mea_pipeline.config import PipelineConfig, RecordingInputs
from mea_pipeline.runner import output_summary
from mea_pipeline.steps import REGISTRY
from mea_pipeline.tasks.steps import step_task

CACHE_FOLDER = ".prefect-cache"
RAW_READS_LIMIT = "mea-raw-reads"


def cache_folder(recording: RecordingInputs) -> Path:
    """Prefect's cache records live beside the outputs they describe."""
    return recording.output_path.parent / CACHE_FOLDER


@flow(name="process_recording", flow_run_name="rec-{recording.recording_id}")
def process_recording(recording: RecordingInputs, config: PipelineConfig, steps: str | None = None,
                      force: bool = False) -> dict:
    selected = REGISTRY.select(steps)
    # Acquired at flow level: taken inside a task, Prefect 3.9 hands a just-released slot on
    # only after a ~2 s poll.
    reads_raw = any(step.needs_raw for step in selected)
    with concurrency(RAW_READS_LIMIT, occupy=1) if reads_raw else nullcontext():
        for step in selected:
            step_task(step.name).with_options(
                timeout_seconds=config.timeout_for(step.name),
                result_storage=cache_folder(recording),
                refresh_cache=force,
            )(recording, config, force)
    return {"recording_id": recording.recording_id, **output_summary(recording.output_path)}
