"""The output HDF5 file of one recording, committed one step at a time.

Every step runs inside a :class:`StepTransaction`: it works on a temporary copy of
``<recording_id>.h5`` and the copy replaces the original with ``os.replace`` only after the
step's outputs, its record ``pipeline/steps/<step>`` and ``pipeline/completed_steps`` are
written and flushed to disk. A process killed at any moment therefore leaves the previous
complete state (plus a stale temporary that the next commit removes), never a half-written file.

A record lists the HDF5 paths the step owns and a CRC32 digest of their content, so a step
whose output was deleted or edited afterwards is recognised as not done.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import time
import zlib
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from . import __version__

STEPS_GROUP = "pipeline/steps"
COMPLETED_STEPS = "pipeline/completed_steps"
# Arrays with more elements than this are chunked and compressed.
COMPRESS_MIN_ELEMENTS = 4096
STRING = h5py.string_dtype("utf-8")
# Attributes of pipeline/steps/<step> telling that the last attempt failed (cleared on success).
FAILURE_ATTRS = ("last_error", "last_error_at")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class StepRecord:
    """What ``pipeline/steps/<step>`` holds."""

    step: str
    status: str
    cache_key: str
    code_version: str
    parameters: dict
    input_fingerprint: dict
    outputs: list[str]
    output_digest: str
    started_at: str
    finished_at: str
    duration_s: float
    warnings: list[str] = field(default_factory=list)
    pipeline_version: str = __version__
    summary: dict = field(default_factory=dict)
    # Set (by record_failure, never by write) when the step's last attempt failed after this record
    # was written: the outputs are intact, but the step must run again.
    last_error: str = ""

    _JSON_FIELDS = ("parameters", "input_fingerprint", "outputs", "warnings", "summary")

    def write(self, h5: h5py.File) -> None:
        group = h5.require_group(f"{STEPS_GROUP}/{self.step}")
        for key, value in self.__dict__.items():
            if key not in FAILURE_ATTRS:
                group.attrs[key] = json.dumps(value) if key in self._JSON_FIELDS else value

    @classmethod
    def read(cls, h5: h5py.File, step: str) -> "StepRecord | None":
        path = f"{STEPS_GROUP}/{step}"
        if path not in h5:
            return None
        attrs = dict(h5[path].attrs)
        values = {}
        for key in cls.__dataclass_fields__:
            if key.startswith("_") or key not in attrs:
                continue
            value = attrs[key]
            value = value.decode() if isinstance(value, bytes) else value
            values[key] = json.loads(value) if key in cls._JSON_FIELDS else value
        values["duration_s"] = float(values.get("duration_s", 0.0))
        try:
            return cls(**values)
        except TypeError:
            return None  # a record from an incompatible writer counts as absent


def _digest_object(obj, crc: int) -> int:
    crc = zlib.crc32(obj.name.encode(), crc)
    for key in sorted(obj.attrs):
        crc = zlib.crc32(key.encode(), crc)
        crc = zlib.crc32(np.asarray(obj.attrs[key]).tobytes(), crc)
    if isinstance(obj, h5py.Dataset):
        crc = zlib.crc32(f"{obj.dtype}{obj.shape}".encode(), crc)
        value = obj[()]
        if obj.dtype.kind == "O":
            value = "\0".join(v.decode() if isinstance(v, bytes) else str(v) for v in np.ravel(value))
            return zlib.crc32(value.encode(), crc)
        return zlib.crc32(np.ascontiguousarray(value).tobytes(), crc)
    for key in sorted(obj):
        crc = _digest_object(obj[key], crc)
    return crc


def digest_paths(h5: h5py.File, paths: Iterable[str]) -> str:
    """CRC32 over the named objects (recursively: data, dtype, shape, attributes).

    A path ``group@attr`` covers one attribute of a group the step does not own.
    A missing path yields a digest no real content produces.
    """
    crc = 0
    for path in sorted(paths):
        crc = zlib.crc32(path.encode(), crc)
        obj_path, _, attr = path.partition("@")
        if obj_path not in h5:
            return "missing:" + path
        if attr:
            if attr not in h5[obj_path].attrs:
                return "missing:" + path
            crc = zlib.crc32(np.asarray(h5[obj_path].attrs[attr]).tobytes(), crc)
        else:
            crc = _digest_object(h5[obj_path], crc)
    return f"{crc:08x}"


# verified_records() results by file identity (see there).
_VERIFIED: dict[tuple, dict[str, StepRecord]] = {}


def _file_identity(path: Path) -> tuple | None:
    try:
        stat = path.stat()
    except (FileNotFoundError, NotADirectoryError):  # no file there (the folder may be a file)
        return None
    return str(path.resolve()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _remember(identity: tuple, records: dict[str, "StepRecord"]) -> None:
    if len(_VERIFIED) >= 256:
        _VERIFIED.pop(next(iter(_VERIFIED)))
    _VERIFIED[identity] = records


class OutputFile:
    """Read access and step bookkeeping for ``<recording_id>.h5``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @contextmanager
    def open(self):
        """Open read-only; a missing or unreadable (truncated) file yields ``None``."""
        try:
            h5 = h5py.File(self.path, "r")
        except (OSError, FileNotFoundError):
            yield None
            return
        try:
            yield h5
        finally:
            h5.close()

    def verified_records(self) -> dict[str, StepRecord]:
        """Records of steps that are done and whose outputs still match their digest.

        Checking the digests reads every output, so the answer is remembered for the file's
        identity (inode, size, mtime): any write, ours (a new file) or an edit, changes it.
        """
        identity = _file_identity(self.path)
        if identity is None:
            return {}
        if identity not in _VERIFIED:
            _remember(identity, self._verify_records())
        return dict(_VERIFIED[identity])

    def _verify_records(self) -> dict[str, StepRecord]:
        with self.open() as h5:
            if h5 is None or STEPS_GROUP not in h5:
                return {}
            verified = {}
            for name in h5[STEPS_GROUP]:
                record = StepRecord.read(h5, name)
                if record and record.status == "done" and digest_paths(h5, record.outputs) == record.output_digest:
                    verified[name] = record
            return verified

    def record_failure(self, step: str, message: str) -> None:
        """Note a failed attempt on the step's record; outputs of earlier runs are kept."""
        with AtomicUpdate(self.path) as update:
            group = update.h5.require_group(f"{STEPS_GROUP}/{step}")
            group.attrs["last_error"] = message
            group.attrs["last_error_at"] = utc_now()
            update.keep()

    def step_states(self, verify: bool = True) -> dict[str, str]:
        """Each recorded step's state: 'done', 'stale', 'edited' (digest mismatch) or 'failed: ...'.

        ``verify=False`` trusts the records without re-reading the outputs for their digests
        (instant on a large file; an edited output then shows as 'done').
        """
        with self.open() as h5:
            if h5 is None:
                return {}
            states = {}
            for name in h5.get(STEPS_GROUP, {}):
                attrs = h5[f"{STEPS_GROUP}/{name}"].attrs
                record = StepRecord.read(h5, name)
                if "last_error" in attrs:
                    states[name] = "failed: " + _attr_str(attrs["last_error"])
                elif record is None:
                    states[name] = "missing"
                elif record.status != "done":
                    states[name] = record.status
                elif verify and digest_paths(h5, record.outputs) != record.output_digest:
                    states[name] = "edited"
                else:
                    states[name] = "done"
            return states

    def transaction(self, step: str, dependents: Iterable[str] = (),
                    order: Iterable[str] = ()) -> "StepTransaction":
        """``dependents`` become stale on commit; ``order`` sorts ``completed_steps``."""
        return StepTransaction(self.path, step, tuple(dependents), tuple(order))


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
        self._remove_stale_temporaries()
        try:
            if self.path.is_file() and _readable(self.path):
                shutil.copyfile(self.path, self.tmp_path)
                self.h5 = h5py.File(self.tmp_path, "r+")
            else:
                # No file, or an unreadable one (e.g. truncated by hand): start afresh rather than fail.
                self.h5 = h5py.File(self.tmp_path, "w")
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
            _fsync(self.tmp_path)
            os.replace(self.tmp_path, self.path)
        except BaseException:
            self._discard()  # a full disk may fail the last flush: the original stays
            raise
        _fsync_dir(self.path.parent)

    def _discard(self) -> None:
        """Close and remove the temporary copy (every failure path; the original is untouched)."""
        if self.h5 is not None:
            try:
                self.h5.close()
            except OSError:
                pass  # closing flushes, which fails again on a full disk; the file goes anyway
        self.tmp_path.unlink(missing_ok=True)

    def _remove_stale_temporaries(self) -> None:
        for tmp in self.path.parent.glob(f".{self.path.name}.tmp-*"):
            pid = tmp.name.rsplit("-", 1)[-1]
            if not pid.isdigit() or int(pid) == os.getpid() or not _pid_alive(int(pid)):
                tmp.unlink(missing_ok=True)


class StepTransaction(AtomicUpdate):
    """Write one step's outputs atomically (see :class:`AtomicUpdate`).

    On entry the step's previous outputs are removed from the copy; :meth:`commit` writes the
    record with the digest of everything written through :meth:`write`/:meth:`set_attrs`.
    """

    def __init__(self, path: Path, step: str, dependents: tuple[str, ...], order: tuple[str, ...]):
        super().__init__(path)
        self.step = step
        self.dependents = dependents
        self.order = order
        self.owned: set[str] = set()
        self.started_at = utc_now()
        self._t0 = time.perf_counter()

    def __enter__(self) -> "StepTransaction":
        # Records verified in the file as it is now stay valid in the copy, whose other
        # content is unchanged; remembering them saves re-reading every output after commit.
        self._carried = {name: record for name, record in OutputFile(self.path).verified_records().items()
                         if name != self.step and name not in self.dependents}
        super().__enter__()
        try:
            self._drop_previous_outputs()
        except BaseException:
            self._discard()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        super().__exit__(exc_type, exc, tb)
        if self._committed and exc_type is None:
            _remember(_file_identity(self.path), self._carried | {self.step: self.record})

    def _drop_previous_outputs(self) -> None:
        previous = StepRecord.read(self.h5, self.step)
        if previous is None:
            return
        for path in previous.outputs:
            obj_path, _, attr = path.partition("@")
            if obj_path not in self.h5:
                continue
            if attr:
                self.h5[obj_path].attrs.pop(attr, None)
                continue
            del self.h5[obj_path]
            # Groups that held only this step's datasets go too (e.g. a movie no longer sectioned).
            parent = posixpath.dirname(obj_path)
            while parent and parent in self.h5 and len(self.h5[parent]) == 0 and not self.h5[parent].attrs:
                del self.h5[parent]
                parent = posixpath.dirname(parent)

    # -- writing ----------------------------------------------------------------------------
    def write(self, path: str, value, **dataset_options) -> h5py.Dataset:
        """Create dataset ``path`` (replacing it) and mark it as owned by this step."""
        if path in self.h5:
            del self.h5[path]
        if isinstance(value, str):
            dataset = self.h5.create_dataset(path, data=value, dtype=STRING)
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            # Lists (also empty ones) are lists of names; numeric data comes as arrays.
            dataset = self.h5.create_dataset(path, data=list(value), dtype=STRING)
        else:
            array = np.asarray(value)
            options = dict(dataset_options)
            if array.size > COMPRESS_MIN_ELEMENTS and array.ndim > 0:
                options.setdefault("compression", "gzip")
                options.setdefault("compression_opts", 1)
                options.setdefault("shuffle", True)
                options.setdefault("chunks", True)
            dataset = self.h5.create_dataset(path, data=array, **options)
        self.owned.add(path)
        return dataset

    def write_tree(self, path: str, mapping: Mapping) -> None:
        """Write a nested mapping as groups of datasets (scalars become 0-d datasets)."""
        for key, value in mapping.items():
            if value is None:
                continue
            child = f"{path}/{key}"
            if isinstance(value, Mapping):
                self.write_tree(child, value)
            else:
                self.write(child, value)

    def set_attrs(self, path: str, attrs: Mapping) -> None:
        """Set attributes on a (possibly shared) group; each attribute is owned by this step."""
        group = self.h5.require_group(path)
        for key, value in attrs.items():
            group.attrs[key] = value
            self.owned.add(f"{path}@{key}")

    # -- commit -----------------------------------------------------------------------------
    def commit(self, *, cache_key: str, code_version: str, parameters: dict,
               input_fingerprint: dict, warnings: list[str], summary: dict) -> StepRecord:
        """Write the step record, update ``completed_steps`` and mark dependents stale."""
        outputs = sorted(self.owned)
        record = StepRecord(
            step=self.step, status="done", cache_key=cache_key, code_version=code_version,
            parameters=parameters, input_fingerprint=input_fingerprint, outputs=outputs,
            output_digest=digest_paths(self.h5, outputs), started_at=self.started_at,
            finished_at=utc_now(), duration_s=round(time.perf_counter() - self._t0, 4),
            warnings=list(warnings), summary=summary,
        )
        record.write(self.h5)
        self.record = record
        for name in self.dependents:
            # Their inputs just changed: they are no longer done until they run again.
            path = f"{STEPS_GROUP}/{name}"
            if path in self.h5:
                self.h5[path].attrs["status"] = "stale"
        for key in FAILURE_ATTRS:
            self.h5[f"{STEPS_GROUP}/{self.step}"].attrs.pop(key, None)
        self._write_completed_steps()
        self.keep()
        return record

    def _write_completed_steps(self) -> None:
        done = [
            name for name in self.h5[STEPS_GROUP]
            if _attr_str(self.h5[f"{STEPS_GROUP}/{name}"].attrs.get("status")) == "done"
        ]
        if COMPLETED_STEPS in self.h5:
            del self.h5[COMPLETED_STEPS]
        rank = {name: i for i, name in enumerate(self.order)}
        done.sort(key=lambda name: (rank.get(name, len(rank)), name))
        self.h5.create_dataset(COMPLETED_STEPS, data=done, dtype=STRING)


def _readable(path: Path) -> bool:
    try:
        with h5py.File(path, "r"):
            return True
    except OSError:
        return False


def _attr_str(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
