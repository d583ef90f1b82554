"""What the batch does around each recording's run: its lock and a second look.

:func:`guarded` wraps the batch's per-recording task. The recording's lock
(:mod:`mea_pipeline.recording_lock`) is taken first, so two batches on one output folder, or a
recording named twice by the mapping CSV, never run it at once: the second reports it as busy
and skips it. With the lock held, the batch's plan is trusted unless the output file changed
since the plan looked at it: then another run wrote it meanwhile, and an output it completed is
skipped. The recording's own pre-flight check is the first task of its run
(:func:`mea_pipeline.flows.process_recording.process_recording`).
"""

from __future__ import annotations

import functools
import time

from prefect import get_run_logger
from prefect.states import Failed

from mea_pipeline.batch_options import BatchOptions
from mea_pipeline.batch_plan import RecordingDecision
from mea_pipeline.config import PipelineConfig, RecordingInputs
from mea_pipeline.faults import describe
from mea_pipeline.recording_lock import RecordingBusy, RecordingLock
from mea_pipeline.runner import is_complete

from mea_pipeline.flows.batch_report import counts, say


def guarded(run_recording):
    """Decorate ``run_recording(decision, config, options, position)`` (the batch's task). With
    ``options.via_deployment`` the lock is held here while a worker runs the recording."""

    @functools.wraps(run_recording)
    def run(decision: RecordingDecision, config: PipelineConfig, options: BatchOptions, position: str):
        logger = get_run_logger()
        recording = decision.recording
        t0 = time.perf_counter()
        try:
            lock = RecordingLock(recording.output_path).acquire()
        except RecordingBusy as busy:
            return skipped_row(logger, position, recording, f"busy: {busy.reason}")
        except OSError as exc:
            return _failed(position, recording, "lock", describe(exc), t0)
        with lock:
            rerun = options.overwrite or options.recheck
            if not rerun and decision.output_changed() and is_complete(recording, config, options.steps):
                return skipped_row(logger, position, recording, "output complete: another run finished it")
            return run_recording(decision, config, options, position)

    return run


def skipped_row(logger, position: str, recording: RecordingInputs, note: str) -> dict:
    """The summary row of a recording the batch skips, its line printed."""
    say(logger, f"{position} {recording.recording_id}: skipped ({note})")
    return {"recording_id": recording.recording_id, "status": "skipped", "note": note,
            **counts(recording.output_path)}


def _failed(position: str, recording: RecordingInputs, step: str, message: str, t0: float):
    # On the terminal only: the task's log gets the same text as its final state's message.
    print(f"{position} {recording.recording_id}: FAILED at {step}: {message}", flush=True)
    row = {"recording_id": recording.recording_id, "status": "failed", "failed_step": step, "message": message,
           "seconds": round(time.perf_counter() - t0, 2), **counts(recording.output_path)}
    return Failed(message=f"{recording.recording_id} failed at {step}: {message}", data=row)
