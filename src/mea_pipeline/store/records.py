"""Step records (what ``pipeline/steps/<step>`` holds) and the store's bookkeeping clock."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone

import h5py

from .. import __version__

STEPS_GROUP = "pipeline/steps"
COMPLETED_STEPS = "pipeline/completed_steps"
# Attributes of pipeline/steps/<step> telling that the last attempt failed (cleared on success).
FAILURE_ATTRS = ("last_error", "last_error_at")


class Bookkeeping:
    """Seconds the store spent on each kind of bookkeeping in this process (the benchmark reads
    it): ``copy`` (the file copied for a commit), ``create`` (datasets and attributes created and
    written), ``compress`` (the same for the large arrays written chunked with gzip: mostly the
    compression), ``digest``, ``record`` (step records and ``completed_steps``), ``drop`` (a
    rerun's previous outputs removed), ``rewrite`` (compaction), ``verify`` (digests checked on
    reading)."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    def add(self, kind: str, seconds: float) -> None:
        self.seconds[kind] += seconds

    def snapshot(self) -> dict[str, float]:
        return dict(self.seconds)


BOOKKEEPING = Bookkeeping()


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def attr_str(value) -> str:
    """An HDF5 string attribute as str (h5py returns some as bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


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
