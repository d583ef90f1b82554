"""Run steps on one recording, without Prefect.

``plan_step`` answers "what is this step's cache key, and does the output file already hold
its result?"; ``run_step`` runs it inside a store transaction when it does not. The Prefect
tasks, ``run-one`` and the benchmarks all go through these two functions, so the file and
Prefect's cache always agree on what is done.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .config import PipelineConfig, RecordingInputs, params_json
from .errors import PipelineError, RecordingError, StepDependencyError
from .faults import classify, describe
from .inputs import fingerprints
from .steps import REGISTRY
from .steps.registry import Registry, Step, StepContext
from .store import OutputFile, StepRecord

# Set to a step name to kill the process right before that step commits (crash-safety tests).
FAULT_ENV = "MEA_PIPELINE_KILL_BEFORE_COMMIT"
# A run's log record of a step warning carries this attribute (True): the terminal shows step warnings
# once, in the summary of the batch or run (warning_lines), not once per recording.
STEP_WARNING = "mea_pipeline_step_warning"
WARNING_LINES = 10  # distinct step warnings a summary lists before counting the rest


class StepFailed(RecordingError):
    """A step raised; the message names the recording and the step (or what ``heading`` says failed)."""

    def __init__(self, recording_id: str, step: str, message: str, heading: str | None = None):
        super().__init__(f"{recording_id}: {heading or f'step {step} failed'}: {message}")
        self.recording_id = recording_id
        self.step = step
        self.reason = message


@dataclass(frozen=True)
class StepPlan:
    step: Step
    params: object
    fingerprint: dict
    cache_key: str
    up_to_date: bool


def plan_step(step: Step, rec: RecordingInputs, config: PipelineConfig,
              records: dict[str, StepRecord] | None = None) -> StepPlan:
    """Cache key of ``step`` for this recording, and whether the output file already has it.

    ``records`` are the output file's verified records (read from the file when omitted).
    Upstream steps must be done: their record identities are part of the key, so a change
    upstream invalidates every step that reads it.
    """
    if records is None:
        records = OutputFile(rec.output_path).verified_records()
    missing = [u for u in step.upstream if u not in records]
    if missing:
        raise StepDependencyError(
            f"{rec.recording_id}: step {step.name} reads the output of {', '.join(missing)}, which "
            f"{rec.output_path} does not hold (or holds out of date); include it in --steps"
        )
    params = config.params_for(step)
    fingerprint = {
        "recording_id": rec.recording_id,
        **fingerprints(step.reads, rec, config),
        "upstream": {u: f"{records[u].cache_key}:{records[u].output_digest}" for u in step.upstream},
    }
    blob = json.dumps({"step": step.name, "version": step.version, "params": params_json(params),
                       "inputs": fingerprint}, sort_keys=True)
    key = f"{step.name}-{rec.recording_id}-{hashlib.sha256(blob.encode()).hexdigest()[:24]}"
    current = records.get(step.name)
    return StepPlan(step, params, fingerprint, key,
                    up_to_date=current is not None and current.cache_key == key and not current.last_error
                    and step.outside_files_present(rec, params))


def run_step(name: str, rec: RecordingInputs, config: PipelineConfig,
             registry: Registry = REGISTRY, force: bool = False,
             progress: Callable[[int, int], None] | None = None) -> dict:
    """Run one step unless the output file already holds its current result (or ``force``).

    Returns a small summary (``step``, ``status`` 'done' or 'up-to-date', ``seconds``,
    ``warnings`` and the step's own counts). Raises :class:`StepFailed` on any error, after
    which the output file is exactly as before the step except for the step record's
    ``last_error``: one line naming the kind of fault (disk full, permission denied, ...) and
    what to do. ``progress(done, total)`` is called by steps that loop over units.
    """
    step = registry[name]
    t0 = time.perf_counter()
    try:
        plan = plan_step(step, rec, config)
        if plan.up_to_date and not force:
            return {"step": name, "status": "up-to-date", "seconds": 0.0, "warnings": []}
        output = OutputFile(rec.output_path)
        with output.transaction(name, registry.dependents(name), registry.names()) as tx:
            context = StepContext(rec, config, tx, step, progress=progress)
            summary = step.run(context, plan.params) or {}
            if os.environ.get(FAULT_ENV) == name:
                os.kill(os.getpid(), signal.SIGKILL)
            tx.commit(cache_key=plan.cache_key, code_version=step.version,
                      parameters=params_json(plan.params), input_fingerprint=plan.fingerprint,
                      warnings=context.warnings, summary=summary)
    except Exception as exc:  # noqa: BLE001 - every step error is reported with its step
        failure = StepFailed(rec.recording_id, name, describe(exc))
        try:
            OutputFile(rec.output_path).record_failure(name, failure.reason)
        except OSError as note_error:  # e.g. the disk is still full: the failure is raised all the same
            failure = StepFailed(rec.recording_id, name,
                                 f"{failure.reason} (not noted in {rec.output_path.name}: {classify(note_error)})")
        raise failure from exc
    except BaseException as exc:
        # Stopped from outside (a step timeout cancels the task's thread, or Ctrl-C): noted, so
        # that the step counts as failed and runs again, then passed on unchanged.
        reason = f"stopped: {type(exc).__name__}" + (f": {exc}" if str(exc) else "")
        with contextlib.suppress(OSError):
            OutputFile(rec.output_path).record_failure(name, reason)
        raise
    # The step's own counts first: its summary cannot overwrite what the runner reports.
    return {**summary, "step": name, "status": "done", "seconds": round(time.perf_counter() - t0, 3),
            "warnings": context.warnings}


def stopped_by_time_limit(rec: RecordingInputs, name: str, limit_s: float) -> StepFailed:
    """The failure of a step its time limit stopped, noted in the output file with how to raise the limit.

    Whoever enforces the limit (the step's Prefect task) calls this; the step itself only saw
    itself cancelled.
    """
    failure = StepFailed(rec.recording_id, name, f"time limit: stopped after {limit_s:g} s; raise it with "
                                                 f"[timeouts] {name} = <seconds> in the config")
    with contextlib.suppress(OSError):
        OutputFile(rec.output_path).record_failure(name, failure.reason)
    return failure


def run_recording(rec: RecordingInputs, config: PipelineConfig, steps: str | None = None,
                  registry: Registry = REGISTRY, force: bool = False) -> dict:
    """Run the selected steps in order; stops at the first failing step (raising StepFailed)."""
    results = [run_step(step.name, rec, config, registry, force)
               for step in registry.select(steps, config.enabled_steps)]
    return {"recording_id": rec.recording_id, "steps": results, **output_summary(rec.output_path)}


def up_to_date(rec: RecordingInputs, config: PipelineConfig, steps: str | None = None,
               registry: Registry = REGISTRY) -> bool:
    """True when every selected step's cache key, raw-file fingerprints included, matches the file.

    What ``--recheck`` asks before running a recording: a recording that passes has nothing to
    compute, so no subflow is started for it.
    """
    records = OutputFile(rec.output_path).verified_records()
    try:
        return all(plan_step(step, rec, config, records).up_to_date
                   for step in registry.select(steps, config.enabled_steps))
    except (PipelineError, OSError):
        return False  # a missing upstream or an unreadable input: the subflow reports it


def output_summary(path: Path) -> dict:
    """Units and completed steps of an output file (the lab's 'Units: n, Steps: k' line)."""
    with OutputFile(path).open() as h5:
        if h5 is None:
            return {"n_units": 0, "completed_steps": []}
        units = len(h5["units"]) if "units" in h5 else 0
        done = [s.decode() if isinstance(s, bytes) else s for s in h5["pipeline/completed_steps"][()]] \
            if "pipeline/completed_steps" in h5 else []
        return {"n_units": units, "completed_steps": done}


def recorded_warnings(path: Path, steps: str | None = None, enabled: Iterable[str] = (),
                      registry: Registry = REGISTRY) -> list[list[str]]:
    """``[step, warning]`` of every warning the selected steps' records in the output file hold
    (``enabled``: the optional steps the config enables)."""
    with OutputFile(path).open() as h5:
        if h5 is None:
            return []
        records = [StepRecord.read(h5, step.name) for step in registry.select(steps, tuple(enabled))]
    return [[record.step, warning] for record in records if record is not None for warning in record.warnings]


def warning_lines(per_recording: Iterable[list], limit: int = WARNING_LINES) -> list[str]:
    """The step warnings of several recordings, one line per distinct warning with its count of recordings.

    ``per_recording`` holds each recording's ``[step, warning]`` pairs (:func:`recorded_warnings`).
    A warning about the run's inputs (e.g. ap_tracking's packaged weights) has the same words on every
    recording, so a batch of 37 shows it once, "on 37 recordings"; the most frequent come first and
    past ``limit`` lines one line counts the rest (every step record still holds its own).
    """
    counts: Counter[tuple[str, str]] = Counter()
    for pairs in per_recording:
        counts.update(list(dict.fromkeys(tuple(pair) for pair in pairs)))   # a recording counts once
    ranked = counts.most_common()   # ties keep the order first seen
    lines = [f"warning: {step} on {n} recording{'s' if n != 1 else ''}: {warning}"
             for (step, warning), n in ranked[:limit]]
    if len(ranked) > limit:
        lines.append(f"warning: {len(ranked) - limit} other step warning(s): in each recording's step records "
                     f"(pipeline/steps/<step>) and the run's log")
    return lines


def is_complete(rec: RecordingInputs, config: PipelineConfig, steps: str | None = None,
                registry: Registry = REGISTRY) -> bool:
    """True when every selected step is done in the output file with its current parameters.

    Raw-file fingerprints are not re-read here (the raw files may be offline); a step counts
    when its record is intact, its parameters and code version match the configuration, its
    last attempt did not fail and the files it writes beside the output file exist.
    """
    records = OutputFile(rec.output_path).verified_records()
    for step in registry.select(steps, config.enabled_steps):
        record, params = records.get(step.name), config.params_for(step)
        if record is None or record.last_error or record.code_version != step.version \
                or record.parameters != params_json(params) or not step.outside_files_present(rec, params):
            return False
    return True
