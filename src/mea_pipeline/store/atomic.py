"""Atomic replacement of an HDF5 file: edit a temporary copy, ``os.replace`` it over the original.

A process killed at any moment therefore leaves the previous complete file (plus a stale
temporary that the next update removes), never a half-written one.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import h5py

from .. import __version__
from .records import BOOKKEEPING, utc_now
from .writes import FRESH_FILE


class AtomicUpdate:
    """Edit a temporary copy of an HDF5 file; ``os.replace`` it over the original on success.

    ``keep()`` must be called inside the block; without it (or on an exception) the copy is
    discarded and the original is untouched.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.tmp_path = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.h5: h5py.File | None = None
        self._committed = False

    def __enter__(self) -> "AtomicUpdate":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.path.parent, f".{self.path.name}.tmp-*")
        try:
            if self.path.is_file() and _readable(self.path):
                _copy(self.path, self.tmp_path)
                self.h5 = h5py.File(self.tmp_path, "r+")
            else:
                # No file, or an unreadable one (e.g. truncated by hand): start afresh rather than fail.
                self.h5 = h5py.File(self.tmp_path, "w", **FRESH_FILE)
                self.h5.attrs["dataset_id"] = self.path.stem
                self.h5.attrs["created_at"] = utc_now()
            self.h5.attrs["mea_pipeline_version"] = __version__
        except BaseException:
            self._discard()  # e.g. the disk filled up during the copy
            raise
        return self

    def keep(self) -> None:
        """Make the changes permanent when the block exits without an exception."""
        self.h5.flush()
        self._committed = True

    def __exit__(self, exc_type, exc, tb) -> None:
        if not (self._committed and exc_type is None):
            self._discard()
            return
        try:
            self.h5.close()
            fsync_file(self.tmp_path)
            os.replace(self.tmp_path, self.path)
        except BaseException:
            self._discard()  # a full disk may fail the last flush: the original stays
            raise
        fsync_folder(self.path.parent)

    def _discard(self) -> None:
        """Close and remove the temporary copy (every failure path; the original is untouched)."""
        if self.h5 is not None:
            try:
                self.h5.close()
            except OSError:
                pass  # closing flushes, which fails again on a full disk; the file goes anyway
        self.tmp_path.unlink(missing_ok=True)


def remove_stale_temporaries(folder: Path, pattern: str) -> None:
    """Remove the temporary files matching ``pattern`` (``...tmp-<pid>``) that no live process
    is writing: those a killed or earlier process of this one left behind."""
    for tmp in folder.glob(pattern):
        pid = tmp.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid() or not _pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _copy(source: Path, target: Path) -> None:
    t0 = time.perf_counter()
    shutil.copyfile(source, target)
    BOOKKEEPING.add("copy", time.perf_counter() - t0)


def _readable(path: Path) -> bool:
    try:
        with h5py.File(path, "r"):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fsync_file(path: Path) -> None:
    """Flush a written file's data to disk (before a rename makes it the real one)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(path: Path) -> None:
    """Make a rename in ``path`` durable (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    fsync_file(path)
