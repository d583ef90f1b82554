"""Matrix rows R43-R55: the inputs of steps 8-11 from outside the recording (docs/reliability.md).

A sheet that cannot be read, a ``--labels`` path that is not a folder, weights that do not load
into the lab's CNN and a crossing pickle that is malformed or would run code stop ``batch`` before
any recording starts (exit code 2). A recording missing from the sheet or without a label folder
is a warning: the steps record it and complete, as the product decides.
"""

from __future__ import annotations

import os
import pickle

import pandas as pd
import pytest
import torch

import matrix
from cli_run import cli


class RunsAShellCommand:
    """Pickled, it asks the unpickler to call os.system (what a malicious pickle does)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def sheet_without_file_name(tiny, tmp):
    path = tmp / "sheet.csv"
    pd.read_csv(tiny["gsheet_csv"], dtype=str).drop(columns="File_name").to_csv(path, index=False)
    return ["--gsheet-csv", path]


def pickle_file(tmp, content) -> list:
    path = tmp / "on_off.pkl"
    path.write_bytes(pickle.dumps(content))
    return ["--on-off-dict", path]


def weights(tmp, content) -> list:
    path = tmp / "weights.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    return ["--ap-model", path]


BAD_INPUTS = {
    "R43": (sheet_without_file_name, ("sheet.csv has no 'File_name' column", "export the sheet")),
    "R44": (lambda tiny, tmp: ["--gsheet-csv", tmp / "gone.csv"], ("gone.csv does not exist", "--gsheet-csv")),
    "R46": (lambda tiny, tmp: ["--labels", tmp / "no_labels"], ("--labels", "no_labels is not a folder")),
    "R48": (lambda tiny, tmp: weights(tmp, b"PK\x03\x04 truncated download"),
            ("weights.pth: not a readable torch weight file",)),
    "R49": (lambda tiny, tmp: weights(tmp, {"fc.weight": torch.zeros(2, 2)}),
            ("weights.pth: missing keys", "expected the lab's CNN_3d_with_velocity architecture")),
    "R50": (lambda tiny, tmp: ["--ap-model", tmp / "none.pth"], ("none.pth: AP-tracking model file not found",)),
    "R51": (lambda tiny, tmp: ["--device", "tpu"], ("device: unknown value 'tpu'", "'auto', 'cpu' or 'cuda'")),
    "R52": (lambda tiny, tmp: pickle_file(tmp, [1, 2, 3]), ("on_off.pkl: expected a non-empty dict",)),
    "R53": (lambda tiny, tmp: pickle_file(tmp, RunsAShellCommand(tmp / "payload_ran")),
            ("on_off.pkl: refused", "nothing was run")),
    "R54": (lambda tiny, tmp: pickle_file(tmp, {(0, 0): {"on_peak_location": [1] * 5, "off_peak_location": [2] * 5}}),
            ("lists 5 sweeps per pixel", "has 24")),
    "R55": (lambda tiny, tmp: ["--on-off-dict", tmp / "none.pkl"], ("none.pkl: cannot read the ON/OFF table",)),
}


@pytest.mark.parametrize("row", sorted(BAD_INPUTS))
def test_bad_input_of_steps_8_to_11_stops_the_batch_in_one_line(row, tiny, tmp_path, capsys):
    flags, names = BAD_INPUTS[row]
    code, out, err = cli(capsys, "batch", "--config", tiny["config_file"], *flags(tiny, tmp_path),
                         "--csv", tiny["mapping_csv"], "--output", tmp_path / "out")
    assert code == 2 and out == ""
    matrix.record(row, err, out + err, names=names)
    assert not (tmp_path / "payload_ran").exists()


def test_recording_missing_from_the_sheet_is_a_warning(tiny, tmp_path, capsys):
    sheet = tmp_path / "sheet.csv"
    pd.read_csv(tiny["gsheet_csv"], dtype=str).iloc[1:].to_csv(sheet, index=False)
    code, out, err = cli(capsys, "check", "--config", tiny["config_file"], "--gsheet-csv", sheet,
                         "--csv", tiny["mapping_csv"], "--output", tmp_path / "out")
    assert code == 0  # step 8 completes with the warning (tests/steps/test_sheet_and_labels.py)
    line = next(line for line in out.splitlines() if "no row of" in line)
    matrix.record("R45", line, out + err, names=("sheet.csv", "File_name", "the steps that read the sheet record a warning"))


def test_recording_without_a_label_folder_is_a_warning(tiny, tmp_path, capsys):
    labels = tmp_path / "labels"
    labels.mkdir()
    code, out, err = cli(capsys, "check", "--config", tiny["config_file"], "--labels", labels,
                         "--csv", tiny["mapping_csv"], "--output", tmp_path / "out")
    assert code == 0  # step 9 completes with the warning (tests/steps/test_sheet_and_labels.py)
    line = next(line for line in out.splitlines() if "no label folder" in line)
    matrix.record("R47", line, out + err, names=(str(labels), "'no_label'"))
