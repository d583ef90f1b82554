"""Steps 8-9 on a synthetic recording: the sheet row and the manual labels against the truth."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from mea_pipeline.config import RecordingInputs
from mea_pipeline.runner import run_step
from mea_pipeline.sheet.table import canonical_file_name
from mea_pipeline.store import OutputFile
from mea_pipeline.synth.sheet_export import SHEET_COLUMNS
from output_copy import copy_output

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
LAB_CSV = SHARED / "reference" / "gsheet" / "gsheet_table.csv"


def text(h5, path: str) -> str:
    return h5[path].asstr()[()]


def test_sheet_row_is_the_recordings_row_as_text(processed):
    rid, truth = processed["inputs"].recording_id, processed["truth"]
    with h5py.File(processed["inputs"].output_path) as h5:
        row = h5["metadata/gsheet_text"]
        assert len(row) == len(SHEET_COLUMNS) and set(row) == set(h5["metadata/gsheet_row"])
        assert "Max_min_mm2" in row and "Max_Count_sec" in row and "Quality (1-5)" in row
        assert all(row[key].dtype.kind == "O" and row[key].shape == () for key in row)
        assert text(h5, "metadata/gsheet_text/File_name") == canonical_file_name(rid)
        assert text(h5, "metadata/gsheet_text/Bad_lanes") == ", ".join(map(str, truth["sheet"]["bad_lanes"]))
        assert text(h5, "metadata/gsheet_text/Center_xy") == truth["sheet"]["center_xy"]
        assert text(h5, "metadata/gsheet_match/rule") == "exact"
        typed = h5["metadata/gsheet_row"]
        for key in row:  # the lab's key holds the same cell, typed
            cell = text(h5, f"metadata/gsheet_text/{key}")
            if typed[key].dtype.kind == "b":
                assert cell.upper() == str(typed[key][()]).upper(), key
            elif typed[key].dtype.kind in "if":
                assert float(cell) == typed[key][()], key
            else:
                assert text(h5, f"metadata/gsheet_row/{key}") == cell, key
        assert typed["Dur(Sec)"].dtype == np.float64 and typed["File_name"].dtype.kind == "O"
        assert text(h5, "metadata/gsheet_match/source") == "csv"
    record = OutputFile(processed["inputs"].output_path).verified_records()["gsheet_metadata"]
    assert record.summary["source"] == "csv" and record.summary["rule"] == "exact"


def test_recording_without_a_sheet_row_completes_with_a_warning(processed, tmp_path):
    inputs = copy_output(processed, tmp_path)
    table = pd.read_csv(processed["config"].gsheet_csv, dtype=str, keep_default_na=False)
    other = tmp_path / "other_rows.csv"
    table[table["File_name"] != canonical_file_name(inputs.recording_id)].to_csv(other, index=False)
    assert run_step("gsheet_metadata", inputs, processed["config"].with_inputs(gsheet_csv=other))["status"] == "done"
    record = OutputFile(inputs.output_path).verified_records()["gsheet_metadata"]
    assert record.summary["rule"] == "none"
    assert any(canonical_file_name(inputs.recording_id) in w and "add the recording" in w for w in record.warnings)
    with h5py.File(inputs.output_path) as h5:
        assert "metadata/gsheet_row" not in h5 and text(h5, "metadata/gsheet_match/rule") == "none"


def test_lab_sheet_export_gives_the_row_of_a_real_recording(tmp_path, processed):
    if not LAB_CSV.exists():
        pytest.skip("shared reference files absent")
    rid = "2024.08.08-10.40.20-Rec"
    inputs = RecordingInputs(rid, tmp_path / f"{rid}.h5")
    config = processed["config"].with_inputs(gsheet_csv=LAB_CSV)
    assert run_step("gsheet_metadata", inputs, config)["status"] == "done"
    with h5py.File(inputs.output_path) as h5:
        assert text(h5, "metadata/gsheet_text/File_name") == "2024.08.08.10.40.20.Rec.cmcr"
        assert text(h5, "metadata/gsheet_text/Dur(Sec)") == "1199.6"
        assert text(h5, "metadata/gsheet_text/Simulation") == "TRUE"
        assert text(h5, "metadata/gsheet_match/rule") == "exact"
        # The lab's key holds each cell as the lab's pandas round trip leaves it (ref-steps-6-11 3.3):
        # a number column float64, a TRUE/FALSE column bool, text stays text, an empty cell ''.
        row = h5["metadata/gsheet_row"]
        assert row["Dur(Sec)"].dtype == np.float64 and row["Dur(Sec)"][()] == 1199.6
        assert row["Simulation"].dtype.kind == "b" and row["Simulation"][()]
        lab_text = {"File_name": "2024.08.08.10.40.20.Rec.cmcr", "Center_xy": "R, -5, 5", "Sheet Name": "Data_2024",
                    "Hour": "#REF!", "Chip": "4144", "Bad_lanes": "", "Quality (1-5)": "", "Experimenter": ""}
        for key, value in lab_text.items():
            assert row[key].dtype.kind == "O" and text(h5, f"metadata/gsheet_row/{key}") == value, key
        assert sum(row[key].dtype.kind != "O" for key in row) == 2


def test_labels_equal_the_truth(processed):
    truth = {u["unit_id"]: u["label"] for u in processed["truth"]["units"]}
    assert {"rgc", "unknown", "no_label"} <= set(truth.values())  # precedence and an unlabelled unit occur
    with h5py.File(processed["inputs"].output_path) as h5:
        found = {unit: text(h5, f"units/{unit}/auto_label/axon_type") for unit in h5["units"]}
        assert found == truth
        assert h5["metadata/cell_type_labels/n_labelled"][()] == sum(v != "no_label" for v in truth.values())
        assert h5["metadata/cell_type_labels/folder_found"][()] == 1


def test_missing_label_folder_is_a_warning_and_step_10_says_why(processed, tmp_path):
    inputs = copy_output(processed, tmp_path)
    config = processed["config"].with_inputs(labels=tmp_path / "no_such_labels")
    assert run_step("cell_type_labels", inputs, config)["status"] == "done"
    record = OutputFile(inputs.output_path).verified_records()["cell_type_labels"]
    assert record.summary["n_labelled"] == 0 and any("no label folder" in w for w in record.warnings)
    with h5py.File(inputs.output_path) as h5:
        assert {text(h5, f"units/{u}/auto_label/axon_type") for u in h5["units"]} == {"no_label"}
    assert run_step("ap_tracking", inputs, config)["status"] == "done"
    summary = OutputFile(inputs.output_path).verified_records()["ap_tracking"].summary
    assert summary["selection"] == "all units: no labels" and "tracking all" in summary["selection_note"]
    with h5py.File(inputs.output_path) as h5:
        assert text(h5, "metadata/ap_tracking/selection") == "all units: no labels"
        meta = h5["metadata/ap_tracking"]
        assert not meta["filter_by_cell_type"][()] and meta["non_rgc_processed"][()] == 0
