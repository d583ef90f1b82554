"""Step 10 on a synthetic recording, with the packaged weights: axon directions and the optic-nerve head.

Axes: the eimage is ``(t, axis 1, axis 2)`` with axis 1 = MCS column - 1 and axis 2 = MCS row - 1
(:func:`mea_pipeline.mcs_io.sensor_frame_index`); the lab calls axis 1 "row" and axis 2 "col", so a
direction of 0 deg points along +axis 2 and 90 deg along +axis 1, and the ONH's x is axis 2.
"""

from __future__ import annotations

import h5py
import numpy as np

from mea_pipeline.mcs_io import sensor_frame_index
from mea_pipeline.synth.cells import PITCH_UM
from mea_pipeline.store import OutputFile

FRAME_S = 1 / 20_000
MIN_AXON_FRAMES = 12  # the centroid fit needs 10 frames of axon signal; a visible axon spans a few more


def true_direction_deg(unit: dict) -> float:
    path = np.asarray(unit["axon"]["path"])                  # (k, 2) 1-based (row, column)
    d_axis1, d_axis2 = path[-1, 1] - path[0, 1], path[-1, 0] - path[0, 0]
    return float(np.degrees(np.arctan2(d_axis1, d_axis2)) % 360)


def visible_axon(unit: dict, n_spikes_used: int) -> bool:
    """A ganglion cell with spikes whose axon signal crosses the array for long enough to be fitted."""
    if unit["axon"] is None or n_spikes_used == 0:
        return False
    path = np.asarray(unit["axon"]["path"])
    length_um = np.hypot(*(path[-1] - path[0])) * PITCH_UM
    return length_um / (unit["axon"]["velocity_m_s"] * 1e6 * FRAME_S) >= MIN_AXON_FRAMES


def angle_error(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


def test_axon_directions_and_onh_match_the_truth(processed):
    truth = processed["truth"]
    errors = {}
    with h5py.File(processed["inputs"].output_path) as h5:
        for unit in truth["units"]:
            used = h5[f"units/{unit['unit_id']}/features/eimage_sta/metadata/n_spikes_used"][()]
            if unit["label"] != "rgc" or not visible_axon(unit, used):
                continue  # only units labelled rgc get the CNN (the others: soma, AIS, polar coordinates)
            track = h5[f"units/{unit['unit_id']}/features/ap_tracking"]
            assert track["status"].asstr()[()] in ("tracked", "no_pathway"), unit["unit_id"]
            found = track["direction_deg"][()]
            errors[unit["unit_id"]] = angle_error(found, true_direction_deg(unit)) if np.isfinite(found) else 180.0
        onh = h5["metadata/ap_tracking/all_ap_intersection"]
        onh_axis2, onh_axis1 = onh["x"][()], onh["y"][()]
    assert len(errors) >= 4, "too few units with a visible axon to judge"
    assert np.mean([e <= 20 for e in errors.values()]) >= 0.8, errors
    true_axis1, true_axis2 = sensor_frame_index(*truth["onh"])
    assert np.hypot(onh_axis1 - true_axis1, onh_axis2 - true_axis2) <= 5, (onh_axis1, onh_axis2, truth["onh"])


def test_units_are_recorded_with_their_status_and_step_1_is_untouched(processed):
    truth = processed["truth"]
    silent = {u["unit_id"] for u in truth["units"] if u["silent"]}
    labels = {u["unit_id"]: u["label"] for u in truth["units"]}
    with h5py.File(processed["inputs"].output_path) as h5:
        meta = h5["metadata/ap_tracking"]
        lanes = sorted(c - 1 for c in truth["sheet"]["bad_lanes"])
        np.testing.assert_array_equal(meta["bad_lanes_fixed"][()], lanes)
        assert meta["dvnt_lr"].asstr()[()] == truth["sheet"]["center_xy"][0]
        for unit_id, label in labels.items():
            track = h5[f"units/{unit_id}/features/ap_tracking"]
            status = track["status"].asstr()[()]
            if unit_id in silent:
                assert status == "no_eimage" and "NaN" in track["reason"].asstr()[()]
            elif label == "rgc":
                assert status in ("tracked", "no_pathway") and "prediction_sta_data" in track
            else:
                assert status == "second_pass" and "prediction_sta_data" not in track
                assert "soma_polar_coordinates/radius" in track
    # The bad-lane fix worked on step 10's copy: step 1's eimage still has its recorded digest.
    assert "load_recording" in OutputFile(processed["inputs"].output_path).verified_records()
