"""Fixtures of the fault matrix (docs/reliability.md) and the figures line printed after the session."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import matrix

# Cheap but real step parameters for the end-to-end rows: step 10 loads the CNN and tracks no unit
# (none is labelled this way), step 7 skips the LN model, step 11 draws fewer permutations.
CHEAP_STEPS = """
[steps.ap_tracking]
cell_type_filter = "no_such_label"
track_all_when_unlabelled = false

[steps.rf_geometry]
lnl_fitting = false

[steps.dsgc]
n_permutations = 100
"""


def pytest_terminal_summary(terminalreporter):
    if matrix.ROWS:
        terminalreporter.write_sep("=", "fault matrix")
        terminalreporter.write_line(matrix.figures())


@pytest.fixture(scope="session")
def tiny_output(tiny, tmp_path_factory) -> dict:
    """Recording 0 of ``tiny`` through steps 1-5 with the plain runner: ``inputs`` and ``config``.

    Read-only: copy it first (``output_copy.copy_output``).
    """
    from mea_pipeline.config import PipelineConfig, RecordingInputs
    from mea_pipeline.runner import run_recording
    from mea_pipeline.steps import REGISTRY

    rec = tiny["recordings"][0]
    inputs = RecordingInputs(rec["recording_id"], tmp_path_factory.mktemp("tiny_output") / f"{rec['recording_id']}.h5",
                             Path(rec["cmcr"]), Path(rec["cmtr"]))
    config = PipelineConfig.load(tiny["config_file"], REGISTRY)
    run_recording(inputs, config, steps="1-5")
    return {"inputs": inputs, "config": config}


@pytest.fixture(scope="session")
def tiny(synth_dataset, tmp_path_factory) -> dict:
    """The session's tiny dataset with a config file naming its inputs and the cheap step parameters."""
    folder = tmp_path_factory.mktemp("tiny")
    config = folder / "pipeline.toml"
    config.write_text("\n".join([
        f"stimuli = {json.dumps(str(synth_dataset['stimuli_dir']))}",
        f"playlist = {json.dumps(synth_dataset['playlist'])}",
        f"labels = {json.dumps(str(synth_dataset['labels_dir']))}",
        f"gsheet_csv = {json.dumps(str(synth_dataset['gsheet_csv']))}",
    ]) + "\n" + CHEAP_STEPS)
    return synth_dataset | {"config_file": config}


def copy_library(source: Path, target: Path) -> Path:
    """A copy of a stimulus library whose movie arrays are symlinks (unlink one before changing it)."""
    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.suffix == ".npy":
            (target / path.name).symlink_to(path)
        else:
            shutil.copy(path, target / path.name)
    return target


@pytest.fixture
def library(tiny, tmp_path) -> Path:
    """A private copy of the tiny stimulus library to damage."""
    return copy_library(Path(tiny["stimuli_dir"]), tmp_path / "stimuli")
