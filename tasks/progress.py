"""Progress of a long step: a progress artifact in the Prefect UI and a bar on the terminal.

A step reports ``(done, total)`` as it loops over units. Short steps leave no trace: the artifact
is created only once a step has run for ``START_AFTER_S`` and is updated at most every
``UPDATE_EVERY_S``, and the terminal bar appears only when standard output is a terminal.
"""

from __future__ import annotations

import sys
import threading
import time

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from rich.progress import Progress

START_AFTER_S = 2.0
UPDATE_EVERY_S = 2.0

_bars_lock = threading.Lock()
_bars: Progress | None = None
_open_bars = 0


class StepProgress:
    """Callable ``(done, total)`` given to a step; :meth:`close` when the step ends."""

    def __init__(self, label: str):
        self.label = label
        self.started = time.monotonic()
        self.last_update = 0.0
        self.artifact_id = None
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if total <= 0 or now - self.started < START_AFTER_S or now - self.last_update < UPDATE_EVERY_S:
            return
        self.last_update = now
        percent = 100.0 * done / total
        if self.artifact_id is None:
            self.artifact_id = create_progress_artifact(progress=percent, description=self.label)
        else:
            update_progress_artifact(artifact_id=self.artifact_id, progress=percent)
        self._terminal(done, total)

    def close(self) -> None:
        if self.artifact_id is not None:
            update_progress_artifact(artifact_id=self.artifact_id, progress=100.0)
        if self.bar is not None:
            _remove_bar(self.bar)

    def _terminal(self, done: int, total: int) -> None:
        if not sys.stdout.isatty():
            return
        if self.bar is None:
            self.bar = _add_bar(self.label, total)
        _bars.update(self.bar, completed=done, total=total)


def _add_bar(label: str, total: int):
    global _bars, _open_bars
    with _bars_lock:
        if _bars is None:
            _bars = Progress(transient=True)
            _bars.start()
        _open_bars += 1
        return _bars.add_task(label, total=total)


def _remove_bar(bar) -> None:
    global _bars, _open_bars
    with _bars_lock:
        _bars.remove_task(bar)
        _open_bars -= 1
        if _open_bars == 0:
            _bars.stop()
            _bars = None
