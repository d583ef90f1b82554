"""The synthetic recordings: MCS layout McsPy accepts, timing rules, simulation, determinism."""

import ast
import dataclasses
import hashlib
import json

import h5py
import numpy as np
import pandas as pd
import pytest
from McsPy.McsCMOSMEA import McsData

from mea_pipeline import __version__
from mea_pipeline.mcs_io import SYNTH_MARK, sensor_frame_index
from mea_pipeline.synth import (PLAYLISTS, SynthSpec, bar_crossings, load_truth, write_recording,
                                write_stimulus_library)
from mea_pipeline.synth.cells import BAR_BURST, KAPPA, TUNING_RF_SIGMAS, firing_rates, make_cells
from mea_pipeline.synth.movies import movie_configs, movie_length
from mea_pipeline.synth.render import render_movie
from mea_pipeline.synth.timeline import build_timeline
from mea_pipeline.synth.spec import DENSE_NOISE, MOVIES, MOVING_BAR


def truths(dataset):
    return [(rec, load_truth(rec["truth"])) for rec in dataset["recordings"]]


def rising_edges(signal):
    """Independent frame detection: first sample above the midpoint between idle and pulse level."""
    x = signal.astype(np.float64)
    above = x > (np.median(x) + x.max()) / 2
    return np.flatnonzero(above[1:] & ~above[:-1]) + 1


def test_stimulus_library_tables_and_movies(synth_dataset):
    stimuli = synth_dataset["stimuli_dir"]
    playlist = pd.read_csv(stimuli / "playlist.csv")
    assert list(playlist["playlist_name"]) == [PLAYLISTS["tiny"]] == [synth_dataset["playlist"]]
    names = ast.literal_eval(playlist["movie_names"][0])
    assert names == [f"{m}.mov" for m in MOVIES]
    lengths = dict(pd.read_csv(stimuli / "movie_length.csv").values)
    for movie in MOVIES:
        config = json.loads((stimuli / f"{movie}.json").read_text())
        k = config["section_kwargs"]
        assert k["start_frame"] + k["repeat"] * k["trial_length_frame"] == lengths[movie]
        images, _ = render_movie(movie, config, np.load(stimuli / f"{DENSE_NOISE}.npy"))
        assert images.shape == (lengths[movie], 15, 15)
    noise = np.load(stimuli / f"{DENSE_NOISE}.npy")
    assert noise.dtype == np.uint8 and noise.shape == (lengths[DENSE_NOISE], 15, 15)
    assert set(np.unique(noise)) == {0, 255}
    patterns = noise[::4]
    assert np.array_equal(np.repeat(patterns, 4, axis=0), noise)   # each pattern held 4 display frames
    assert np.all((patterns == 255).sum(axis=0) == len(patterns) // 2)   # "perfect": balanced checkers
    bar = json.loads((stimuli / f"{MOVING_BAR}.json").read_text())["generate_kwargs"]
    assert bar["directions_deg"] == [0, 45, 90, 135, 180, 225, 270, 315]
    assert "0 deg" in bar["angle_convention"]


def test_mcspy_opens_every_synthetic_file(synth_dataset):
    for rec, truth in truths(synth_dataset):
        raw = McsData(str(rec["cmcr"]))
        sensor = raw.Acquisition.Sensor_Data.SensorData_1_1
        assert sensor.shape == (truth["n_sensor_samples"], 65, 65) and sensor.dtype == np.int16
        assert int(raw.Acquisition.Sensor_Data.SensorMeta["Tick"][0]) == truth["tick_us"]
        assert raw.Acquisition.Analog_Data.ChannelData_1.shape == (2, truth["n_samples"])
        assert raw.attributes["ProgramName"] == "CMOS-MEA-Control"
        sorted_ = McsData(str(rec["cmtr"]))
        # Both files say which program wrote them; McsPy reads the mark as any root text attribute.
        assert raw.attributes[SYNTH_MARK] == sorted_.attributes[SYNTH_MARK] == f"mea-pipeline synth {__version__}"
        units = sorted_.Spike_Sorter.get_units_by_id()
        assert [int(u.attributes["UnitID"]) for u in units] == [u["unit_number"] for u in truth["units"]]
        assert sorted_.Spike_Sorter.get_unit_measures()[0] == "SNR"
        # The external link resolves while the .cmcr sits beside the .cmtr.
        assert sorted_.Acquisition.Sensor_Data.SensorData_1_1.shape == sensor.shape
        for unit, expected in zip(units, truth["units"]):
            assert np.array_equal(unit.get_peaks_timestamps() // truth["tick_us"], expected["spike_samples"])
        del raw, sorted_


def test_cmcr_layout_details(synth_dataset):
    rec = synth_dataset["recordings"][0]
    with h5py.File(rec["cmcr"], "r") as f:
        assert isinstance(f.attrs["ID.Type"], bytes) and f.attrs["FileVersion"].shape == (1,)
        assert isinstance(f.attrs[SYNTH_MARK], bytes)   # fixed-length, like MCS's own text attributes
        data = f["Acquisition/Sensor Data/SensorData 1 1"]
        assert data.chunks == (1000, 65, 65) and data.compression is None
        assert f["Acquisition/Analog Data/ChannelData 1"].dtype == np.int32
    with h5py.File(rec["cmtr"], "r") as f:
        link = f.get("Acquisition", getlink=True)
        assert isinstance(link, h5py.ExternalLink) and link.filename == rec["cmcr"].name
        peaks = f["Spike Sorter/Unit 1/Peaks"]
        assert peaks.dtype.names[:3] == ("Timestamp", "PeakAmplitude", "IncludePeak")
        assert len(peaks.dtype.names) == 63
        include = peaks["IncludePeak"]
        assert 0.2 < np.mean(include == 0) < 0.3   # ~30 % of the spike count are sub-threshold rows
        assert np.all(np.diff(peaks["Timestamp"]) > 0)


def test_frame_sync_and_sections_follow_the_playlist_rule(synth_dataset):
    stimuli = synth_dataset["stimuli_dir"]
    lengths = dict(pd.read_csv(stimuli / "movie_length.csv").values)
    for rec, truth in truths(synth_dataset):
        with h5py.File(rec["cmcr"], "r") as f:
            analog = f["Acquisition/Analog Data/ChannelData 1"][()]
        edges = rising_edges(analog[1])
        assert np.array_equal(edges[:4], truth["startup_pulse_samples"])
        assert np.array_equal(edges[4:], truth["frame_onsets"])
        period = np.diff(truth["frame_onsets"]).mean() / truth["sampling_rate_hz"]
        assert 1 / period == pytest.approx(60.4, abs=0.01)
        onsets, count = truth["frame_onsets"], 0
        for movie in truth["movies"]:
            length = lengths[movie]
            assert truth["section_frames"][movie] == [count + 120, count + 301 + length]
            assert truth["section_times"][movie] == onsets[[count + 120, count + 301 + length]].tolist()
            k = json.loads((stimuli / f"{movie}.json").read_text())["section_kwargs"]
            starts = count + 180 + k["start_frame"] + np.arange(k["repeat"]) * k["trial_length_frame"]
            assert truth["trials"][movie] == onsets[np.stack([starts, starts + k["trial_length_frame"]], 1)].tolist()
            count += 361 + length
        assert count == truth["n_frames"]
        # The light reference follows each frame's mean screen level.
        light = analog[0, onsets + 5].astype(np.float64)
        assert np.corrcoef(light, truth["frame_level"])[0, 1] > 0.999


def test_electrical_image_trough_is_at_the_soma(synth_dataset):
    rec, truth = truths(synth_dataset)[0]
    with h5py.File(rec["cmcr"], "r") as f:
        sensor = f["Acquisition/Sensor Data/SensorData 1 1"][()].astype(np.float32)
    checked = 0
    for unit in truth["units"]:
        spikes = unit["spike_samples"]
        spikes = spikes[(spikes >= 10) & (spikes < len(sensor) - 40)]
        if len(spikes) < 3:
            continue
        image = np.mean([sensor[s - 10:s + 40] for s in spikes], axis=0)
        t, axis1, axis2 = np.unravel_index(np.argmin(image), image.shape)
        assert (axis1, axis2) == sensor_frame_index(unit["row"], unit["column"])
        assert abs(t - 10) <= 1   # the trough sample, give or take noise with a handful of spikes
        checked += 1
    assert checked >= 4


def test_truth_units_are_consistent(synth_dataset):
    for _, truth in truths(synth_dataset):
        onh = np.array(truth["onh"])
        for unit in truth["units"]:
            assert len(np.intersect1d(unit["spike_samples"], unit["excluded_samples"])) == 0
            assert np.all(np.diff(unit["spike_samples"]) > 0)
            assert (unit["axon"] is not None) == unit["is_rgc"]
            assert unit["tuned"] == (unit["preferred_direction_deg"] is not None)
            if unit["axon"]:
                path = np.array(unit["axon"]["path"])
                assert np.allclose(path[0], unit["soma"])
                heading = (path[-1] - path[0]) / np.linalg.norm(path[-1] - path[0])
                assert np.allclose(heading, (onh - path[0]) / np.linalg.norm(onh - path[0]), atol=1e-3)
            assert all(0 <= c <= 14 for c in unit["rf_center"])


def test_bar_crossings_match_the_rendered_bar(synth_dataset):
    config = json.loads((synth_dataset["stimuli_dir"] / f"{MOVING_BAR}.json").read_text())
    images, direction = render_movie(MOVING_BAR, config)
    g = config["generate_kwargs"]
    on, off = bar_crossings(config, 150.0, 110.0)   # a pixel inside checker (7, 5)
    assert len(on) == 24 and np.all(off > on)
    k = config["section_kwargs"]
    for i, (a, b) in enumerate(zip(on, off)):
        assert direction[a] == g["directions_deg"][i % 8]
        assert images[a:b, 7, 5].min() > 0 and images[a - 3, 7, 5] == 0 and images[b + 3, 7, 5] == 0
        # The JSON crossing rule, evaluated independently at the pixel itself.
        angle = np.deg2rad(g["directions_deg"][i % 8])
        along = (150.0 - 149.5) * np.sin(angle) + (110.0 - 149.5) * np.cos(angle)
        sweep = k["start_frame"] + (i // 8) * k["trial_length_frame"] + g["pre_pad_frame"] + (i % 8) * g[
            "frames_per_direction"]

        def covered(frame):
            centre = -g["start_distance_px"] + g["speed"] * (frame - sweep)
            return centre - g["bar_height"] / 2 <= along < centre + g["bar_height"] / 2

        assert covered(a) and covered(b - 1) and not covered(a - 1) and not covered(b)


def test_direction_tuning_acts_only_while_the_bar_covers_the_rf():
    """A tuned cell fires like its untuned twin except in the frames the bar covers its RF."""
    config = movie_configs("tiny")[MOVING_BAR]
    g, k = config["generate_kwargs"], config["section_kwargs"]
    spec = SynthSpec(n_units=6, profile="tiny")
    timeline = build_timeline([MOVING_BAR], {MOVING_BAR: movie_length(config)}, {MOVING_BAR: config}, None, spec)
    cells, _ = make_cells(spec, np.random.default_rng(0))
    preferred = 100.0
    for cell in cells:
        tuned = dataclasses.replace(cell, silent=False, tuned=True, preferred_direction_deg=preferred)
        untuned = dataclasses.replace(cell, silent=False, tuned=False, preferred_direction_deg=None)
        with_tuning, without = firing_rates([tuned, untuned], timeline).T
        # Where the bar is, from the JSON's crossing rule, at the RF centre on the screen (checker k
        # spans pixels [20 k, 20 k + 20)).
        row_px, col_px = (20 * c + 9.5 for c in cell.rf_center)
        reach = g["bar_height"] / 2 + TUNING_RF_SIGMAS * cell.rf_sigma * 20
        gain = np.full(len(timeline.direction), np.nan)
        for rep in range(k["repeat"]):
            for d, angle in enumerate(np.deg2rad(g["directions_deg"])):
                first = (timeline.movie_frame0[MOVING_BAR] + k["start_frame"] + rep * k["trial_length_frame"]
                         + g["pre_pad_frame"] + d * g["frames_per_direction"])
                j = np.arange(g["frames_per_direction"])
                centre = -g["start_distance_px"] + g["speed"] * j
                along = (row_px - (g["H"] - 1) / 2) * np.sin(angle) + (col_px - (g["W"] - 1) / 2) * np.cos(angle)
                covered = first + j[np.abs(along - centre) <= reach]
                gain[covered] = np.exp(KAPPA * (np.cos(angle - np.deg2rad(preferred)) - 1))
        over = np.isfinite(gain)
        sweeping = np.isfinite(timeline.direction)
        assert over.any() and (sweeping & ~over).any(), cell.unit_number
        np.testing.assert_array_equal(with_tuning[~over], without[~over], err_msg=f"unit {cell.unit_number}")
        np.testing.assert_allclose(with_tuning[over], (without[over] + BAR_BURST * cell.base_rate_hz) * gain[over],
                                   rtol=1e-6, err_msg=f"unit {cell.unit_number}")  # direction is float32


def test_determinism_and_seed_dependence(tmp_path):
    library = write_stimulus_library(tmp_path / "stimuli", "tiny")
    spec = SynthSpec(n_units=3, profile="tiny", sensor_seconds=0.05)

    def digests(folder, s):
        rec = write_recording(folder, "2024.02.01-10.00.00-Rec", s, library)
        return {k: hashlib.sha256(rec[k].read_bytes()).hexdigest() for k in ("cmcr", "cmtr", "truth")}

    first = digests(tmp_path / "a", spec)
    assert digests(tmp_path / "b", spec) == first
    other = digests(tmp_path / "c", SynthSpec(n_units=3, profile="tiny", sensor_seconds=0.05, seed=1))
    assert other["cmcr"] != first["cmcr"] and other["cmtr"] != first["cmtr"]


def test_profile_mismatch_is_reported(tmp_path, synth_dataset):
    with pytest.raises(ValueError, match="demo_set6_short"):
        write_recording(tmp_path, "x-Rec", SynthSpec(profile="demo"), synth_dataset["stimuli_dir"])
    with pytest.raises(ValueError, match="profile"):
        SynthSpec(profile="huge")


def test_mapping_csv(synth_dataset):
    table = pd.read_csv(synth_dataset["mapping_csv"], dtype=str)
    assert {"cmcr_path", "cmtr_path", "matched"} <= set(table.columns)
    assert list(table["matched"]) == ["True", "True"]
    for row, rec in zip(table.itertuples(), synth_dataset["recordings"]):
        assert row.cmtr_path == str(rec["cmtr"]) and row.cmtr_path.endswith("-Rec-.cmtr")
        assert row.cmcr_path == str(rec["cmcr"])
