"""Step 10 on a synthetic recording, with the packaged weights: axon directions and the optic-nerve head.

Axes: the eimage is ``(t, axis 1, axis 2)`` with axis 1 = MCS column - 1 and axis 2 = MCS row - 1
(:func:`mea_pipeline.mcs_io.sensor_frame_index`); the lab calls axis 1 "row" and axis 2 "col", so a
direction of 0 deg points along +axis 2 and 90 deg along +axis 1, and the ONH's x is axis 2.
"""

from __future__ import annotations

import dataclasses
import shutil

import h5py
import numpy as np
import torch

from mea_pipeline import __version__
from mea_pipeline.ap_tracking.model_io import default_model_path, weights_source
from mea_pipeline.mcs_io import SYNTH_MARK, sensor_frame_index
from mea_pipeline.runner import run_step
from mea_pipeline.schema import find_out
from mea_pipeline.steps import REGISTRY
from mea_pipeline.steps.ap_tracking import PACKAGED_WEIGHTS_WARNING
from mea_pipeline.store import OutputFile, StepRecord
from mea_pipeline.synth.cells import PITCH_UM
from output_copy import copy_output

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
        assert meta["selection"].asstr()[()] == "rgc units: labels"
        # The lab writes nothing for a unit without spikes: its status is in the metadata.
        unwritten = dict(zip(meta["unwritten_unit_ids"].asstr()[()], meta["unwritten_status"].asstr()[()]))
        assert unwritten == dict.fromkeys(silent, "no_eimage")
        for unit_id, label in labels.items():
            if unit_id in silent:
                assert "ap_tracking" not in h5[f"units/{unit_id}/features"], unit_id
                continue
            track = h5[f"units/{unit_id}/features/ap_tracking"]
            status = track["status"].asstr()[()]
            if label == "rgc":
                assert status in ("tracked", "no_pathway") and "prediction_sta_data" in track
            else:
                assert status == "second_pass" and "prediction_sta_data" not in track
                assert "soma_polar_coordinates/radius" in track
    # The bad-lane fix worked on step 10's copy: step 1's eimage still has its recorded digest.
    assert "load_recording" in OutputFile(processed["inputs"].output_path).verified_records()


def _is_scalar(dataset, kind: str, itemsize: int | None = 8) -> bool:
    dtype = dataset.dtype
    return dataset.shape == () and dtype.kind == kind and (itemsize is None or dtype.itemsize == itemsize)


def test_lab_keys_have_the_labs_dtypes_and_every_angle_names_its_frame(processed):
    """ref-steps-6-11.md 5.11: int64 soma/AIS scalars, float32 arrays, float64 pathway and polar values,
    a bool filter_by_cell_type, strings; angles carry ``frame`` = electrode, or retina once corrected."""
    with h5py.File(processed["inputs"].output_path) as h5:
        tracks = {u: h5[f"units/{u}/features/ap_tracking"] for u in h5["units"]
                  if "ap_tracking" in h5[f"units/{u}/features"]}
        assert tracks
        oriented = 0
        for unit_id, track in tracks.items():
            for key in ("t", "x", "y"):
                assert _is_scalar(track[f"refined_soma/{key}"], "i"), (unit_id, key)
            ais = track["axon_initial_segment"]
            assert isinstance(ais, h5py.Group) and set(ais) in (set(), {"t", "x", "y"}), unit_id
            assert all(_is_scalar(ais[key], "i") for key in ais), unit_id
            for key in ("slope", "intercept", "r_value", "p_value", "std_err"):
                assert _is_scalar(track[f"ap_pathway/{key}"], "f"), (unit_id, key)
            if "prediction_sta_data" in track:
                prediction = track["prediction_sta_data"]
                assert prediction.dtype == np.float32 and prediction.shape == (50, 65, 65)
                assert track["post_processed_data/filtered_prediction"].dtype == np.float32
                if "axon_centroids" in track["post_processed_data"]:
                    centroids = track["post_processed_data/axon_centroids"]
                    assert centroids.dtype == np.float32 and centroids.shape[1] == 3 and len(centroids) > 0
            assert track["direction_deg"].attrs["frame"] == "electrode", unit_id
            polar = track["soma_polar_coordinates"]
            for key in ("radius", "angle", "cartesian_x", "cartesian_y", "theta_deg", "theta_deg_raw",
                        "theta_deg_corrected", "transformed_x", "transformed_y"):
                assert _is_scalar(polar[key], "f"), (unit_id, key)
            assert _is_scalar(polar["original_x"], "i") and _is_scalar(polar["original_y"], "i")
            assert polar["quadrant"].asstr()[()] in ("Q1", "Q2", "Q3", "Q4")
            corrected = "angle_correction_applied" in polar
            oriented += corrected
            assert polar["theta_deg_raw"].attrs["frame"] == "electrode"
            for key in ("theta_deg", "theta_deg_corrected", "angle"):
                assert polar[key].attrs["frame"] == ("retina" if corrected else "electrode"), (unit_id, key)
            if corrected:
                assert dict(polar["angle_correction_applied"].attrs) == {"frame": "retina", "from_frame": "electrode"}
                assert _is_scalar(polar["angle_correction_applied"], "f")
        assert oriented == len(tracks), "the synthetic sheet gives every recording its Center_xy"

        meta = h5["metadata/ap_tracking"]
        assert meta["filter_by_cell_type"].dtype == np.bool_ and meta["filter_by_cell_type"][()]
        assert _is_scalar(meta["units_processed"], "i") and _is_scalar(meta["non_rgc_processed"], "i")
        assert _is_scalar(meta["dvnt_dv"], "f") and _is_scalar(meta["dvnt_nt"], "f")
        for key in ("model_path", "cell_type_filter", "dvnt_lr"):
            assert h5py.check_string_dtype(meta[key].dtype) is not None, key
        onh = meta["all_ap_intersection"]
        assert all(_is_scalar(onh[key], "f") for key in ("x", "y", "rmse")) and _is_scalar(onh["n_cells_used"], "i")
        assert onh["method"].asstr()[()] in ("iterative_refinement", "legacy")
        assert onh["consensus_direction"].attrs["frame"] == "electrode"
        assert dict(meta["angle_correction_deg"].attrs) == {"frame": "retina", "from_frame": "electrode"}

        # Every path the step wrote is declared, with its mark; every angle's declaration names its frame.
        for path in StepRecord.read(h5, "ap_tracking").outputs:
            out = find_out(REGISTRY, path)
            assert out is not None and out.origin is not None, path
            if isinstance(h5[path], h5py.Dataset) and "frame" in h5[path].attrs:
                assert out.frame and out.units in ("degrees", "radians"), path



def weight_warnings(inputs) -> list[str]:
    """The warnings of step 10's record that send the user to ``--ap-model``."""
    return [w for w in OutputFile(inputs.output_path).verified_records()["ap_tracking"].warnings if "--ap-model" in w]


def model_source(inputs) -> str:
    with h5py.File(inputs.output_path) as h5:
        return h5["metadata/ap_tracking/model_source"].asstr()[()]


def test_packaged_weights_on_a_synth_recording_warn_nothing(processed):
    inputs = processed["inputs"]
    with h5py.File(inputs.output_path) as h5:   # step 5 keeps synth's mark like every root attribute
        assert h5[f"metadata/cmcr_meta/{SYNTH_MARK}"].asstr()[()] == f"mea-pipeline synth {__version__}"
        assert h5[f"metadata/cmtr_meta/{SYNTH_MARK}"].asstr()[()] == f"mea-pipeline synth {__version__}"
    assert processed["config"].ap_model is None
    assert model_source(inputs) == "packaged" and weight_warnings(inputs) == []


def test_packaged_weights_on_a_recording_synth_did_not_write_warn_once(processed, tmp_path):
    """The same recording with synth's mark removed from its raw files, as a real recording: the packaged
    weights give one warning naming --ap-model; other weights given explicitly give none."""
    raw = tmp_path / "raw"
    raw.mkdir()
    inputs = copy_output(processed, tmp_path / "out")
    for role in ("cmcr", "cmtr"):   # same file names: the .cmtr's link to the .cmcr still resolves
        copy = raw / getattr(inputs, f"{role}_path").name
        shutil.copy(getattr(inputs, f"{role}_path"), copy)
        with h5py.File(copy, "r+") as f:
            del f.attrs[SYNTH_MARK]
        inputs = dataclasses.replace(inputs, **{f"{role}_path": copy})
    # No unit is labelled for the CNN: the warning is about the weights, not the units, and the runs stay short.
    config = dataclasses.replace(processed["config"], step_params={
        "ap_tracking": {"cell_type_filter": "no such label", "track_all_when_unlabelled": False}})
    assert run_step("file_metadata", inputs, config)["status"] == "done"
    assert run_step("ap_tracking", inputs, config)["status"] == "done"
    assert weight_warnings(inputs) == [PACKAGED_WEIGHTS_WARNING] and model_source(inputs) == "packaged"

    # Other weights (the packaged ones with one bias moved): 'given', no warning.
    state = torch.load(default_model_path(), weights_only=True)
    name = next(k for k in state if k.endswith("bias"))
    state[name] = state[name] + 1e-3
    other = tmp_path / "other_weights.pth"
    torch.save(state, other)
    assert run_step("ap_tracking", inputs, config.with_inputs(ap_model=other))["status"] == "done"
    assert weight_warnings(inputs) == [] and model_source(inputs) == "given"


def test_a_copy_of_the_packaged_weights_given_explicitly_is_still_the_packaged_weights(tmp_path):
    copy = tmp_path / "renamed.pth"
    shutil.copy(default_model_path(), copy)
    assert weights_source(None) == weights_source(copy) == weights_source(default_model_path()) == "packaged"
    copy.write_bytes(copy.read_bytes() + b"\0")   # other content: other weights (read or not)
    assert weights_source(copy) == "given"
