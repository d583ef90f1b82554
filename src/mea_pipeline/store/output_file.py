"""Read access and step bookkeeping of one recording's output file, ``<recording_id>.h5``."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import h5py

from .atomic import AtomicUpdate
from .digest import digest_paths
from .records import STEPS_GROUP, StepRecord, attr_str, utc_now
from .transaction import StepTransaction
from .verified_memo import verified_records


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
        """Records of steps that are done and whose outputs still match their digest
        (remembered by the file's identity: :func:`.verified_memo.verified_records`)."""
        return verified_records(self.path)

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
                    states[name] = "failed: " + attr_str(attrs["last_error"])
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
                    order: Iterable[str] = ()) -> StepTransaction:
        """``dependents`` become stale on commit; ``order`` sorts ``completed_steps``."""
        return StepTransaction(self.path, step, tuple(dependents), tuple(order))
