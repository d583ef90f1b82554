"""What an external input is: its options (flag and config key), fingerprint and pre-flight checks."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from ..config import PipelineConfig, RecordingInputs

HEADER_BYTES = 64 * 1024
PATH, TEXT = "path", "text"


@dataclass(frozen=True)
class InputOption:
    """One value a user gives for an input: config key ``key``, command-line flag ``--key`` (``_`` -> ``-``).

    ``kind`` is :data:`PATH` (read as a ``Path``, ``~`` expanded) or :data:`TEXT`.
    """

    key: str
    kind: str
    help: str
    default: Any = None

    def __post_init__(self):
        if self.kind not in (PATH, TEXT):
            raise ValueError(f"option {self.key}: kind must be {PATH!r} or {TEXT!r}")

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")

    def parse(self, value):
        """The value as steps use it (a Path for a path option), from a flag, a config file or JSON."""
        if value is None or self.kind == TEXT:
            return value
        return Path(value).expanduser()


@dataclass(frozen=True)
class ExternalInput:
    """One kind of input from outside the output file, declared once.

    Attributes
    ----------
    name : str
        What steps write in ``reads``; the key of its fingerprint in a step's cache key.
    description : str
        One line for the schema document, ``mea-pipeline params`` and error messages.
    fingerprint : callable
        ``(recording, config) -> dict``: what identifies this input's content for one
        recording; raises :class:`InputError` when a required input is missing.
    options : tuple of InputOption
        The values users give (flags of every processing command, keys of the config file).
    raw : bool
        A raw recording file (raw-read limit, two-stage runs, retries on network drives).
    check_batch : callable, optional
        ``(report, config)``: pre-flight once per batch (errors stop the batch).
    check_recording : callable, optional
        ``(report, recording, config)``: pre-flight per recording, cheap reads only.
    """

    name: str
    description: str
    fingerprint: Callable[["RecordingInputs", "PipelineConfig"], dict]
    options: tuple[InputOption, ...] = ()
    raw: bool = False
    check_batch: Callable[[Any, "PipelineConfig"], None] | None = None
    check_recording: Callable[[Any, "RecordingInputs", "PipelineConfig"], None] | None = None


def file_fingerprint(path: Path | None, role: str) -> dict:
    """Size, mtime and a hash of the header of a raw file (cheap on 80 GB files)."""
    if path is None or not Path(path).is_file():
        raise InputError(f"{role} file not found: {path}; check the mapping CSV or --{role}")
    path = Path(path)
    stat = path.stat()
    with path.open("rb") as handle:
        head = hashlib.sha256(handle.read(HEADER_BYTES)).hexdigest()[:16]
    return {"name": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "header_sha256": head}


def content_fingerprint(path: Path | None) -> dict:
    """SHA-256 of a small file's content; ``{'absent': True}`` when no file is configured."""
    if path is None:
        return {"absent": True}
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input file not found: {path}; check the flag or config key that names it")
    return {"name": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
