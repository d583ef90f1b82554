"""One run at a time per recording: an OS lock on ``.<recording_id>.h5.lock`` beside the output.

Two batches on one output folder, or a mapping CSV naming a recording twice, would otherwise run
the same recording's steps at once: both compute everything and their commits race (a false
``StepDependencyError`` or ``KeyError`` in one of them). The lock is ``flock`` on a small file next
to the output, held while the recording runs. The kernel drops it when the holder dies, ``kill
-9`` included, so a crash never leaves a recording locked. Threads of one process are kept apart
by the set of locks the process holds: on NFS, ``flock`` is emulated with POSIX record locks,
which never exclude two holders in one process.

The lock file stays after use (it holds the last holder's pid, host and start time): deleting it
would let a new run lock a fresh file while another still holds the old one.

Network file systems (docs/operations.md, "Two batches at once"): local disks are exact; NFSv4, and NFSv3
with lockd, pass the lock to the server, which frees a dead client's lock when its lease runs
out; SMB/CIFS mounts pass it on only without the ``nobrl`` mount option. Where the lock stays
local to a machine, run the batches of one output folder from one machine.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
from datetime import datetime, timezone
from pathlib import Path

from .errors import RecordingError

_held: set[str] = set()
_held_guard = threading.Lock()


class RecordingBusy(RecordingError):
    """Another run, or another thread of this one, is processing the recording.

    ``reason`` is the message without the recording ID in front.
    """

    def __init__(self, recording_id: str, reason: str):
        super().__init__(f"{recording_id}: {reason}")
        self.reason = reason


def lock_path(output_path: str | Path) -> Path:
    """``<folder>/.<recording_id>.h5.lock`` for ``<folder>/<recording_id>.h5``."""
    output_path = Path(output_path)
    return output_path.with_name(f".{output_path.name}.lock")


class RecordingLock:
    """Exclusive, non-blocking lock of one recording's output; a context manager.

    Raises
    ------
    RecordingBusy
        On entry, when another process or thread holds it (the message says who).
    OSError
        When the lock file cannot be created (e.g. the output folder is not writable).
    """

    def __init__(self, output_path: str | Path):
        self.output_path = Path(output_path)
        self.path = lock_path(output_path)
        self._key = os.path.abspath(self.path)
        self._fd: int | None = None

    def acquire(self) -> "RecordingLock":
        with _held_guard:
            if self._key in _held:
                raise RecordingBusy(self.output_path.stem, "this run is already processing it "
                                    "(does the mapping CSV name it twice?)")
            _held.add(self._key)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                os.close(fd)
                raise RecordingBusy(self.output_path.stem, f"another run is processing it ({holder}; "
                                    f"lock {self.path})") from None
            os.ftruncate(fd, 0)
            started = datetime.now(timezone.utc).isoformat(timespec="seconds")
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {started}\n".encode(), 0)
            self._fd = fd
        except BaseException:
            self._forget()
            raise
        return self

    def release(self) -> None:
        """Unlock (closing the file releases the flock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._forget()

    def _forget(self) -> None:
        with _held_guard:
            _held.discard(self._key)

    def __enter__(self) -> "RecordingLock":
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc_info) -> None:
        self.release()
