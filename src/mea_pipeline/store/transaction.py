"""One step's outputs written atomically, with the step's record, into the output file.

Every step runs inside a :class:`StepTransaction`: it works on a temporary copy of
``<recording_id>.h5`` (:class:`.atomic.AtomicUpdate`) and the copy replaces the original only
after the step's outputs, its record ``pipeline/steps/<step>`` and ``pipeline/completed_steps``
are written and flushed to disk.

A record lists the HDF5 paths the step owns and a CRC32 digest of their content, so a step
whose output was deleted or edited afterwards is recognised as not done. The digest is taken as
the step writes (:mod:`.digest`), and which records are verified is remembered by the file's
identity (:mod:`.verified_memo`); docs/ARCHITECTURE.md explains why both keep the contract.
"""

from __future__ import annotations

import heapq
import os
import posixpath
import time
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np

from .atomic import AtomicUpdate
from .digest import attr_crc, combine, dataset_crc, digest_paths, path_crc, with_attrs
from .records import BOOKKEEPING, COMPLETED_STEPS, FAILURE_ATTRS, STEPS_GROUP, StepRecord, attr_str, utc_now
from .verified_memo import file_identity, remember, verified_records
from .writes import STRING, create_small, rewrite_fresh

# Arrays with more elements than this are chunked and compressed.
COMPRESS_MIN_ELEMENTS = 4096
# HDF5 reuses the space of a rerun's deleted outputs only in part. The file growth of every
# rerun's commit is counted (root attribute RERUN_GROWTH); once it passes this fraction of the
# file, the commit writes a fresh, compact file instead: reruns never grow a file past 1.2 x a
# fresh one, and a cold run never pays for a rewrite.
MAX_RERUN_GROWTH = 0.15
RERUN_GROWTH = "rerun_growth_bytes"


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
        self._carried = {name: record for name, record in verified_records(self.path).items()
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
            if attr_str(self.h5[f"{STEPS_GROUP}/{name}"].attrs.get("status")) == "done"
        ]
        if COMPLETED_STEPS in self.h5:
            del self.h5[COMPLETED_STEPS]
        rank = {name: i for i, name in enumerate(self.order)}
        done.sort(key=lambda name: (rank.get(name, len(rank)), name))
        self.h5.create_dataset(COMPLETED_STEPS, data=done, dtype=STRING)
