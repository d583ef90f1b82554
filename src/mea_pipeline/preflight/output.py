"""The output folder: a folder (not a file), writable, with room for a step's temporary copy."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..faults import describe
from .report import Report

# Below this much free space a batch is warned even when no output exists yet.
MIN_FREE_BYTES = 1 << 30


def check_output_folder(report: Report, folder: Path) -> None:
    """Errors for an output path that is a file or cannot be written; a warning when space is short.

    Nothing is created: writability is probed with an anonymous temporary file in the folder, or
    in its nearest existing parent when the batch has yet to create it.
    """
    folder = Path(folder)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        where = "" if existing == folder else f" ({existing} is a file)"
        report.error(f"--output {folder} is not a folder{where}; give a folder for the <recording_id>.h5 outputs")
        return
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        report.error(f"--output {folder}: cannot write in {existing}: {describe(exc)}")
        return
    largest = max((p.stat().st_size for p in folder.glob("*.h5")), default=0) if existing == folder else 0
    free = shutil.disk_usage(existing).free
    # A step works on a copy of its output file, so it needs that file's size free, and more.
    needed = max(MIN_FREE_BYTES, 2 * largest)
    if free < needed:
        report.warning(f"--output {folder}: only {free / 1e9:.2f} GB free; a step needs about its output file's "
                       f"size again ({largest / 1e9:.2f} GB for the largest here): free space or a step fails "
                       "with 'disk full'")
