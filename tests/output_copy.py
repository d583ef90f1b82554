"""Copy the shared processed output before a test changes it (the original stays read-only)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from mea_pipeline.config import RecordingInputs


def copy_output(processed: dict, folder: Path) -> RecordingInputs:
    """The ``processed`` recording with its output copied into ``folder`` (created if needed)."""
    inputs = processed["inputs"]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / inputs.output_path.name
    shutil.copy(inputs.output_path, target)
    return dataclasses.replace(inputs, output_path=target)
