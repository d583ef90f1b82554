"""The external inputs a step may read, each declared once: how it is located and fingerprinted.

A step names the inputs it reads (``reads=("cmcr", "stimuli")``); an unknown name is an error
when the step is declared. Every declared input enters the step's cache key through its
fingerprint, so a change of any of them reruns exactly the steps that read it:

* raw recordings (``cmcr``, ``cmtr``): size, mtime and a hash of the first 64 KiB: cheap on
  80 GB files on a network drive. They are the only *raw* inputs: they count against the
  raw-read limit and may be offline once steps 1-5 are done (two-stage runs);
* the stimulus library: content of its tables and JSONs (movie arrays by size and mtime),
  plus the playlist name;
* the recording's label folder: its listing (relative paths and sizes);
* the sheet: the content of the row matched to the recording (an edited row reruns step 8);
* model weights and the crossing table: the file content.

Locating may give ``None`` for optional inputs (no label folder, no sheet, the packaged
default weights); the fingerprint then says so, and the step decides what that means.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    from .config import PipelineConfig, RecordingInputs

HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class ExternalInput:
    """One kind of input from outside the output file.

    Attributes
    ----------
    name : str
        What steps write in ``reads``.
    description : str
        One line for the schema document and error messages.
    raw : bool
        A raw recording file (raw-read limit, two-stage runs).
    fingerprint : callable
        ``(recording, config) -> dict``: what identifies this input's content for one
        recording; raises :class:`InputError` when a required input is missing.
    """

    name: str
    description: str
    raw: bool
    fingerprint: Callable[["RecordingInputs", "PipelineConfig"], dict]


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


def _cmcr(rec, config) -> dict:
    return file_fingerprint(rec.cmcr_path, "cmcr")


def _cmtr(rec, config) -> dict:
    return file_fingerprint(rec.cmtr_path, "cmtr")


def _stimuli(rec, config) -> dict:
    from .stimulus_library import StimulusLibrary

    if config.stimuli is None:
        raise InputError("this step needs the stimulus library; pass --stimuli DIR (or stimuli = ... in --config)")
    return {"folder": str(config.stimuli), "content": StimulusLibrary(config.stimuli).fingerprint(),
            "playlist": config.playlist}


def _labels(rec, config) -> dict:
    from .labels import listing_fingerprint

    if config.labels is None:
        return {"absent": True}
    return {"folder": str(Path(config.labels) / rec.recording_id),
            "listing": listing_fingerprint(config.labels, rec.recording_id)}


def _sheet(rec, config) -> dict:
    from .sheet.table import match_row, row_digest

    path = config.sheet_table()
    if path is None:
        return {"absent": True}
    row, rule = match_row(cached_table(path), rec.recording_id)
    return {"rule": rule, "row": row_digest(row) if row is not None else None}


_TABLES: dict[tuple, object] = {}


def cached_table(path: Path, typed: bool = False):
    """The sheet table at ``path``, read once per file version (a batch reads one snapshot).

    Every cell as text, or with ``typed`` as pandas infers it (the lab's reading, see
    :func:`mea_pipeline.sheet.table.read_typed_table`).
    """
    from .sheet.table import read_table, read_typed_table

    try:
        stat = Path(path).stat()
    except FileNotFoundError:
        raise InputError(f"Google-Sheet CSV {path} does not exist; give an export of the sheet (--gsheet-csv)"
                         ) from None
    identity = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if any(key[1:] != identity for key in _TABLES):
        _TABLES.clear()
    key = (typed, *identity)
    if key not in _TABLES:
        _TABLES[key] = read_typed_table(path) if typed else read_table(path)
    return _TABLES[key]


def default_ap_model_path() -> Path:
    """The packaged default CNN weights. Named here, not in ``ap_tracking``, whose import loads
    torch: a cache-key check (a skip, ``--recheck``) must not pay seconds for it."""
    return Path(str(resources.files("mea_pipeline").joinpath("data", "ap_cnn_default.pth")))


def _ap_model(rec, config) -> dict:
    return content_fingerprint(config.ap_model or default_ap_model_path()) | {"device": config.device}


def _on_off_dict(rec, config) -> dict:
    return content_fingerprint(config.on_off_dict)


INPUTS: dict[str, ExternalInput] = {i.name: i for i in (
    ExternalInput("cmcr", "raw .cmcr recording (sensor data, analog channels)", True, _cmcr),
    ExternalInput("cmtr", "spike-sorted .cmtr file", True, _cmtr),
    ExternalInput("stimuli", "stimulus library (--stimuli) and playlist (--playlist)", False, _stimuli),
    ExternalInput("labels", "manual cell-type label folder (--labels)", False, _labels),
    ExternalInput("sheet", "the lab's sheet: the snapshot of this batch or --gsheet-csv", False, _sheet),
    ExternalInput("ap_model", "AP-tracking CNN weights (--ap-model; default: the packaged weights)", False, _ap_model),
    ExternalInput("on_off_dict", "the lab's moving-bar crossing pickle (--on-off-dict, optional)", False,
                  _on_off_dict),
)}

RAW_INPUTS = frozenset(name for name, spec in INPUTS.items() if spec.raw)


def declare_inputs(step_name: str, reads) -> frozenset[str]:
    """The names of a step's inputs; an ExternalInput declared by the step is added to :data:`INPUTS`.

    An unknown name is a programming error.
    """
    names = set()
    for item in reads:
        if isinstance(item, ExternalInput):
            if INPUTS.get(item.name, item) != item:
                raise ValueError(f"step {step_name} declares input {item.name!r}, which is already another input")
            INPUTS[item.name] = item
            item = item.name
        names.add(item)
    reads = frozenset(names)
    unknown = sorted(reads - set(INPUTS))
    if unknown:
        raise ValueError(f"step {step_name} reads unknown input(s) {unknown}; known: {', '.join(INPUTS)}")
    return reads


def fingerprints(reads, rec, config) -> dict:
    """Fingerprint of every input in ``reads`` (sorted by name)."""
    return {name: INPUTS[name].fingerprint(rec, config) for name in sorted(reads)}
