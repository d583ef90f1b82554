"""Each failure said once in a run's log: Prefect's repeats of a reason already given are dropped.

Prefect logs a failed task or flow run up to three times: "Task run failed with ...", "Finished in
state Failed(...)" and, for a subflow, "Encountered exception during execution", the first and
last with a traceback. Two kinds carry nothing the "Finished in state" line does not:

* a task that returns a Failed state (the batch's task of a failed recording) is reported as
  ``Task run failed with state: Failed(..., result={...})`` with a stray ``NoneType: None``;
* a recording refused by its pre-flight check is a check's verdict, not a crash: its traceback
  shows only Prefect's engine.

A step that raises keeps its traceback: that is where a step's own error is found. And a task
that ends well says nothing: the recording's run logs one line per step (done in, or cached),
which Prefect's "Finished in state Completed()" of every task would otherwise double.
"""

from __future__ import annotations

import logging

from .preflight import PreflightFailed

RUN_LOGGERS = ("prefect.task_runs", "prefect.flow_runs")
FINISHED_WELL = ("Finished in state Completed(", "Finished in state Cached(")


class _Repeats(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith("Task run failed with state: "):
            return False
        if record.name == "prefect.task_runs" and message.startswith(FINISHED_WELL):
            return False
        refused = record.exc_info and isinstance(record.exc_info[1], PreflightFailed)
        return not refused


_REPEATS = _Repeats()


def say_each_failure_once() -> None:
    """Install the filter on Prefect's run loggers (once per process)."""
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if _REPEATS not in logger.filters:
            logger.addFilter(_REPEATS)
