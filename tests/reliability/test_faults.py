"""Matrix rows R56-R61, R70-R71: faults while a step runs (docs/reliability.md).

Each row runs the Prefect task of step 5 (``file_metadata``, which reads the raw files and so has
retries) on a copy of a tiny recording's output of steps 1-5, with the fault injected into the step: a
transient I/O error is retried, disk full, permission denied and bad data are not; every fault
is recorded in the step's record (``status`` shows it), earlier results stay intact and no
temporary file is left.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import re
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

import matrix
from cli_run import cli, mapping
from mea_pipeline import faults
from mea_pipeline.errors import InputError
from mea_pipeline.steps import REGISTRY
from mea_pipeline.store import OutputFile
from mea_pipeline.tasks.steps import step_task
from output_copy import copy_output

STEP = "file_metadata"


@contextmanager
def faulty_step(fault):
    """Step 5 with ``fault(attempt)`` called after its real work, inside its transaction."""
    real = REGISTRY[STEP]
    attempts = []

    def run(ctx, params):
        summary = real.run(ctx, params)
        attempts.append(len(attempts) + 1)
        fault(attempts[-1], ctx.tx.tmp_path)
        return summary

    REGISTRY.replace(dataclasses.replace(real, run=run))
    try:
        yield attempts
    finally:
        REGISTRY.replace(real)


def run_task(recording, config):
    task = step_task(STEP).with_options(retry_delay_seconds=0, refresh_cache=True,
                                        result_storage=recording.output_path.parent / ".prefect-cache")
    return task(recording, config, True, return_state=True)


def committed(recording) -> dict:
    return {name: (r.cache_key, r.output_digest) for name, r in OutputFile(recording.output_path).verified_records().items()}


def lost_results(before: dict, after: dict) -> int:
    """Steps other than the failed one whose verified record vanished or changed."""
    return sum(after.get(name) != identity for name, identity in before.items() if name != STEP)


def temporaries(recording) -> list:
    return sorted(recording.output_path.parent.glob(f".{recording.output_path.name}.tmp-*"))


class TaskRunLog(logging.Handler):
    """The messages Prefect logs about task runs (what ``--debug`` and the log file show)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_transient_io_error_is_retried(tiny_output, tmp_path, prefect_server):
    recording = copy_output(tiny_output, tmp_path)

    def hiccup(attempt, tmp):
        if attempt == 1:
            raise OSError(errno.EIO, "Input/output error", str(recording.cmcr_path))

    log, logger = TaskRunLog(), logging.getLogger("prefect.task_runs")
    logger.addHandler(log)
    try:
        with faulty_step(hiccup) as attempts:
            state = run_task(recording, tiny_output["config"])
    finally:
        logger.removeHandler(log)
    assert state.is_completed() and attempts == [1, 2]
    assert OutputFile(recording.output_path).step_states()[STEP] == "done"
    line = next(line for line in log.lines if "Retry 1/2" in line)
    matrix.record("R56", line, "\n".join(log.lines), names=("transient I/O error (EIO)", "Retry 1/2"))
    assert temporaries(recording) == []


NOT_RETRIED = {
    "R57": (lambda tmp: OSError(errno.ENOSPC, "No space left on device", str(tmp)), "disk full (ENOSPC)"),
    "R58": (lambda tmp: PermissionError(errno.EACCES, "Permission denied", str(tmp)), "permission denied (EACCES)"),
    "R59": (lambda tmp: InputError("Unit Info of unit 7 has no Row"), "InputError: Unit Info of unit 7 has no Row"),
    "R60": (lambda tmp: OSError("Unable to synchronously open file (truncated file: eof = 1024)"),
            "OSError: Unable to synchronously open file (truncated file"),
}


@pytest.mark.parametrize("row", sorted(NOT_RETRIED))
def test_deterministic_fault_is_not_retried_and_is_recorded(row, tiny_output, tmp_path, prefect_server, capsys):
    make, expected = NOT_RETRIED[row]
    recording = copy_output(tiny_output, tmp_path)
    before = committed(recording)

    def fail(attempt, tmp):
        raise make(tmp)

    with faulty_step(fail) as attempts:
        state = run_task(recording, tiny_output["config"])
    assert state.is_failed() and attempts == [1]
    capsys.readouterr()  # the task run's own log is Prefect's, not what the user reads
    code, out, err = cli(capsys, "status", "--output", tmp_path)
    assert code == 1  # a failure is recorded
    line = next(line for line in out.splitlines() if line.startswith(f"{recording.recording_id} {STEP}: failed"))
    matrix.record(row, line, out + err, names=(expected,), lost=lost_results(before, committed(recording)))
    assert temporaries(recording) == []


def test_batch_prints_one_line_per_failure_and_runs_a_repeated_row_once(tiny, tiny_output, tmp_path, prefect_server,
                                                                       capsys):
    """A step's bug inside a batch: one FAILED line and the log file's name on the terminal, the
    traceback only in the log file; the recording named twice by the CSV ran its step once."""
    recording = copy_output(tiny_output, tmp_path / "out")
    csv = tmp_path / "twice.csv"
    pd.concat([mapping(tiny).iloc[[0]]] * 2).to_csv(csv, index=False)

    def bug(attempt, tmp):
        raise ZeroDivisionError("division by zero")

    with faulty_step(bug) as attempts:
        code, out, err = cli(capsys, "batch", "--config", tiny["config_file"], "--csv", csv, "--output",
                             recording.output_path.parent, "--steps", "5", "--overwrite", "--concurrency", "2")
    assert code == 1 and attempts == [1]
    terminal = out + err
    failed = next(line for line in out.splitlines() if "FAILED at" in line)
    matrix.record("R70", failed, terminal, names=(recording.recording_id, STEP, "ZeroDivisionError: division by zero"))
    duplicate = next(line for line in out.splitlines() if line.startswith("[2/2]"))
    summary = next(line for line in out.splitlines() if line.startswith("Batch finished"))
    assert "0 successful, 1 skipped, 1 failed (of 2)" in summary
    matrix.record("R71", duplicate, terminal, names=("skipped", "named again by the mapping CSV", "runs once"))
    log = Path(re.search(r"Details of the failures: (\S+)", out)[1]).read_text()
    assert "Traceback" in log and "ZeroDivisionError" in log
    assert OutputFile(recording.output_path).step_states()[STEP].startswith("failed: ZeroDivisionError")


def test_disk_that_stays_full_loses_nothing_and_leaves_no_temporary(tiny_output, tmp_path, monkeypatch):
    from mea_pipeline import runner
    from mea_pipeline.store import atomic

    recording = copy_output(tiny_output, tmp_path)
    before = committed(recording)

    def copy_until_full(source, target):
        with open(source, "rb") as reader, open(target, "wb") as writer:
            writer.write(reader.read(1 << 16))
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    # Every copy of the output for a commit runs out of space, the failure's note included.
    monkeypatch.setattr(atomic.shutil, "copyfile", copy_until_full)
    with pytest.raises(runner.StepFailed) as failure:
        runner.run_step(STEP, recording, tiny_output["config"], force=True)
    assert failure.value.__cause__.errno == errno.ENOSPC
    assert faults.classify(failure.value.__cause__) == faults.DISK_FULL
    line = f"FAILED at {STEP}: {failure.value.reason}"
    matrix.record("R61", line, line, names=("disk full (ENOSPC)", "free space", "not noted in"),
                  lost=lost_results(before, committed(recording)))
    assert temporaries(recording) == []


@pytest.mark.parametrize("exc, kind", [
    (OSError(errno.EIO, "Input/output error"), faults.TRANSIENT),
    (OSError(errno.ESTALE, "Stale file handle"), faults.TRANSIENT),
    (TimeoutError(), faults.TRANSIENT),
    (OSError(errno.ENOSPC, "No space left on device"), faults.DISK_FULL),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), faults.DISK_FULL),
    (OSError("Can't write data (file write failed: errno = 28, error message = 'No space left on device')"),
     faults.DISK_FULL),
    (PermissionError(errno.EACCES, "Permission denied"), faults.PERMISSION),
    (OSError(errno.EROFS, "Read-only file system"), faults.PERMISSION),
    (FileNotFoundError(errno.ENOENT, "No such file or directory"), faults.BAD_INPUT),
    (OSError("Unable to open file (file signature not found)"), faults.BAD_INPUT),
    (InputError("bad"), faults.BAD_INPUT),
    (ValueError("a bug"), faults.ERROR),
])
def test_faults_are_classified_by_errno_also_inside_h5py_messages(exc, kind):
    assert faults.classify(exc) == kind
    assert faults.is_transient(exc) == (kind == faults.TRANSIENT)
