"""The manual cell-type label folder: ``<labels>/<recording_id>/{RGC,AC,Other,Unknown}``.

Fingerprint: the recording's folder listing (relative paths and sizes). A ``--labels`` that is
not a folder stops the batch; a recording without its sub-folder is a warning (every unit is
then 'no_label').
"""

from __future__ import annotations

from pathlib import Path

from .declaration import PATH, ExternalInput, InputOption


def _fingerprint(rec, config) -> dict:
    from ..labels import listing_fingerprint

    if config.labels is None:
        return {"absent": True}
    return {"folder": str(Path(config.labels) / rec.recording_id),
            "listing": listing_fingerprint(config.labels, rec.recording_id)}


def _check_batch(report, config) -> None:
    from ..labels import LABEL_CLASSES

    if config.labels is not None and not Path(config.labels).is_dir():
        report.error(f"--labels {config.labels} is not a folder; give the folder holding "
                     f"<recording_id>/{{{','.join(LABEL_CLASSES)}}} (or leave --labels out: every unit is "
                     "then 'no_label')")


def _check_recording(report, rec, config) -> None:
    if config.labels is not None and not (Path(config.labels) / rec.recording_id).is_dir():
        report.warning(f"{rec.recording_id}: no label folder {Path(config.labels) / rec.recording_id}; "
                       "every unit is 'no_label'")


LABELS = ExternalInput(
    "labels", "manual cell-type label folder (--labels)", fingerprint=_fingerprint,
    options=(InputOption("labels", PATH, "Manual label folder (<labels>/<recording_id>/{RGC,AC,Other,Unknown})"),),
    check_batch=_check_batch, check_recording=_check_recording)
