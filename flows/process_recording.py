"""Per-recording subflow: its pre-flight check, the selected steps in order, each a cached Prefect
task, then the QC report.

A refused pre-flight check fails this flow with the reason before any step runs; a failing step
fails this flow with the step's error as its message; the steps before it have already been
committed to the output file. A recording whose selected steps read raw files
holds one slot of the ``mea-raw-reads`` global concurrency limit while it runs, so at most that
many recordings read the (network) drives at once, across every batch sharing the server.
"""

# No `from __future__ import annotations`: on a Dask worker this flow arrives pickled by value,
# without its module's globals, and Prefect validates its parameters from the annotations, which
# must therefore be the classes themselves, not their names.
from contextlib import contextmanager, nullcontext
from pathlib import Path

from prefect import flow
from prefect.concurrency.sync import concurrency
from prefect.context import FlowRunContext
from prefect.logging.loggers import flow_run_logger

from mea_pipeline.config import PipelineConfig, RecordingInputs
from mea_pipeline.runner import STEP_WARNING, output_summary, stopped_by_time_limit
from mea_pipeline.steps import REGISTRY
from mea_pipeline.tasks.preflight import recording_preflight
from mea_pipeline.tasks.qc import publish_qc, qc_report
from mea_pipeline.tasks.quiet_logs import say_each_failure_once
from mea_pipeline.tasks.steps import step_task

CACHE_FOLDER = ".prefect-cache"
RAW_READS_LIMIT = "mea-raw-reads"
# A slot is leased and renewed while held: a killed process's slot frees itself within this time.
RAW_SLOT_LEASE_S = 60  # the server accepts no shorter lease
RAW_SLOT_POLL_S = 10


def cache_folder(recording: RecordingInputs) -> Path:
    """Prefect's cache records live beside the outputs they describe."""
    return recording.output_path.parent / CACHE_FOLDER


@contextmanager
def raw_read_slot(logger):
    """Hold one slot of the raw-read limit, saying so while every slot is busy."""
    waited, acquired = 0.0, False
    while True:
        try:
            with concurrency(RAW_READS_LIMIT, occupy=1, timeout_seconds=RAW_SLOT_POLL_S,
                             lease_duration=RAW_SLOT_LEASE_S):
                acquired = True
                if waited:
                    logger.info(f"got a raw-read slot after {waited:.0f} s")
                yield
                return
        except TimeoutError:
            if acquired:
                raise  # the steps' own timeout, not the wait for a slot
            waited += RAW_SLOT_POLL_S
            logger.warning(f"waiting for a raw-read slot ('{RAW_READS_LIMIT}' limit, {waited:.0f} s so far): "
                           "other recordings are reading raw files")


def step_line(result: dict) -> str:
    """One log line per step: status, time and the step's own counts."""
    counts = ", ".join(f"{k}={v}" for k, v in result.items()
                       if k not in ("step", "status", "seconds", "warnings") and not isinstance(v, (dict, list)))
    warnings = f", {len(result['warnings'])} warning(s)" if result.get("warnings") else ""
    return f"{result['step']}: {result['status']} in {result['seconds']} s{warnings}" + (f" ({counts})" if counts else "")


def recording_logger():
    """The logger of this recording's own run, so its lines are on the recording's page in the UI.

    Not ``get_run_logger()``: a subflow called from the batch's task still sees that task's
    context, and its lines would land on the batch's task instead.
    """
    context = FlowRunContext.get()
    return flow_run_logger(context.flow_run, context.flow)


@flow(name="process_recording", flow_run_name="rec-{recording.recording_id}")
def process_recording(recording: RecordingInputs, config: PipelineConfig, steps: str | None = None,
                      force: bool = False) -> dict:
    logger = recording_logger()
    say_each_failure_once()
    # Checked here, in the recording's own run: a refused recording is a red run of its own in the UI.
    recording_preflight(recording, config, steps)
    selected = REGISTRY.select(steps, config.enabled_steps)
    # Acquired at flow level: taken inside a task, Prefect 3.9 hands a just-released slot on
    # only after a ~2 s poll.
    reads_raw = any(step.needs_raw for step in selected)
    computed, cached = [], []
    with raw_read_slot(logger) if reads_raw else nullcontext():
        for step in selected:
            state = step_task(step.name).with_options(
                timeout_seconds=config.timeout_for(step),
                result_storage=cache_folder(recording),
                refresh_cache=force,
            )(recording, config, force, return_state=True)
            if state.name == "TimedOut":
                raise stopped_by_time_limit(recording, step.name, config.timeout_for(step))
            result = state.result()  # raises the step's error: this recording stops here
            if state.name == "Cached":
                logger.info(f"{step.name}: cached")
                cached.append(step.name)
                continue
            computed.append(step.name)
            logger.info(step_line(result))
            for warning in result["warnings"]:
                # In the run's log and UI; the terminal shows step warnings once, in the summary (run_log).
                logger.warning(f"{step.name}: {warning}", extra={STEP_WARNING: True})
    qc = qc_report.with_options(result_storage=cache_folder(recording))(recording, return_state=True)
    if qc.is_completed():  # drawn now or cached: shown on this run either way
        publish_qc(qc.result())
    else:
        # The science is committed; a figure that cannot be drawn is reported, not fatal.
        logger.warning(f"QC report of {recording.recording_id} failed: {qc.message}")
    return {"recording_id": recording.recording_id, **output_summary(recording.output_path),
            "computed": computed, "cached": cached}


def counts_line(summary: dict) -> str:
    """``Units: 6, Steps: 11 (computed: <step>, <step>; 9 cached)``: what a finished run did."""
    line = f"Units: {summary['n_units']}, Steps: {len(summary['completed_steps'])}"
    if "computed" not in summary:  # a worker's run: its result stays with the worker
        return line
    computed, cached = summary["computed"], summary["cached"]
    if not cached:
        return f"{line} (all computed)"
    if not computed:
        return f"{line} (all cached)"
    return f"{line} (computed: {', '.join(computed)}; {len(cached)} cached)"
