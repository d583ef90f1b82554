"""Batch flow: every matched recording of the mapping CSV through the pipeline.

    python flows/batch_all_steps.py --csv mapping.csv --start 0 --end 3 --debug

is the same as ``mea-pipeline batch ...``. The batch options (``[batch]`` of ``config_file``
overridden by the parameters given) are resolved here, inside the flow, so the command line,
the script and every deployment behave alike. Recordings whose output is complete are skipped
(unless ``overwrite``); at most ``concurrency`` recordings run at once and at most ``raw_reads``
recordings read raw files at once; one failing recording never stops the others. When a
selected step reads the lab's sheet, it is fetched once for the whole batch (a dated snapshot
next to the outputs) and every recording reads that snapshot.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.context import FlowRunContext, SettingsContext, get_settings_context
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY
from prefect.states import Completed, Failed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.transactions import CommitMode, transaction

from mea_pipeline.batch_options import MAX_CONCURRENCY, BatchOptions
from mea_pipeline.config import PipelineConfig, RecordingInputs
from mea_pipeline.mapping import parse_path_map, recordings, scan
from mea_pipeline.runner import (StepFailed, is_complete, output_summary, recorded_warnings, still_to_run, up_to_date,
                                 warning_lines)
from mea_pipeline.sheet.source import resolve_sheet
from mea_pipeline.steps import REGISTRY
from mea_pipeline.store import OutputFile

from mea_pipeline.flows.dispatch import check_deployment, recorded_failure, run_on_deployment
from mea_pipeline.flows.process_recording import process_recording
from mea_pipeline.flows.recording_guard import guarded
from mea_pipeline.flows.server_setup import prepare_server
from mea_pipeline.tasks.preflight import preflight

PROGRESS_EVERY_S = 2.0  # the batch's progress bar in the UI is updated at most this often


def has_failed_step(path: Path) -> bool:
    return any(state.startswith("failed") for state in OutputFile(path).step_states().values())


def say(logger, line: str) -> None:
    """A progress line on the terminal (as the lab's script prints it) and in the run's logs."""
    print(line, flush=True)
    logger.info(line)


@task(name="recording", task_run_name="recording-{recording.recording_id}")
@guarded
def run_recording(recording: RecordingInputs, config: PipelineConfig, steps: str | None,
                  force: bool, recheck: bool, position: str, via_deployment: str | None = None):
    """Run one recording's subflow (here, or as a run of ``via_deployment`` on a worker); its row
    of the summary, as a Failed state when it failed.

    Failing this task (not only its subflow) shows the recording red in the batch's graph.
    """
    logger = get_run_logger()
    say(logger, f"{position} {recording.recording_id}")
    t0 = time.perf_counter()
    row = {"recording_id": recording.recording_id}
    if recheck and not force and up_to_date(recording, config, steps):
        # Nothing to compute: no subflow, no task runs.
        say(logger, f"  {recording.recording_id}: up to date (every step's inputs unchanged)")
        return row | {"status": "success", "note": "up to date", "seconds": round(time.perf_counter() - t0, 2),
                      **_counts(recording.output_path)}
    if via_deployment:
        state = run_on_deployment(via_deployment, recording, config, steps, force).state
    else:
        # The parent flow's heartbeat already tells the server this process is alive; a subflow's
        # own heartbeat thread would add ~1 s per recording at exit (Prefect joins its sleep).
        # The steps' cache records are written as each step ends (EAGER), not when this task ends:
        # this task fails with a failed recording, which would roll back the records of the steps
        # that succeeded, and a rerun from the failed step would recompute them.
        with without_heartbeat(), transaction(commit_mode=CommitMode.EAGER):
            state = process_recording(recording, config, steps, force, return_state=True)
    row["seconds"] = round(time.perf_counter() - t0, 2)
    # What the selected steps' records now hold (a worker's run included): the summary lists each once.
    row["warnings"] = recorded_warnings(recording.output_path, steps)
    if state.is_completed():
        # A worker's run keeps no result this process could read: the output file has the counts.
        summary = output_summary(recording.output_path) if via_deployment else state.result()
        say(logger, f"  {recording.recording_id}: Units: {summary['n_units']}, "
                    f"Steps: {len(summary['completed_steps'])}")
        return row | {"status": "success", "n_units": summary["n_units"], "n_steps": len(summary["completed_steps"])}
    step, message = local_failure(state) if not via_deployment else ("", "")
    if not step:  # a worker's run, or a step stopped from outside (timeout): its file says which
        step, recorded = recorded_failure(state, recording.output_path, steps)
        message = message or recorded
    say(logger, f"  {recording.recording_id}: FAILED at {step or '?'}: {message}")
    row |= {"status": "failed", "failed_step": step, "message": message, **_counts(recording.output_path)}
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


def run_tags(options: BatchOptions, trigger: str) -> list[str]:
    """Tags of a batch run in the UI: the project, what started it, the CSV (or scanned roots), the rows."""
    source = f"csv:{Path(options.csv).name}" if options.csv and not options.scan_roots else \
        "scan:" + ",".join(Path(root).name for root in options.scan_roots or ())
    rows = f"rows:{options.start}-{'end' if options.end is None else options.end}"
    return ["mea-pipeline", f"trigger:{trigger}", source, rows]


def scanned_csv(roots, output: str, logger) -> Path:
    """Scan the data folders now and write the mapping CSV next to the outputs (``scan-YYYY-MM-DD.csv``)."""
    table, problems = scan(list(roots))
    path = Path(output) / f"scan-{date.today().isoformat()}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    say(logger, f"scanned {', '.join(map(str, roots))}: {int(table['matched'].sum()) if len(table) else 0} "
                f"recordings -> {path}")
    for problem in problems:
        logger.warning(problem)
    return path


def batch_run_name() -> str:
    """A readable run name from the parameters given: ``batch-<csv or config>-rows-<start>-<end>``."""
    given = flow_run.parameters
    source = Path(given.get("csv") or given.get("config_file") or "batch").stem
    start, end = given.get("start"), given.get("end")
    rows = f"-rows-{start or 0}-{'end' if end is None else end}" if start is not None or end is not None else ""
    return f"batch-{source}{rows}"


@flow(name="batch_all_steps", flow_run_name=batch_run_name,
      task_runner=ThreadPoolTaskRunner(max_workers=MAX_CONCURRENCY))
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
):
    """Process rows [start, end) of the matched recordings; returns the batch summary.

    Every batch parameter left unset comes from ``[batch]`` of ``config_file``; ``inputs``
    (stimuli, playlist, labels, gsheet_csv, ap_model, ...) override the file's input keys.
    ``overwrite`` recomputes every step; ``recheck`` reruns only steps whose cache key changed
    (e.g. a re-sorted .cmtr) instead of skipping complete outputs; ``only_failed`` and
    ``recording_ids`` narrow the selection; ``scan_roots`` scans data folders for the recordings
    instead of reading ``csv``; ``via_deployment`` (``<flow>/<deployment>``) hands each recording
    to Prefect workers as a run of that deployment.
    """
    logger = get_run_logger()
    options = BatchOptions.load(
        config_file, csv=csv, output=output, start=start, end=end, overwrite=overwrite, steps=steps,
        concurrency=concurrency, raw_reads=raw_reads, path_map=path_map, only_failed=only_failed,
        recheck=recheck, recording_ids=recording_ids, scan_roots=scan_roots, via_deployment=via_deployment)
    config = PipelineConfig.load(config_file, REGISTRY, inputs or {})
    csv = scanned_csv(options.scan_roots, options.output, logger) if options.scan_roots else options.csv
    selection = recordings(csv, options.output, parse_path_map(list(options.path_map)), options.start, options.end)
    if options.recording_ids:
        wanted = set(options.recording_ids)
        selection = [r for r in selection if r.recording_id in wanted]
    if options.only_failed:
        selection = [r for r in selection if has_failed_step(r.output_path)]
    pending = still_to_run(selection, config, options.steps, options.overwrite or options.recheck)
    if pending:
        # What will run is checked; a rerun of a finished batch reads no input (not even the CNN weights).
        preflight(config, options.steps, options.output, pending)
    prepare_server(options.raw_reads)
    if selection and options.via_deployment:
        check_deployment(options.via_deployment, logger)
    if selection and any("sheet" in step.reads for step in REGISTRY.select(options.steps)):
        config = sheet_snapshot(config, options.output)

    total = len(selection)
    rows, running = [], []
    progress = create_progress_artifact(progress=0.0, description=f"recordings of this batch ({total})") \
        if total else None
    t0 = last_progress = time.perf_counter()

    def finished(row: dict) -> None:
        nonlocal last_progress
        rows.append(row)
        # Each update is a round trip to the server (~40 ms): a rerun that skips hundreds of
        # recordings in a second updates the bar once it is done, not once per recording.
        if progress is not None and (len(rows) == total or time.perf_counter() - last_progress >= PROGRESS_EVERY_S):
            update_progress_artifact(artifact_id=progress, progress=100.0 * len(rows) / total)
            last_progress = time.perf_counter()

    started: set[str] = set()
    for index, recording in enumerate(selection, start=1):
        position = f"[{index}/{total}]"
        if recording.recording_id in started:
            # A recording named again by the CSV runs once (its lock would also keep the rows apart).
            say(logger, f"{position} {recording.recording_id}: skipped (named again by the mapping CSV; it runs once)")
            finished({"recording_id": recording.recording_id, "status": "skipped", "note": "duplicate row",
                      **_counts(recording.output_path)})
            continue
        started.add(recording.recording_id)
        # is_complete trusts the file's records without reading the raw files (they may be
        # offline); --recheck instead compares every step's cache key, raw files included, so
        # only recordings whose inputs changed run again.
        if not (options.overwrite or options.recheck) and is_complete(recording, config, options.steps):
            say(logger, f"{position} {recording.recording_id}: skipped (output complete)")
            finished({"recording_id": recording.recording_id, "status": "skipped", **_counts(recording.output_path)})
            continue
        args = (recording, config, options.steps, options.overwrite, options.recheck, position,
                options.via_deployment)
        if options.concurrency == 1 and runs_tasks_here():
            # In the flow's own thread, where a step's timeout can interrupt it.
            finished(run_recording(*args, return_state=True).result(raise_on_failure=False))
            continue
        if len(running) >= options.concurrency:
            # The parameter bounds the recordings in flight, whatever runner the flow has.
            done = next(as_completed(running))
            finished(done.result(raise_on_failure=False))
            running.remove(done)
        running.append(run_recording.submit(*args))
    for future in running:
        finished(future.result(raise_on_failure=False))
    rows.sort(key=lambda row: row["recording_id"])

    summary = {
        "total": total,
        "success": sum(r["status"] == "success" for r in rows),
        "skipped": sum(r["status"] == "skipped" for r in rows),
        "failed": sum(r["status"] == "failed" for r in rows),
        "seconds": round(time.perf_counter() - t0, 2),
        "options": dataclasses.asdict(options),
        "recordings": rows,
    }
    _report(summary, logger)
    if not summary["failed"]:
        return Completed(message=f"{summary['success']} successful, {summary['skipped']} skipped", data=summary)
    failed = [f"{r['recording_id']} ({r.get('failed_step') or '?'})" for r in rows if r["status"] == "failed"]
    shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
    return Failed(message=f"{summary['failed']}/{total} recordings failed: {shown}", data=summary)


def _counts(path: Path) -> dict:
    summary = output_summary(path)
    return {"n_units": summary["n_units"], "n_steps": len(summary["completed_steps"])}


def _report(summary: dict, logger) -> None:
    lines = [
        "=" * 60,
        f"Batch finished in {summary['seconds']:.1f} s: {summary['success']} successful, "
        f"{summary['skipped']} skipped, {summary['failed']} failed (of {summary['total']})",
    ]
    lines += [f"  FAILED {r['recording_id']} at {r.get('failed_step') or '?'}: {r['message']}"
              for r in summary["recordings"] if r["status"] == "failed"]
    lines += [f"  {line}" for line in warning_lines(r.get("warnings", []) for r in summary["recordings"])]
    say(logger, "\n".join(lines))
    create_table_artifact(
        key="batch-summary",
        table=[{k: r.get(k, "") for k in ("recording_id", "status", "n_units", "n_steps", "failed_step",
                                            "message", "seconds")} for r in summary["recordings"]],
        description=lines[1],
    )


if __name__ == "__main__":
    # Run as a script: the same program as `mea-pipeline batch ...` (run, not imported, so the
    # flows never import the command line that sits above them).
    import runpy

    sys.argv = ["mea-pipeline", "batch", *sys.argv[1:]]
    runpy.run_module("mea_pipeline.cli", run_name="__main__", alter_sys=True)
