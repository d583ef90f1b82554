"""Where a command's details go: a log file next to the outputs, one line per error on the terminal.

Prefect reports every failed task or flow run with its traceback (80-200 lines) at ERROR level,
on the terminal too. The batch already prints one line per failed recording (and the command
line one line per user error), so those records are kept off the terminal; they still reach the
Prefect UI and, with every INFO line of the runs, ``<output>/logs/mea-pipeline-<time>-<pid>.log``.
So are the step warnings each recording logs: the summary of the batch (or of ``run-one``) lists
each distinct warning once. ``--debug`` keeps them on the terminal as well.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from mea_pipeline.runner import STEP_WARNING

RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
FILE_FORMAT = "%(asctime)s | %(levelname)-7s | %(name)s - %(message)s"


class _RunFailuresOffTerminal(logging.Filter):
    """Drop the ERROR records of flow and task runs (the batch has printed its one line), and the
    step warnings of each recording (the summary lists each distinct one once, with its count)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, STEP_WARNING, False):
            return False
        return not (record.levelno >= logging.ERROR and record.name.startswith(RUN_LOGGERS))


@contextmanager
def run_log(folder: str | Path, debug: bool = False) -> Iterator[Path]:
    """Write the runs' log to a new file in ``<folder>/logs`` while the block runs; yields its path.

    Call after Prefect has configured logging (its console handler is on the root logger).
    """
    from prefect.logging.formatters import PrefectFormatter
    from prefect.logging.handlers import PrefectConsoleHandler

    path = Path(folder) / "logs" / f"mea-pipeline-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setLevel(logging.INFO)
    file_handler.setFormatter(PrefectFormatter(
        FILE_FORMAT, flow_run_fmt=FILE_FORMAT.replace("%(name)s", "flow run %(flow_run_name)s"),
        task_run_fmt=FILE_FORMAT.replace("%(name)s", "task run %(task_run_name)s")))
    root = logging.getLogger()
    consoles = [] if debug else [h for h in root.handlers if isinstance(h, PrefectConsoleHandler)]
    quiet = _RunFailuresOffTerminal()
    root.addHandler(file_handler)
    for handler in consoles:
        handler.addFilter(quiet)
    try:
        yield path
    finally:
        for handler in consoles:
            handler.removeFilter(quiet)
        root.removeHandler(file_handler)
        file_handler.close()
