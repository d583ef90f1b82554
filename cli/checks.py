"""Pre-flight from the command line: before a batch or a single recording starts, and ``mea-pipeline check``.

Run before Prefect starts, so a bad input is one line at once (exit code 2), not after a server
start; the batch flow checks again for runs that have no command line in front (deployments).
"""

from __future__ import annotations

from mea_pipeline.batch_options import BatchOptions
from mea_pipeline.config import PipelineConfig, RecordingInputs
from mea_pipeline.mapping import parse_path_map, recordings
from mea_pipeline.preflight import check_batch, check_recording
from mea_pipeline.runner import is_complete, still_to_run


def selected_recordings(options: BatchOptions) -> list[RecordingInputs]:
    """The mapping CSV's ``[start, end)`` rows (none when the batch scans folders as it starts)."""
    if options.scan_roots:
        return []
    return recordings(options.csv, options.output, parse_path_map(list(options.path_map)), options.start, options.end)


def batch_preflight(options: BatchOptions, config: PipelineConfig) -> None:
    """Raise the batch's first input error (PreflightError), if any.

    Only the recordings the batch will run are checked (all of them with ``--overwrite`` or
    ``--recheck``): a rerun of a finished batch checks nothing. A batch that scans folders for its
    recordings checks its shared inputs here, its recordings once the flow has scanned.
    """
    selection = selected_recordings(options)
    pending = still_to_run(selection, config, options.steps, options.overwrite or options.recheck)
    if pending or not selection:
        check_batch(config, options.steps, options.output, pending).raise_for_errors()


def recording_preflight(recording: RecordingInputs, config: PipelineConfig, steps: str | None) -> None:
    """``run-one`` / ``resume``: the batch-level and the recording's own checks; raise the first error."""
    report = check_batch(config, steps, recording.output_path.parent)
    report.findings += check_recording(recording, config, steps).findings
    report.raise_for_errors()


def run_check(options: BatchOptions, config: PipelineConfig) -> int:
    """Print every finding, one line each, for the batch and each selected recording.

    Returns the exit code a batch would have: 2 when a shared input is bad (the batch would not
    start), 1 when some recording would fail at its pre-flight, 0 when every recording is ready
    or already complete.
    """
    selection = selected_recordings(options)
    report = check_batch(config, options.steps, options.output, selection)
    for finding in report.findings:
        print(f"{finding.level}: {finding.message}")
    if report.errors:
        print(f"check: {len(report.errors)} error(s) in the batch's inputs; the batch would not start")
        return 2
    ready = 0
    for index, recording in enumerate(selection, start=1):
        position = f"[{index}/{len(selection)}] {recording.recording_id}"
        if not options.overwrite and is_complete(recording, config, options.steps):
            print(f"{position}: output complete (the batch skips it)")
            ready += 1
            continue
        found = check_recording(recording, config, options.steps)
        for finding in found.findings:
            print(f"{position}: {finding.level}: {finding.message.removeprefix(recording.recording_id + ': ')}")
        if not found.errors:
            print(f"{position}: ready")
            ready += 1
    print(f"check: {ready} of {len(selection)} recording(s) ready"
          + (f", {len(selection) - ready} would fail at pre-flight" if ready < len(selection) else ""))
    return 0 if ready == len(selection) else 1
