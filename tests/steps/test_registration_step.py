"""Step 11's stimulus registration and the preferred direction in three frames, against the generator's truth.

Expected values are written out here from the spec's parameters (transposed, rotated 30 deg,
magnified 1.5 x, shifted (2, -3) electrodes): a direction ``a`` on the screen moves along
``30 + 90 - a`` on the chip; one stimulus pixel is ``1.5 * (64 / 14) / 20`` electrodes.
"""

from __future__ import annotations

import dataclasses
import math

import h5py
import numpy as np
import pytest

from mea_pipeline.runner import run_step
from mea_pipeline.synth.spec import MOVING_BAR
from output_copy import copy_output

FEATURES = "units/{}/features/" + MOVING_BAR + "/dsgc"
REGISTRATION = "metadata/stimulus_registration"
CARDINALS = ("nasal", "dorsal", "temporal", "ventral")   # 0, 90, 180, 270 deg in the retina frame


def angle_error(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


def text(dataset) -> str:
    return dataset.asstr()[()]


def registration_of(h5) -> dict:
    group = h5[REGISTRATION]
    return {key: group[key].asstr()[()] if group[key].dtype.kind == "O" else group[key][()] for key in group}


def tuned_units(truth: dict) -> list[dict]:
    return [u for u in truth["units"] if u["tuned"] and not u["silent"]]


def test_the_registration_recovers_the_mirrored_rotated_scaled_stimulus(registered):
    truth = registered["truth"]
    with h5py.File(registered["inputs"].output_path) as h5:
        fit = registration_of(h5)
        assert h5[f"{REGISTRATION}/rotation_deg"].attrs["frame"] == "electrode"
    assert fit["status"] == "ok" and fit["reason"] == "" and fit["kind"] == "similarity"
    assert fit["reflected"]
    assert angle_error(fit["rotation_deg"], 30.0) < 5.0, fit["rotation_deg"]
    electrodes_per_px = 1.5 * (64 / 14) / 20
    assert fit["scale"] == pytest.approx(electrodes_per_px, rel=0.05)
    assert fit["scale_um_per_px"] == pytest.approx(fit["scale"] * 16.0)
    # The middle of the 300 x 300 image (pixel index 149.5) lies over chip centre 32 + (2, -3).
    centre = fit["matrix"] @ np.array([149.5, 149.5]) + fit["offset"]
    np.testing.assert_allclose(centre, [34.0, 29.0], atol=2.0)
    # RF jitter of 0.3 checker (0.3 * 20 px * 0.343 electrodes * 16 um) ~ 33 um per axis.
    assert fit["residual_um"] < 80.0 and fit["residual_other_handedness_um"] > 3 * fit["residual_um"]
    assert fit["n_units_paired"] == len(truth["units"]) and fit["n_units_used"] >= 10
    # The soma side of each pair is the truth soma in the electrode frame: (MCS row - 1, MCS column - 1).
    somas = {u["unit_id"]: (u["row"] - 1, u["column"] - 1) for u in truth["units"]}
    for unit, xy in zip(fit["units"], fit["electrode_xy"]):
        np.testing.assert_allclose(xy, somas[unit], atol=0.5, err_msg=unit)


def test_every_tuned_units_preferred_direction_in_the_electrode_frame_matches_the_truth(registered):
    tuned = tuned_units(registered["truth"])
    assert len(tuned) >= 3   # the fixture's seed gives tuned units to check
    with h5py.File(registered["inputs"].output_path) as h5:
        for unit in tuned:
            group = h5[FEATURES.format(unit["unit_id"])]
            assert text(group["status"]) == "ok", unit["unit_id"]
            expected = (30.0 + 90.0 - unit["preferred_direction_deg"]) % 360.0
            assert unit["preferred_direction_electrode_deg"] == pytest.approx(expected), unit["unit_id"]
            measured = group["preferred_direction_electrode_deg"][()]
            assert angle_error(measured, expected) <= 30.0, (unit["unit_id"], measured, expected)
            assert text(group["preferred_direction_electrode_reason"]) == "", unit["unit_id"]
            assert group["preferred_direction_deg"].attrs["frame"] == "stimulus"
            assert group["direction_list"].attrs["frame"] == "stimulus"
            assert group["preferred_direction_electrode_deg"].attrs["frame"] == "electrode"
            assert group["preferred_direction_retina_deg"].attrs["frame"] == "retina"


def test_every_tuned_units_preferred_direction_in_the_retina_frame_follows_the_labs_rule(registered):
    truth = registered["truth"]
    # The lab's orientation: Center_xy "LR, DV, NT" with DV stored ventral-positive (flipped), NT nasal
    # positive; the correction turns the image angle from the ONH to (33, 33) (col, row) into atan2(DV, NT).
    _, dv_sheet, nt_sheet = truth["sheet"]["center_xy"].replace(" ", "").split(",")
    dv, nt = -float(dv_sheet), float(nt_sheet)
    onh_col, onh_row = truth["onh"][0] - 1, truth["onh"][1] - 1    # MCS (row, column) -> eimage (axis 2, axis 1)
    correction = math.degrees(math.atan2(dv, nt)) - math.degrees(math.atan2(33 - onh_row, 33 - onh_col))
    with h5py.File(registered["inputs"].output_path) as h5:
        assert text(h5[f"{REGISTRATION}/retina_reason"]) == ""
        for unit in tuned_units(truth):
            group = h5[FEATURES.format(unit["unit_id"])]
            expected = (30.0 + 90.0 - unit["preferred_direction_deg"] + correction) % 360.0
            measured = group["preferred_direction_retina_deg"][()]
            assert angle_error(measured, expected) <= 30.0, (unit["unit_id"], measured, expected)
            assert text(group["preferred_direction_retina_reason"]) == "", unit["unit_id"]
        for unit in h5["units"]:
            group = h5[FEATURES.format(unit)]
            if text(group["status"]) == "ok":
                angle = group["preferred_direction_retina_deg"][()]
                assert text(group["preferred_direction_retina_label"]) == CARDINALS[round(angle / 90) % 4], unit


def test_the_default_synthetic_stimulus_is_the_transpose_of_the_electrodes(processed):
    with h5py.File(processed["inputs"].output_path) as h5:
        fit = registration_of(h5)
        assert fit["status"] == "ok" and fit["reflected"]
        assert angle_error(fit["rotation_deg"], 0.0) < 5.0, fit["rotation_deg"]
        assert fit["scale"] == pytest.approx((64 / 14) / 20, rel=0.05)
        for unit in tuned_units(processed["truth"]):
            group = h5[FEATURES.format(unit["unit_id"])]
            expected = (90.0 - unit["preferred_direction_deg"]) % 360.0
            assert angle_error(group["preferred_direction_electrode_deg"][()], expected) <= 30.0, unit["unit_id"]


def test_too_few_units_refuse_the_registration_with_the_reason(processed, tmp_path):
    inputs = copy_output(processed, tmp_path)
    config = dataclasses.replace(processed["config"], step_params={"dsgc": {"registration_min_units": 50}})
    assert run_step("dsgc", inputs, config)["status"] == "done"
    with h5py.File(inputs.output_path) as h5:
        fit = registration_of(h5)
        assert fit["status"] == "refused" and "50 needed" in fit["reason"]
        assert np.isnan(fit["matrix"]).all() and np.isnan(fit["rotation_deg"])
        for unit in h5["units"]:
            group = h5[FEATURES.format(unit)]
            if text(group["status"]) != "ok":
                continue
            assert np.isfinite(group["preferred_direction_deg"][()]) or "no spikes" in text(group["reason"])
            assert np.isnan(group["preferred_direction_electrode_deg"][()]), unit
            assert np.isnan(group["preferred_direction_retina_deg"][()]), unit
            assert text(group["preferred_direction_electrode_reason"]).startswith("no stimulus registration: ")
            assert text(group["preferred_direction_retina_label"]) == ""
