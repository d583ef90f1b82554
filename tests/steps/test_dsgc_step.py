"""Step 11 on a synthetic recording, against the generator's truth and the projected movie itself.

The truth used here: each unit's RF centre on the projector image (``rf_center_px``), its direction
tuning (which acts only while the bar covers the RF), its spike samples, the display-frame onsets,
and the bar's crossing rule of the movie JSON (``synth.bar_crossings``). No pipeline code computes
an expected value; every non-silent unit is checked and named when it fails.
"""

from __future__ import annotations

import dataclasses
import json
import pickle

import h5py
import numpy as np
import pytest

from mea_pipeline.frames import STIMULUS
from mea_pipeline.runner import StepFailed, run_step
from mea_pipeline.store import OutputFile
from mea_pipeline.synth import bar_crossings
from mea_pipeline.synth.spec import DENSE_NOISE, MOVING_BAR
from output_copy import copy_output

FEATURES = "units/{}/features/" + MOVING_BAR + "/dsgc"
SECTION = "units/{}/spike_times_sectioned/" + MOVING_BAR + "/direction_section"
DIRECTIONS = [0, 45, 90, 135, 180, 225, 270, 315]
PADDING = 40
# 8 px along the motion at 5 px per frame, plus the crossing's frame rounding.
FRAME_TOLERANCE = 3


def dsgc_of(h5, unit_id: str) -> dict:
    group = h5[FEATURES.format(unit_id)]
    return {key: group[key].asstr()[()] if group[key].dtype.kind == "O" else group[key][()] for key in group}


def angle_error(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


def bar_config(processed) -> dict:
    return json.loads((processed["config"].stimuli / f"{MOVING_BAR}.json").read_text())


def units_of(processed, silent: bool = False) -> list[dict]:
    return [u for u in processed["truth"]["units"] if u["silent"] == silent]


def truth_bounds(config: dict, unit: dict) -> np.ndarray:
    """(n_sweeps, 2) [ON - 40, OFF + 40] of the bar at the unit's true RF centre, trial order."""
    on, off = bar_crossings(config, *unit["rf_center_px"])
    return np.stack([on - PADDING, off + PADDING], axis=1)


def observed_bounds(group) -> np.ndarray:
    """(n_sweeps, 2) section_bounds of a unit in trial order (repetition-major)."""
    per_direction = np.stack([group[f"{angle}/section_bounds"][()] for angle in DIRECTIONS])   # (8, 3, 2)
    return per_direction.transpose(1, 0, 2).reshape(-1, 2)


def test_every_unit_is_sectioned_or_skipped_for_its_reason(processed):
    with h5py.File(processed["inputs"].output_path) as h5:
        for unit in units_of(processed, silent=True):
            result = dsgc_of(h5, unit["unit_id"])
            assert result["status"] == "skipped" and "no RF centre" in result["reason"], unit["unit_id"]
            assert SECTION.format(unit["unit_id"]) not in h5
        for unit in units_of(processed):
            assert dsgc_of(h5, unit["unit_id"])["status"] == "ok", unit["unit_id"]
        assert h5["metadata/dsgc/n_units_sectioned"][()] == len(units_of(processed))


def test_lab_keys_keep_the_labs_structure_dtypes_and_frame(processed):
    """ref-steps-6-11 6.5: ``_attrs`` is a group of int64 datasets; trials and bounds int64 frames."""
    with h5py.File(processed["inputs"].output_path) as h5:
        for unit in units_of(processed):
            group = h5[SECTION.format(unit["unit_id"])]
            attrs = group["_attrs"]
            assert isinstance(attrs, h5py.Group), unit["unit_id"]
            expected = {"direction_list": (8,), "n_directions": (), "n_repetitions": (), "padding_frames": (),
                        "cell_center_row": (), "cell_center_col": ()}
            assert {k: (attrs[k].dtype, attrs[k].shape) for k in attrs} == \
                {k: (np.dtype(np.int64), shape) for k, shape in expected.items()}, unit["unit_id"]
            np.testing.assert_array_equal(attrs["direction_list"][()], DIRECTIONS)
            assert (attrs["n_directions"][()], attrs["n_repetitions"][()], attrs["padding_frames"][()]) == (8, 3, 40)
            assert sorted(group) == sorted([str(a) for a in DIRECTIONS] + ["_attrs"])
            for angle in DIRECTIONS:
                bounds = group[f"{angle}/section_bounds"]
                assert bounds.dtype == np.int64 and bounds.shape == (3, 2), (unit["unit_id"], angle)
                assert sorted(group[f"{angle}/trials"]) == ["0", "1", "2"]
                assert all(group[f"{angle}/trials/{k}"].dtype == np.int64 for k in "012")
        angles = [SECTION.format(u["unit_id"]) + "/_attrs/direction_list" for u in units_of(processed)]
        angles += [FEATURES.format(u["unit_id"]) + f"/{key}" for u in units_of(processed)
                   for key in ("preferred_direction_deg", "direction_list")]
        angles.append("metadata/dsgc/direction_list")
        assert {path: h5[path].attrs.get("frame") for path in angles} == dict.fromkeys(angles, STIMULUS)


def lab_pixel(h5, unit_id: str) -> np.ndarray:
    """(row, col) the lab's rule gives for step 7's Gaussian centre: int(c * 20 + 10), clipped to [0, 299]."""
    fit = h5[f"units/{unit_id}/features/sta_{DENSE_NOISE}/sta_geometry/gaussian_fit"]
    center = np.array([fit["center_y"][()], fit["center_x"][()]])
    return np.clip((center * 20 + 10).astype(int), 0, 299).astype(float)


def test_crossing_pixel_follows_the_lab_rule_on_the_lab_rf_centre(processed):
    """The lab's DSGC reads the crossings at step 7's lab Gaussian centre (``gaussian_fit``, the key its
    notebooks read): the pixel is that rule, every unit; a swapped axis or a missing +10 fails."""
    failures, transposed_misses = [], 0
    with h5py.File(processed["inputs"].output_path) as h5:
        for unit in units_of(processed):
            attrs = h5[SECTION.format(unit["unit_id"]) + "/_attrs"]
            pixel = np.array([attrs["cell_center_row"][()], attrs["cell_center_col"][()]], dtype=float)
            expected = lab_pixel(h5, unit["unit_id"])
            if not np.array_equal(pixel, expected):
                failures.append(f"{unit['unit_id']}: pixel {pixel} (row, col), lab rule {expected}")
            transposed_misses += not np.array_equal(pixel, expected[::-1])
    assert not failures, "\n".join(failures)
    assert transposed_misses >= len(units_of(processed)) // 2   # the check sees swapped axes


def test_windows_surround_the_bar_crossing_the_pixel_and_the_true_rf(processed):
    """Every sweep window is [ON - 40, OFF + 40] of the bar at the unit's pixel, computed here from the
    bar's geometry in its direction group and repetition (a bar read backward fails); and the bar's
    passage over the TRUE RF centre lies inside every window, so the response is in it even where the
    lab's Gaussian fit of 60 s of noise sits a few checkers off."""
    config = bar_config(processed)
    backward = json.loads(json.dumps(config))
    backward["generate_kwargs"]["directions_deg"] = [a + 180 for a in DIRECTIONS]
    failures, backward_misses = [], 0
    with h5py.File(processed["inputs"].output_path) as h5:
        for unit in units_of(processed):
            observed = observed_bounds(h5[SECTION.format(unit["unit_id"])])
            at_pixel = dict(unit, rf_center_px=lab_pixel(h5, unit["unit_id"]).tolist())
            error = np.abs(observed - truth_bounds(config, at_pixel)).max()
            if error > FRAME_TOLERANCE:
                failures.append(f"{unit['unit_id']}: windows {error} frames from the crossings at its pixel")
            true_passage = truth_bounds(config, unit) + [PADDING, -PADDING]   # [ON, OFF] at the true RF
            if not ((observed[:, 0] <= true_passage[:, 0]) & (true_passage[:, 1] <= observed[:, 1])).all():
                failures.append(f"{unit['unit_id']}: a window misses the bar's passage over the true RF")
            backward_misses += np.abs(observed - truth_bounds(backward, at_pixel)).max() > FRAME_TOLERANCE
    assert not failures, "\n".join(failures)
    assert backward_misses == len(units_of(processed))


def test_trials_hold_the_true_spikes_of_their_windows(processed):
    """trials/k: the unit's spikes of step 3's trials whose frame lies in the window, as movie frames."""
    truth = processed["truth"]
    # The lab's frame timestamp is the sample before the sync pulse rises (step 2 keeps it).
    onsets = np.asarray(truth["frame_onsets"]) - 1
    frame0 = truth["movie_frame0"][MOVING_BAR]
    trial_start, trial_end = truth["trials"][MOVING_BAR][0][0], truth["trials"][MOVING_BAR][-1][1]
    with h5py.File(processed["inputs"].output_path) as h5:
        for unit in units_of(processed):
            spikes = unit["spike_samples"][(unit["spike_samples"] >= trial_start) & (unit["spike_samples"] < trial_end)]
            frames = np.searchsorted(onsets, spikes, side="right") - 1 - frame0
            group = h5[SECTION.format(unit["unit_id"])]
            for angle in DIRECTIONS:
                for k, (start, end) in enumerate(group[f"{angle}/section_bounds"][()]):
                    inside = (frames >= start) & (frames <= end)
                    where = f"{unit['unit_id']} {angle} deg repetition {k}"
                    np.testing.assert_array_equal(group[f"{angle}/trials/{k}"][()], frames[inside], err_msg=where)
                    np.testing.assert_array_equal(group[f"{angle}/trials_samples/{k}"][()], spikes[inside],
                                                  err_msg=where)


def _bar_centroid(frame: np.ndarray, background: int) -> np.ndarray:
    rows, cols = np.nonzero(frame != background)
    return np.array([rows.mean(), cols.mean()])


def test_zero_degrees_is_motion_toward_plus_column_and_the_labels_agree(processed):
    """Read off the projected movie with plain numpy: the first sweep moves toward +column, and in
    every window of every unit the bar moves in the direction its group is named for."""
    movie = np.load(processed["config"].stimuli / f"{MOVING_BAR}.npy", mmap_mode="r")
    background = int(movie[0, 0, 0])
    lit = np.flatnonzero(np.concatenate([(movie[i:i + 256] != background).any(axis=(1, 2))
                                         for i in range(0, len(movie), 256)]))
    first_sweep = lit[: np.flatnonzero(np.diff(lit) > 1)[0] + 1]
    middle = first_sweep[len(first_sweep) // 2]
    step = _bar_centroid(movie[middle + 5], background) - _bar_centroid(movie[middle - 5], background)
    assert step[1] > 40 and abs(step[0]) < 1, step          # 10 frames at 5 px per frame, along +column

    failures = []
    with h5py.File(processed["inputs"].output_path) as h5:
        for unit in units_of(processed):
            group = h5[SECTION.format(unit["unit_id"])]
            padding = group["_attrs/padding_frames"][()]
            for angle in DIRECTIONS:
                for k, (start, end) in enumerate(group[f"{angle}/section_bounds"][()]):
                    on, off = start + padding, end - padding        # the bar covers the unit's pixel
                    motion = _bar_centroid(movie[off - 1], background) - _bar_centroid(movie[on], background)
                    seen = np.degrees(np.arctan2(motion[0], motion[1])) % 360
                    if np.hypot(*motion) < 5 or angle_error(seen, angle) > 5:
                        failures.append(f"{unit['unit_id']} group {angle} repetition {k}: the bar moves "
                                        f"{np.round(motion, 1)} (row, col) px, toward {seen:.0f} deg")
            assert group["0/section_bounds"][0, 0] + padding in first_sweep, unit["unit_id"]
    assert not failures, "\n".join(failures)


def test_every_units_direction_selectivity_matches_the_truth(processed):
    """Tuned units: preferred direction within 15 deg, p < 0.01, dsi_vector > 0.12 (observed
    0.17-0.61); untuned units: dsi_vector < 0.1 (observed <= 0.05)."""
    failures, n_tuned = [], 0
    with h5py.File(processed["inputs"].output_path) as h5:
        for unit in units_of(processed):
            result, name = dsgc_of(h5, unit["unit_id"]), unit["unit_id"]
            if unit["tuned"]:
                n_tuned += 1
                error = angle_error(result["preferred_direction_deg"], unit["preferred_direction_deg"])
                if error > 15 or result["p_value"] >= 0.01 or result["dsi_vector"] <= 0.12:
                    failures.append(f"{name} (tuned to {unit['preferred_direction_deg']} deg): preferred "
                                    f"{result['preferred_direction_deg']:.1f}, p {result['p_value']:.3f}, "
                                    f"dsi_vector {result['dsi_vector']:.3f}")
            elif result["dsi_vector"] >= 0.1:
                failures.append(f"{name} (untuned): dsi_vector {result['dsi_vector']:.3f}")
    assert not failures, "\n".join(failures)
    assert 0 < n_tuned < len(units_of(processed))


def _pickle_of_true_crossings(processed, path, config: dict) -> None:
    """A crossing table in the lab's pickle format from the JSON's crossing rule: the units' pixels
    and a grid of others, as the lab's table holds every pixel."""
    with h5py.File(processed["inputs"].output_path) as h5:
        pixels = {(int(h5[SECTION.format(u) + "/_attrs/cell_center_row"][()]),
                   int(h5[SECTION.format(u) + "/_attrs/cell_center_col"][()]))
                  for u in h5["units"] if SECTION.format(u) in h5}
    grid = {(r, c) for r in range(0, 300, 10) for c in range(0, 300, 10)}
    table = {}
    for key in sorted(grid | pixels):
        on, off = bar_crossings(config, *key)
        table[key] = {"on_peak_location": on.tolist(), "off_peak_location": off.tolist()}
    path.write_bytes(pickle.dumps(table))


def test_the_labs_pickle_gives_the_same_sections_and_sweeps_as_the_movie(processed, tmp_path):
    path = tmp_path / "on_off.pkl"
    _pickle_of_true_crossings(processed, path, bar_config(processed))
    inputs = copy_output(processed, tmp_path)
    assert run_step("dsgc", inputs, processed["config"].with_inputs(on_off_dict=path))["status"] == "done"
    with h5py.File(processed["inputs"].output_path) as movie_run, h5py.File(inputs.output_path) as pickle_run:
        assert pickle_run["metadata/dsgc/crossing_source"].asstr()[()] == f"pickle {path}"
        for key in ("sweep_segments", "sweep_lead_in_frames", "direction_list"):
            np.testing.assert_array_equal(pickle_run[f"metadata/dsgc/{key}"][()], movie_run[f"metadata/dsgc/{key}"][()])
        for unit in movie_run["units"]:
            a, b = dsgc_of(movie_run, unit), dsgc_of(pickle_run, unit)
            assert a.keys() == b.keys()
            for key in a:
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{unit} {key}")
            if SECTION.format(unit) in movie_run:
                for angle in DIRECTIONS:
                    np.testing.assert_array_equal(pickle_run[SECTION.format(unit) + f"/{angle}/section_bounds"][()],
                                                  movie_run[SECTION.format(unit) + f"/{angle}/section_bounds"][()])


def test_a_pickle_made_for_another_layout_is_refused_naming_pixel_and_trial(processed, tmp_path):
    """The same crossings one sweep later (another layout of the same bar): every entry is outside."""
    config = bar_config(processed)
    shifted = json.loads(json.dumps(config))
    shifted["section_kwargs"]["start_frame"] += shifted["generate_kwargs"]["frames_per_direction"]
    path = tmp_path / "other_layout.pkl"
    _pickle_of_true_crossings(processed, path, shifted)
    inputs = copy_output(processed, tmp_path)
    with pytest.raises(StepFailed, match=r"other_layout\.pkl: pixel \(0, 0\) trial 0: on_peak_location = \d+ lies "
                                         r"outside its sweep.*another stimulus or sweep layout"):
        run_step("dsgc", inputs, processed["config"].with_inputs(on_off_dict=path))


def test_no_moving_bar_in_the_playlist_completes_with_the_reason(processed, tmp_path):
    inputs = copy_output(processed, tmp_path)
    config = dataclasses.replace(processed["config"], step_params={"dsgc": {"movie": "moving_v_bar_x"}})
    assert run_step("dsgc", inputs, config)["status"] == "done"
    record = OutputFile(inputs.output_path).verified_records()["dsgc"]
    assert record.summary["result"] == "no_moving_bar" and "moving_v_bar_x" in record.warnings[0]
    with h5py.File(inputs.output_path) as h5:
        assert h5["metadata/dsgc/status"].asstr()[()] == "no_moving_bar"
