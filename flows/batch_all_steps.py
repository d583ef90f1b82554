"""Batch flow: every matched recording of the mapping CSV through the pipeline.

    python flows/batch_all_steps.py --csv mapping.csv --start 0 --end 3 --debug

is the same as ``mea-pipeline batch ...``. The batch options (``[batch]`` of ``config_file``
overridden by the parameters given) are resolved, the recordings planned
(:func:`mea_pipeline.batch_plan.plan_batch`: complete outputs are skipped unless ``overwrite``)
and the batch's pre-flight run once, inside the flow, so the script and every deployment behave
alike; the command line does the same before Prefect starts and hands the result over
(``checked``). At most ``concurrency`` recordings run at once and at most ``raw_reads``
recordings read raw files at once; one failing recording never stops the others. When a
selected step reads the lab's sheet, it is fetched once for the whole batch (a dated snapshot
next to the outputs) and every recording reads that snapshot.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from prefect import flow, get_run_logger, tags, task
from prefect.context import FlowRunContext, SettingsContext, get_settings_context
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.transactions import CommitMode, transaction

from mea_pipeline.batch_options import BatchOptions
from mea_pipeline.batch_plan import RUN, CheckedBatch, RecordingDecision, plan_batch, scan_to_csv
from mea_pipeline.config import PipelineConfig
from mea_pipeline.runner import StepFailed, output_summary, recorded_warnings, up_to_date
from mea_pipeline.sheet.source import resolve_sheet
from mea_pipeline.steps import REGISTRY

from mea_pipeline.flows.batch_report import BatchProgress, counts, report, say
from mea_pipeline.flows.dispatch import check_deployment, recorded_failure, run_on_deployment
from mea_pipeline.flows.morning_report import prepare_report, send_report
from mea_pipeline.flows.process_recording import counts_line, process_recording
from mea_pipeline.flows.recording_guard import guarded, skipped_row
from mea_pipeline.flows.run_labels import batch_run_name, label_batch_run, link_rerun
from mea_pipeline.flows.server_setup import prepare_server
from mea_pipeline.tasks.preflight import preflight
from mea_pipeline.tasks.quiet_logs import say_each_failure_once


@task(name="recording", task_run_name="recording-{decision.recording.recording_id}")
@guarded
def run_recording(decision: RecordingDecision, config: PipelineConfig, options: BatchOptions, position: str):
    """Run one recording's subflow (here, or as a run of ``options.via_deployment`` on a worker);
    its row of the summary, as a Failed state when it failed.

    Failing this task (not only its subflow) shows the recording red in the batch's graph.
    """
    logger = get_run_logger()
    recording, steps, via_deployment = decision.recording, options.steps, options.via_deployment
    say(logger, f"{position} {recording.recording_id}")
    t0 = time.perf_counter()
    row = {"recording_id": recording.recording_id}
    if options.recheck and not options.overwrite and up_to_date(recording, config, steps):
        # Nothing to compute: no subflow, no task runs.
        say(logger, f"  {recording.recording_id}: up to date (every step's inputs unchanged)")
        return row | {"status": "success", "note": "up to date", "seconds": round(time.perf_counter() - t0, 2),
                      **counts(recording.output_path)}
    if via_deployment:
        state = run_on_deployment(via_deployment, recording, config, steps, options.overwrite).state
    else:
        # The parent flow's heartbeat already tells the server this process is alive; a subflow's
        # own heartbeat thread would add ~1 s per recording at exit (Prefect joins its sleep).
        # The steps' cache records are written as each step ends (EAGER), not when this task ends:
        # this task fails with a failed recording, which would roll back the records of the steps
        # that succeeded, and a rerun from the failed step would recompute them.
        with without_heartbeat(), transaction(commit_mode=CommitMode.EAGER):
            state = process_recording(recording, config, steps, options.overwrite, return_state=True)
    row["seconds"] = round(time.perf_counter() - t0, 2)
    # What the selected steps' records now hold (a worker's run included): the summary lists each once.
    row["warnings"] = recorded_warnings(recording.output_path, steps, config.enabled_steps)
    if state.is_completed():
        # A worker's run keeps no result this process could read: the output file has the counts.
        summary = output_summary(recording.output_path) if via_deployment else state.result()
        say(logger, f"  {recording.recording_id}: {counts_line(summary)}")
        return row | {"status": "success", "n_units": summary["n_units"], "n_steps": len(summary["completed_steps"])}
    step, message = local_failure(state) if not via_deployment else ("", "")
    if not step:  # a worker's run, or a step stopped from outside (timeout): its file says which
        step, recorded = recorded_failure(state, recording.output_path, steps, config.enabled_steps)
        message = message or recorded
    # On the terminal only: the task's own log gets the same line as its final state's message.
    print(f"  {recording.recording_id}: FAILED at {step or '?'}: {message}", flush=True)
    row |= {"status": "failed", "failed_step": step, "message": message, **counts(recording.output_path)}
    return Failed(message=f"{recording.recording_id} failed at {step or '?'}: {message}", data=row)


_quiet_settings = (None, None)  # (settings, the same without heartbeats), made once


@contextmanager
def without_heartbeat():
    """The current Prefect settings with flow heartbeats off.

    What ``temporary_settings`` does, without rebuilding the settings for every recording
    (~50 ms each, validated from scratch).
    """
    global _quiet_settings
    context = get_settings_context()
    source, quiet = _quiet_settings
    if source is not context.settings:
        quiet = context.settings.copy_with_update(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})
        _quiet_settings = (context.settings, quiet)
    with SettingsContext(profile=context.profile, settings=quiet):
        yield


def runs_tasks_here() -> bool:
    """False when the flow's task runner sends tasks to other processes (Dask): then even one
    recording at a time is submitted to it, not run in the flow's thread."""
    return isinstance(FlowRunContext.get().task_runner, ThreadPoolTaskRunner)


def local_failure(state) -> tuple[str, str]:
    """Failed step and message of a subflow run in this process (from the exception it raised)."""
    try:
        state.result()
        return "", state.message or "failed"
    except StepFailed as exc:
        return exc.step, exc.reason
    except Exception as exc:  # noqa: BLE001 - a crash of the subflow itself is reported too
        return "", f"{type(exc).__name__}: {exc}"


@task(name="sheet-snapshot")
def sheet_snapshot(config: PipelineConfig, output: str) -> PipelineConfig:
    """Fetch the lab's sheet once for the batch; the returned config points every recording at it."""
    resolved, note = resolve_sheet(config, Path(output))
    say(get_run_logger(), note)
    return resolved


@flow(name="batch_all_steps", flow_run_name=batch_run_name)
def batch_all_steps(
    csv: str | None = None,
    output: str | None = None,
    start: int | None = None,
    end: int | None = None,
    overwrite: bool | None = None,
    steps: str | None = None,
    concurrency: int | None = None,
    raw_reads: int | None = None,
    path_map: list[str] | None = None,
    only_failed: bool | None = None,
    recheck: bool | None = None,
    recording_ids: list[str] | None = None,
    scan_roots: list[str] | None = None,
    config_file: str | None = None,
    inputs: dict[str, str] | None = None,
    via_deployment: str | None = None,
    checked: CheckedBatch | None = None,
):
    """Process rows [start, end) of the matched recordings; returns the batch summary.

    Every batch parameter left unset comes from ``[batch]`` of ``config_file``; ``inputs``
    (stimuli, playlist, labels, gsheet_csv, ap_model, ...) override the file's input keys.
    ``overwrite`` recomputes every step; ``recheck`` reruns only steps whose cache key changed
    (e.g. a re-sorted .cmtr) instead of skipping complete outputs; ``only_failed`` and
    ``recording_ids`` narrow the selection; ``scan_roots`` scans data folders for the recordings
    instead of reading ``csv``; ``via_deployment`` (``<flow>/<deployment>``) hands each recording
    to Prefect workers as a run of that deployment. ``checked``: the same, already planned and
    pre-flighted by the command line (the other parameters then only name the run).
    """
    logger = get_run_logger()
    say_each_failure_once()
    if checked is None:
        options = BatchOptions.load(
            config_file, csv=csv, output=output, start=start, end=end, overwrite=overwrite, steps=steps,
            concurrency=concurrency, raw_reads=raw_reads, path_map=path_map, only_failed=only_failed,
            recheck=recheck, recording_ids=recording_ids, scan_roots=scan_roots, via_deployment=via_deployment)
        checked = plan_and_check(options, PipelineConfig.load(config_file, REGISTRY, inputs or {}), logger)
    plan, config, options = checked.plan, checked.config, checked.plan.options
    recording_tags = label_batch_run(options)
    prepare_server(options.raw_reads)
    report_to = prepare_report(options.report_webhook) if reports_can_be_sent(options, logger) else None
    if plan.decisions and options.via_deployment:
        check_deployment(options.via_deployment, logger)
    if options.only_failed and plan.to_run:
        reruns = link_rerun([recording.recording_id for recording in plan.to_run])
        if reruns:
            say(logger, f"reruns the failures of: {'; '.join(reruns)}")
    if plan.to_run and any("sheet" in step.reads for step in REGISTRY.select(options.steps, config.enabled_steps)):
        config = sheet_snapshot(config, options.output)

    progress = BatchProgress(len(plan.decisions))
    with tags(*recording_tags), recording_runs(options.concurrency) as start_run:
        runs = []
        for index, decision in enumerate(plan.decisions, start=1):
            position = f"[{index}/{len(plan.decisions)}]"
            if decision.action == RUN:
                runs.append(start_run(decision=decision, config=config, options=options, position=position))
            else:
                progress.finished(skipped_row(logger, position, decision.recording, decision.reason))
        for run in runs:
            progress.finished(run.result(raise_on_failure=False))
    summary = progress.summary(options)
    state = report(summary, logger)
    if report_to:
        send_report(summary, options, config_file, report_to)
    return state


def reports_can_be_sent(options: BatchOptions, logger) -> bool:
    """A report needs a lab server: a temporary one (no ``mea-pipeline server`` running) stops with
    the command, before its automations could send anything."""
    if options.report_webhook and not os.environ.get("PREFECT_API_URL"):
        logger.warning("report_webhook: no report is sent: the report goes out through the lab's server, and this "
                       "batch runs on a temporary one (start `mea-pipeline server`)")
        return False
    return bool(options.report_webhook)


def plan_and_check(options: BatchOptions, config: PipelineConfig, logger) -> CheckedBatch:
    """What the command line does before Prefect starts, for a run without one (script, deployment)."""
    csv = None
    if options.scan_roots:
        csv, line, problems = scan_to_csv(options.scan_roots, options.output)
        say(logger, line)
        for problem in problems:
            logger.warning(problem)
    plan = plan_batch(options, config, csv)
    if plan.to_run:  # a rerun of a finished batch reads no input (not even the CNN weights)
        preflight(config, options.steps, options.output, plan.preflight_rows)
    return CheckedBatch(plan, config)


@contextmanager
def recording_runs(concurrency: int):
    """``start(**parameters)`` of the batch's recording task, bounding how many run at once.

    One at a time, each recording runs in the flow's own thread, where a step's timeout can
    interrupt it; more run on a thread pool of ``concurrency`` threads. A flow whose task runner
    sends tasks to other processes (Dask) submits every recording to it: its workers bound how
    many run at once. Each start returns what ``.result(raise_on_failure=False)`` turns into the
    recording's summary row.
    """
    if not runs_tasks_here():
        yield run_recording.submit
    elif concurrency == 1:
        yield lambda **parameters: run_recording(**parameters, return_state=True)
    else:
        with ThreadPoolTaskRunner(max_workers=concurrency) as pool:
            yield lambda **parameters: pool.submit(run_recording, parameters)


if __name__ == "__main__":
    # Run as a script: the same program as `mea-pipeline batch ...` (run, not imported, so the
    # flows never import the command line that sits above them).
    import runpy

    sys.argv = ["mea-pipeline", "batch", *sys.argv[1:]]
    runpy.run_module("mea_pipeline.cli", run_name="__main__", alter_sys=True)
