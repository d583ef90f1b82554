"""Pre-flight from the command line: before a batch or a single recording starts, and ``mea-pipeline check``.

Run before Prefect starts, so a bad input is one line at once (exit code 2), not after a server
start. A batch is planned (:func:`mea_pipeline.batch_plan.plan_batch`) and checked here once and
handed to the flow as it is; ``check`` prints the same plan.
"""

from __future__ import annotations

from mea_pipeline.batch_options import BatchOptions
from mea_pipeline.batch_plan import DUPLICATE, SKIP, CheckedBatch, plan_batch, scan_to_csv
from mea_pipeline.config import PipelineConfig, RecordingInputs
from mea_pipeline.preflight import check_batch, check_recording


def checked_batch(options: BatchOptions, config: PipelineConfig) -> CheckedBatch:
    """Plan the batch and run its pre-flight; raise the first input error (PreflightError), if any.

    Only the recordings the batch will run are checked (all of them with ``--overwrite`` or
    ``--recheck``): a rerun of a finished batch checks nothing. A batch that scans folders for
    its recordings scans them now, next to the outputs.
    """
    csv = None
    if options.scan_roots:
        csv, line, problems = scan_to_csv(options.scan_roots, options.output)
        print(line, flush=True)
        for problem in problems:
            print(f"warning: {problem}", flush=True)
    plan = plan_batch(options, config, csv)
    if plan.to_run:
        report = check_batch(config, options.steps, options.output, plan.preflight_rows)
        report.raise_for_errors()
        for warning in report.warnings:
            print(f"warning: {warning}", flush=True)
    return CheckedBatch(plan, config)


def recording_preflight(recording: RecordingInputs, config: PipelineConfig, steps: str | None) -> None:
    """``run-one`` / ``resume``: the batch-level and the recording's own checks; raise the first error."""
    report = check_batch(config, steps, recording.output_path.parent)
    report.findings += check_recording(recording, config, steps).findings
    report.raise_for_errors()


def run_check(options: BatchOptions, config: PipelineConfig) -> int:
    """Print every finding, one line each, for the batch and each recording it would run.

    Returns the exit code a batch would have: 2 when a shared input is bad (the batch would not
    start), 1 when some recording would fail at its pre-flight, 0 when every recording is ready,
    already complete or a repeated row.
    """
    # A batch that scans folders finds its recordings as it starts: only its shared inputs are checked.
    plan = None if options.scan_roots else plan_batch(options, config)
    decisions = plan.decisions if plan else ()
    report = check_batch(config, options.steps, options.output, plan.preflight_rows if plan else ())
    for finding in report.findings:
        print(f"{finding.level}: {finding.message}")
    if report.errors:
        print(f"check: {len(report.errors)} error(s) in the batch's inputs; the batch would not start")
        return 2
    total, failing = len(decisions), 0
    for index, decision in enumerate(decisions, start=1):
        recording = decision.recording
        position = f"[{index}/{total}] {recording.recording_id}"
        if decision.action == SKIP:
            print(f"{position}: {decision.reason} (the batch skips it)")
            continue
        if decision.action == DUPLICATE:
            print(f"{position}: {decision.reason}")
            continue
        found = check_recording(recording, config, options.steps)
        for finding in found.findings:
            print(f"{position}: {finding.level}: {finding.message.removeprefix(recording.recording_id + ': ')}")
        if found.errors:
            failing += 1
        else:
            print(f"{position}: ready")
    print(f"check: {total - failing} of {total} recording(s) ready"
          + (f", {failing} would fail at pre-flight" if failing else ""))
    return 1 if failing else 0
