"""What a batch tells as it runs and when it ends: its progress bar, its summary, its final state."""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.context import FlowRunContext
from prefect.states import Completed, Failed, State

from mea_pipeline.batch_options import BatchOptions
from mea_pipeline.runner import output_summary, warning_lines

from mea_pipeline.flows.run_labels import summary_key

PROGRESS_EVERY_S = 2.0  # the batch's progress bar in the UI is updated at most this often


def say(logger, line: str) -> None:
    """A progress line on the terminal (as the lab's script prints it) and in the run's logs."""
    print(line, flush=True)
    logger.info(line)


def counts(path: Path) -> dict:
    """Units and completed steps of an output file, as a summary row shows them."""
    summary = output_summary(path)
    return {"n_units": summary["n_units"], "n_steps": len(summary["completed_steps"])}


class BatchProgress:
    """The rows of the recordings finished so far, and the batch's progress bar in the UI.

    Each update of the bar is a round trip to the server (~40 ms): a rerun that skips hundreds of
    recordings in a second updates it once it is done, not once per recording.
    """

    def __init__(self, total: int):
        self.total = total
        self.rows: list[dict] = []
        self.started = self._last_update = time.perf_counter()
        self._artifact = create_progress_artifact(progress=0.0, description=f"recordings of this batch ({total})") \
            if total else None

    def finished(self, row: dict) -> None:
        self.rows.append(row)
        done = len(self.rows) == self.total
        if self._artifact is not None and (done or time.perf_counter() - self._last_update >= PROGRESS_EVERY_S):
            update_progress_artifact(artifact_id=self._artifact, progress=100.0 * len(self.rows) / self.total)
            self._last_update = time.perf_counter()

    def summary(self, options: BatchOptions) -> dict:
        rows = sorted(self.rows, key=lambda row: row["recording_id"])
        return {
            "total": self.total,
            "success": sum(r["status"] == "success" for r in rows),
            "skipped": sum(r["status"] == "skipped" for r in rows),
            "failed": sum(r["status"] == "failed" for r in rows),
            "seconds": round(time.perf_counter() - self.started, 2),
            "options": dataclasses.asdict(options),
            "recordings": rows,
        }


def without_folders(message: str) -> str:
    """A message with each absolute path cut to its file name: the table's cells do not wrap a
    path, and the folder is in the run's state message and log. (A folder whose name holds a
    space is cut only after it: where a path ends is not known then.)"""
    return re.sub(r"(?<![\w.])(?:[A-Za-z]:)?[/\\](?:[^\s/\\:]+[/\\])+(?=[^\s/\\:]+)", "", message)


def failures_first(summary: dict) -> str:
    """``1 failed, 2 successful, 0 skipped (of 3)``: the counts as the artifact and the report lead with them."""
    return (f"{summary['failed']} failed, {summary['success']} successful, {summary['skipped']} skipped "
            f"(of {summary['total']})")


def artifact_description(summary: dict) -> str:
    """The counts first: the artifacts list shows the description beside each batch's key."""
    return f"{failures_first(summary)} in {summary['seconds']:.1f} s: {FlowRunContext.get().flow_run.name}"


def report(summary: dict, logger) -> State:
    """Print and log the summary, store it as the run's own table artifact; the batch's final state.

    The batch fails when a recording failed, naming the first five.
    """
    lines = [
        "=" * 60,
        f"Batch finished in {summary['seconds']:.1f} s: {summary['success']} successful, "
        f"{summary['skipped']} skipped, {summary['failed']} failed (of {summary['total']})",
    ]
    rows = summary["recordings"]
    lines += [f"  FAILED {r['recording_id']} at {r.get('failed_step') or '?'}: {r['message']}"
              for r in rows if r["status"] == "failed"]
    lines += [f"  {line}" for line in warning_lines(r.get("warnings", []) for r in rows)]
    say(logger, "\n".join(lines))
    create_table_artifact(
        key=summary_key(FlowRunContext.get().flow_run.name),
        # The message last: it is the long column, and the UI cuts the table at its right edge.
        table=[{k: r.get(k, "") for k in ("recording_id", "status", "failed_step", "seconds", "n_units", "n_steps")}
               | {"message": without_folders(r.get("message", ""))} for r in rows],
        description=artifact_description(summary),
    )
    if not summary["failed"]:
        return Completed(message=f"{summary['success']} successful, {summary['skipped']} skipped", data=summary)
    failed = [f"{r['recording_id']} ({r.get('failed_step') or '?'})" for r in rows if r["status"] == "failed"]
    shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
    return Failed(message=f"{summary['failed']}/{summary['total']} recordings failed: {shown}", data=summary)
