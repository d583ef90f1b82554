"""The output HDF5 file of one recording, committed one step at a time.

Every step runs inside a :class:`StepTransaction`: it works on a temporary copy of
``<recording_id>.h5`` and the copy replaces the original with ``os.replace`` only after the
step's outputs, its record ``pipeline/steps/<step>`` and ``pipeline/completed_steps`` are
written and flushed to disk. A process killed at any moment therefore leaves the previous
complete state (plus a stale temporary that the next commit removes), never a half-written file.

A record lists the HDF5 paths the step owns and a CRC32 digest of their content, so a step
whose output was deleted or edited afterwards is recognised as not done. The digest is taken as
the step writes (:mod:`.output_digest`), and which records are verified is remembered by the
file's identity (:mod:`.verified_memo`); docs/ARCHITECTURE.md explains why both keep the contract.
"""

from __future__ import annotations

import heapq
import os
import posixpath
import shutil
import time
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from . import __version__
from .hdf5_writes import FRESH_FILE, STRING, create_small, rewrite_fresh
from .output_digest import attr_crc, combine, dataset_crc, digest_paths, path_crc, with_attrs
from .step_record import BOOKKEEPING, COMPLETED_STEPS, FAILURE_ATTRS, STEPS_GROUP, StepRecord, utc_now
from .verified_memo import file_identity, recall, remember, vouched

# Arrays with more elements than this are chunked and compressed.
COMPRESS_MIN_ELEMENTS = 4096
# HDF5 reuses the space of a rerun's deleted outputs only in part. The file growth of every
# rerun's commit is counted (root attribute RERUN_GROWTH); once it passes this fraction of the
# file, the commit writes a fresh, compact file instead: reruns never grow a file past 1.2 x a
# fresh one, and a cold run never pays for a rewrite.
MAX_RERUN_GROWTH = 0.15
RERUN_GROWTH = "rerun_growth_bytes"


class WithAttrs(NamedTuple):
    """A value for :meth:`StepTransaction.write_tree` with the attributes of its dataset (e.g. an angle's frame)."""

    value: object
    attrs: Mapping


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

        Checking a digest re-reads the step's outputs, so the answer is remembered for the
        file's identity (:mod:`..verified_memo`): any write, ours (a new file) or an edit,
        changes it, and the outputs are read again.
        """
        identity = file_identity(self.path)
        if identity is None:
            return {}
        remembered = recall(self.path, identity)
        if remembered is not None:
            return remembered
        t0 = time.perf_counter()
        vouches = vouched(self.path, identity)
        with self.open() as h5:
            if h5 is None or STEPS_GROUP not in h5:
                return {}
            verified = {}
            for name in h5[STEPS_GROUP]:
                record = StepRecord.read(h5, name)
                if record and record.status == "done" and (
                        vouches.get(name) == (record.cache_key, record.output_digest)
                        or digest_paths(h5, record.outputs) == record.output_digest):
                    verified[name] = record
        if file_identity(self.path) == identity:  # not replaced while we read it
            remember(self.path, identity, verified,
                     write_side_file=vouches != {n: (r.cache_key, r.output_digest) for n, r in verified.items()})
        BOOKKEEPING.add("verify", time.perf_counter() - t0)
        return dict(verified)

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
        self._crcs: dict[str, int | None] = {}  # per owned path, taken as it is written
        self._groups: dict = {}  # parent groups opened by write(), by path
        self.started_at = utc_now()
        self._t0 = time.perf_counter()

    def __enter__(self) -> "StepTransaction":
        # Records verified in the file as it is now stay valid in the copy, whose other
        # content is unchanged; remembering them saves re-reading every output after commit.
        self._carried = {name: record for name, record in OutputFile(self.path).verified_records().items()
                         if name != self.step and name not in self.dependents}
        super().__enter__()
        try:
            self._size_at_enter = self.tmp_path.stat().st_size
            self._drop_previous_outputs()
        except BaseException:
            self._discard()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        t0 = time.perf_counter()
        super().__exit__(exc_type, exc, tb)
        BOOKKEEPING.add("close", time.perf_counter() - t0)  # HDF5's final flush, fsync, rename
        if self._committed and exc_type is None:
            remember(self.path, file_identity(self.path), self._carried | {self.step: self.record})

    def _drop_previous_outputs(self) -> None:
        previous = StepRecord.read(self.h5, self.step)
        self._rerun = previous is not None
        if previous is None:
            return
        t0 = time.perf_counter()
        parents = set()
        for path in previous.outputs:
            obj_path, _, attr = path.partition("@")
            try:
                if attr:
                    self.h5[obj_path].attrs.pop(attr, None)
                else:
                    self.h5.id.unlink(obj_path.encode())
                    parents.add(posixpath.dirname(obj_path))
            except KeyError:
                continue  # already gone (deleted by hand, or with a group above it)
        # Groups that held only this step's datasets go too (e.g. a movie no longer sectioned),
        # deepest first, so a group emptied by removing its subgroups goes as well.
        pending = [(-p.count("/"), p) for p in parents if p]
        heapq.heapify(pending)
        while pending:
            _, parent = heapq.heappop(pending)
            group = self.h5.get(parent)
            if isinstance(group, h5py.Group) and len(group) == 0 and not group.attrs:
                del self.h5[parent]
                grandparent = posixpath.dirname(parent)
                if grandparent and grandparent not in parents:
                    parents.add(grandparent)
                    heapq.heappush(pending, (-grandparent.count("/"), grandparent))
        BOOKKEEPING.add("drop", time.perf_counter() - t0)

    # -- writing ----------------------------------------------------------------------------
    def write(self, path: str, value, attrs: Mapping | None = None, **dataset_options) -> None:
        """Create dataset ``path`` (replacing it), with ``attrs``, and mark it as owned by this step.

        Its CRC is taken here from ``value``, so the commit does not read it back: write the
        whole value at once (the dataset is not handed out for later changes).
        """
        t0 = time.perf_counter()
        if isinstance(value, str) or (isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)):
            # Lists (also empty ones) are lists of names; numeric data comes as arrays.
            array = np.array(value if isinstance(value, str) else list(value), dtype=STRING)
        else:
            array = np.asarray(value)
        big = array.size > COMPRESS_MIN_ELEMENTS and array.ndim > 0 and array.dtype.kind != "O"
        self._create(path, array, dataset_options, big)
        if attrs:
            dataset = self.h5[path]
            for key, attr_value in attrs.items():
                dataset.attrs[key] = attr_value
        t1 = time.perf_counter()
        if dataset_options.get("dtype") is not None:
            self._crcs[path] = None  # converted on the way in: the commit reads it back
        else:
            crc = dataset_crc("/" + path.strip("/"), array.dtype, array.shape, array)
            self._crcs[path] = with_attrs(crc, self.h5[path].attrs) if attrs else crc
        self.owned.add(path)
        BOOKKEEPING.add("compress" if big else "create", t1 - t0)
        BOOKKEEPING.add("digest", time.perf_counter() - t1)

    def _create(self, path: str, array: np.ndarray, dataset_options: dict, big: bool) -> None:
        for attempt in (0, 1):
            try:
                if big or dataset_options:
                    options = dict(dataset_options)
                    if big:
                        options.setdefault("compression", "gzip")
                        options.setdefault("compression_opts", 1)
                        options.setdefault("shuffle", True)
                        options.setdefault("chunks", True)
                    self.h5.create_dataset(path, data=array, **options)
                else:
                    create_small(self.h5, path, array, self._groups)
                return
            except ValueError:
                if attempt or path not in self.h5:
                    raise
                # Written before in this transaction (or by hand): replace it. Owned paths under
                # it lose their CRC: the commit reads them (and finds them missing).
                del self.h5[path]
                self._groups = {g: gid for g, gid in self._groups.items() if not (g + "/").startswith(path + "/")}
                for owned in self._crcs:
                    if owned.startswith(path + "/") or owned.startswith(path + "@"):
                        self._crcs[owned] = None

    def write_tree(self, path: str, mapping: Mapping) -> None:
        """Write a nested mapping as the lab's writer does: a mapping is a group (an empty one an
        empty group), a value a dataset (scalars 0-d; :class:`WithAttrs` with its attributes),
        None nothing."""
        for key, value in mapping.items():
            if value is None:
                continue
            child = f"{path}/{key}"
            if isinstance(value, Mapping):
                if value:
                    self.write_tree(child, value)
                else:
                    self.write_group(child)
            elif isinstance(value, WithAttrs):
                self.write(child, value.value, attrs=value.attrs)
            else:
                self.write(child, value)

    def write_group(self, path: str) -> None:
        """Create an empty group owned by this step (the lab's writer makes one for a dict without values).

        Nothing may be written under it afterwards: its CRC is taken now, empty.
        """
        t0 = time.perf_counter()
        self.h5.require_group(path)
        self._crcs[path] = path_crc(self.h5, path)
        self.owned.add(path)
        BOOKKEEPING.add("create", time.perf_counter() - t0)

    def set_attrs(self, path: str, attrs: Mapping) -> None:
        """Set attributes on a (possibly shared) group; each attribute is owned by this step."""
        t0 = time.perf_counter()
        group = self.h5.require_group(path)
        for key, value in attrs.items():
            group.attrs[key] = value
            self._crcs[f"{path}@{key}"] = attr_crc(group.attrs[key])  # as stored, e.g. str -> bytes
            self.owned.add(f"{path}@{key}")
        BOOKKEEPING.add("create", time.perf_counter() - t0)

    # -- commit -----------------------------------------------------------------------------
    def commit(self, *, cache_key: str, code_version: str, parameters: dict,
               input_fingerprint: dict, warnings: list[str], summary: dict) -> StepRecord:
        """Write the step record, update ``completed_steps`` and mark dependents stale."""
        t0 = time.perf_counter()
        outputs = sorted(self.owned)
        crcs = {path: self._crcs.get(path) for path in outputs}
        unknown = [path for path, crc in crcs.items() if crc is None]
        digest = combine(crcs) if not unknown else digest_paths(self.h5, outputs)
        t1 = time.perf_counter()
        record = StepRecord(
            step=self.step, status="done", cache_key=cache_key, code_version=code_version,
            parameters=parameters, input_fingerprint=input_fingerprint, outputs=outputs,
            output_digest=digest, started_at=self.started_at,
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
        t2 = time.perf_counter()
        self._bound_size()
        BOOKKEEPING.add("digest", t1 - t0)
        BOOKKEEPING.add("record", t2 - t1)
        BOOKKEEPING.add("rewrite", time.perf_counter() - t2)
        self.keep()
        return record

    def _bound_size(self) -> None:
        if not self._rerun:
            return
        self.h5.flush()
        size = self.h5.id.get_filesize()
        growth = int(self.h5.attrs.get(RERUN_GROWTH, 0)) + max(0, size - self._size_at_enter)
        if growth <= MAX_RERUN_GROWTH * size:
            self.h5.attrs[RERUN_GROWTH] = growth
            return
        self._rewrite_fresh()
        self.h5.attrs[RERUN_GROWTH] = 0

    def _rewrite_fresh(self) -> None:
        """Replace the temporary copy by a compact one."""
        fresh = self.tmp_path.with_name(self.tmp_path.name.replace(".tmp-", ".tmp-fresh-"))
        try:
            rewrite_fresh(self.h5, fresh)
            self.h5.close()
            os.replace(fresh, self.tmp_path)
        finally:
            fresh.unlink(missing_ok=True)
            if not self.h5:
                self.h5 = h5py.File(self.tmp_path, "r+")

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
