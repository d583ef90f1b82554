"""Copy the shared processed output before a test changes it (the original stays read-only)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from mea_pipeline.config import RecordingInputs


def copy_output(processed: dict, folder: Path) -> RecordingInputs:
    """The ``processed`` recording with its output (and the NWB file beside it) copied into ``folder``
    (created if needed)."""
    inputs = processed["inputs"]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / inputs.output_path.name
    shutil.copy(inputs.output_path, target)
    nwb = inputs.output_path.with_suffix(".nwb")
    if nwb.is_file():
        shutil.copy(nwb, target.with_suffix(".nwb"))
    return dataclasses.replace(inputs, output_path=target)
