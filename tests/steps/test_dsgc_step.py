"""Step 11 on a synthetic recording: direction tuning under the moving bar against the truth."""

from __future__ import annotations

import dataclasses
import json
import pickle

import h5py
import numpy as np

from mea_pipeline.runner import run_step
from mea_pipeline.store import OutputFile
from mea_pipeline.synth import bar_crossings
from mea_pipeline.synth.spec import MOVING_BAR
from output_copy import copy_output

FEATURES = "units/{}/features/" + MOVING_BAR + "/dsgc"
SECTION = "units/{}/spike_times_sectioned/" + MOVING_BAR + "/direction_section"


def dsgc_of(h5, unit_id: str) -> dict:
    group = h5[FEATURES.format(unit_id)]
    return {key: group[key].asstr()[()] if group[key].dtype.kind == "O" else group[key][()] for key in group}


def angle_error(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


def test_tuned_units_are_found_and_untuned_are_not(processed):
    truth = processed["truth"]
    with h5py.File(processed["inputs"].output_path) as h5:
        results = {u["unit_id"]: (u, dsgc_of(h5, u["unit_id"])) for u in truth["units"] if not u["silent"]}
    tuned = [(u, r) for u, r in results.values() if u["tuned"]]
    untuned = [(u, r) for u, r in results.values() if not u["tuned"]]
    assert len(tuned) >= 2 and len(untuned) >= 2
    for unit, result in tuned:
        assert result["status"] == "ok", unit["unit_id"]
        assert angle_error(result["preferred_direction_deg"], unit["preferred_direction_deg"]) <= 30, unit["unit_id"]
        assert result["p_value"] < 0.05, unit["unit_id"]
    tuned_dsi = np.median([r["dsi_vector"] for _, r in tuned])
    untuned_dsi = np.median([r["dsi_vector"] for _, r in untuned])
    assert tuned_dsi > 2 * untuned_dsi, (tuned_dsi, untuned_dsi)
    assert np.median([r["p_value"] for _, r in untuned]) > 0.05


def test_windows_surround_the_generators_crossings_at_the_units_pixel(processed):
    config = json.loads((processed["config"].stimuli / f"{MOVING_BAR}.json").read_text())
    with h5py.File(processed["inputs"].output_path) as h5:
        silent = [u["unit_id"] for u in processed["truth"]["units"] if u["silent"]]
        for unit in silent:
            result = dsgc_of(h5, unit)
            assert result["status"] == "skipped" and "no RF centre" in result["reason"]
        sectioned = [u for u in h5["units"] if u not in silent]
        for unit in sectioned:
            group = h5[SECTION.format(unit)]
            row, col = int(group.attrs["cell_center_row"]), int(group.attrs["cell_center_col"])
            on, off = bar_crossings(config, row, col)
            directions = group.attrs["direction_list"]
            np.testing.assert_array_equal(directions, [0, 45, 90, 135, 180, 225, 270, 315])
            for d, angle in enumerate(directions):
                bounds = group[f"{angle:g}/section_bounds"][()]
                trials = np.arange(d, len(on), len(directions))        # repetition-major sweep order
                np.testing.assert_array_equal(bounds, np.stack([on[trials] - 40, off[trials] + 40], axis=1))
                for k, (start, end) in enumerate(bounds):
                    frames = group[f"{angle:g}/trials/{k}"][()]
                    assert np.all((frames >= start) & (frames <= end))
                    assert len(group[f"{angle:g}/trials_samples/{k}"]) == len(frames)
        assert h5["metadata/dsgc/crossing_source"].asstr()[()].startswith("movie ")


def test_the_labs_pickle_gives_the_same_sections_as_the_movie(processed, tmp_path):
    """A crossing table in the lab's pickle format (here: the generator's crossings) is read safely."""
    config = json.loads((processed["config"].stimuli / f"{MOVING_BAR}.json").read_text())
    with h5py.File(processed["inputs"].output_path) as h5:
        pixels = {(int(h5[SECTION.format(u)].attrs["cell_center_row"]), int(h5[SECTION.format(u)].attrs["cell_center_col"]))
                  for u in h5["units"] if SECTION.format(u) in h5}
    grid = {(r, c) for r in range(0, 300, 10) for c in range(0, 300, 10)}  # other pixels, as in the lab's table
    table = {}
    for key in sorted(grid | pixels):
        on, off = bar_crossings(config, *key)
        table[key] = {"on_peak_location": on.tolist(), "off_peak_location": off.tolist()}
    path = tmp_path / "on_off.pkl"
    path.write_bytes(pickle.dumps(table))
    inputs = copy_output(processed, tmp_path)
    assert run_step("dsgc", inputs, dataclasses.replace(processed["config"], on_off_dict=path))["status"] == "done"
    with h5py.File(processed["inputs"].output_path) as movie_run, h5py.File(inputs.output_path) as pickle_run:
        assert pickle_run["metadata/dsgc/crossing_source"].asstr()[()] == f"pickle {path}"
        for unit in movie_run["units"]:
            a, b = dsgc_of(movie_run, unit), dsgc_of(pickle_run, unit)
            assert a.keys() == b.keys()
            for key in a:
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{unit} {key}")


def test_no_moving_bar_in_the_playlist_completes_with_the_reason(processed, tmp_path):
    inputs = copy_output(processed, tmp_path)
    config = dataclasses.replace(processed["config"], step_params={"dsgc": {"movie": "moving_v_bar_x"}})
    assert run_step("dsgc", inputs, config)["status"] == "done"
    record = OutputFile(inputs.output_path).verified_records()["dsgc"]
    assert record.summary["result"] == "no_moving_bar" and "moving_v_bar_x" in record.warnings[0]
    with h5py.File(inputs.output_path) as h5:
        assert h5["metadata/dsgc/status"].asstr()[()] == "no_moving_bar"
