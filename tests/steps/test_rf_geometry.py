"""rf_geometry on a synthetic recording: every unit against the generator's receptive field and spikes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from mea_pipeline.stimulus_library import StimulusLibrary


def text(dataset) -> str:
    return dataset.asstr()[()]


def test_rf_geometry_of_every_unit_matches_the_truth(processed):
    out, truth = processed["inputs"].output_path, processed["truth"]
    noise = next(m for m in truth["movies"] if "dense_noise" in m)
    with h5py.File(out) as h5:
        meta = h5["metadata/rf_sta_geometry"]
        assert text(meta["sta_feature_name"]) == f"sta_{noise}" and list(meta["frame_range"][()]) == [40, 60]
        assert meta["lnl_fitting_enabled"].dtype == np.bool_ and bool(meta["lnl_fitting_enabled"][()])
        for unit in truth["units"]:
            name = unit["unit_id"]
            geometry = h5[f"units/{name}/features/sta_{noise}/sta_geometry"]
            if unit["silent"]:
                assert text(geometry["status"]) == "no_sta" and np.isnan(geometry["center_row"][()])
                for group in ("gaussian_fit", "gaussian_fit_unblurred", "DoG", "ONOFF_model"):
                    assert text(geometry[f"{group}/fit_status"]) != "ok" and np.isnan(geometry[f"{group}/center_x" if group != "ONOFF_model" else f"{group}/on_center_x"][()])
                continue
            row, col = unit["rf_center"]
            polarity = 1 if unit["polarity"] == "on" else -1
            assert text(geometry["status"]) == "ok", name
            # The lab's argmax centre (integer checkers, padding removed).
            assert abs(geometry["center_row"][()] - row) <= 0.75 and abs(geometry["center_col"][()] - col) <= 0.75, name
            # Ours: the unblurred Gaussian, the RF's own centre and sigma (the surround takes 7-15 %, 60 s
            # of noise leave ~10 % of scatter; the blurred map's sigma would be twice as large).
            fit = geometry["gaussian_fit_unblurred"]
            assert text(fit["fit_status"]) == "ok", name
            assert abs(fit["center_y"][()] - row) <= 0.35 and abs(fit["center_x"][()] - col) <= 0.35, name
            sigma = np.sqrt(fit["sigma_major"][()] * fit["sigma_minor"][()])
            assert sigma == pytest.approx(unit["rf_sigma"], rel=0.2), name
            assert np.sign(fit["amplitude"][()]) == polarity, name
            # The lab's ON/OFF model: the cell's polarity dominates, centred on the RF.
            on_off = geometry["ONOFF_model"]
            side, other = ("on", "off") if polarity > 0 else ("off", "on")
            assert on_off[f"{side}_amplitude"][()] > on_off[f"{other}_amplitude"][()], name
            assert abs(on_off[f"{side}_center_y"][()] - row) <= 0.75, name
            assert abs(on_off[f"{side}_center_x"][()] - col) <= 0.75, name
            # Angles name their frame.
            assert geometry["gaussian_fit/theta"].attrs["frame"] == "stimulus"
            assert fit["orientation_deg"].attrs["frame"] == "stimulus"
            # The lab's fits of M ran with their status recorded.
            for group in ("gaussian_fit", "DoG"):
                assert text(geometry[f"{group}/fit_status"]) == "ok" and np.isfinite(geometry[f"{group}/r_squared"][()])


def test_ln_model_of_every_unit_in_hz_of_the_display_frames(processed):
    """n_spikes counted here from the sectioned spikes; the fitted exp(b + a g), with g computed here
    from the stored STA and the movie, averages to the unit's mean rate per display frame (a rate per
    1/15 s bin would be 4 x too small)."""
    out, truth, config = processed["inputs"].output_path, processed["truth"], processed["config"]
    noise = next(m for m in truth["movies"] if "dense_noise" in m)
    movie = StimulusLibrary(config.stimuli).movie_array(noise).astype(np.float64)
    with h5py.File(out) as h5:
        frames = h5["metadata/frame_timestamps"][()].astype(np.int64)
        frame_period = np.median(np.diff(frames)) / h5["metadata/acquisition_rate"][()]
        pre_margin = int(h5["metadata/section_margins/pre_margin_frame"][()])
        start = int(h5[f"stimulus/section_time/{noise}"][0, 0])
        frame0 = int(np.searchsorted(frames, start, side="right") - 1) + pre_margin
        for unit in truth["units"]:
            name = unit["unit_id"]
            lnl = h5[f"units/{name}/features/sta_{noise}/sta_geometry/lnl"]
            if unit["silent"]:
                assert text(lnl["fit_status"]) != "ok" and np.isnan(lnl["a"][()])
                continue
            assert text(lnl["fit_status"]) == "ok", name
            sta = h5[f"units/{name}/features/sta_{noise}/data"][()].astype(np.float64)
            lags = sta.shape[0]
            spikes = h5[f"units/{name}/spike_times_sectioned/{noise}/trials_spike_times/0"][()].astype(np.int64)
            spike_frames = np.searchsorted(frames, spikes, side="right") - 1 - frame0
            valid = (spike_frames >= lags) & (spike_frames < len(movie))
            assert lnl["n_spikes"][()] == valid.sum() and lnl["n_frames"][()] == len(movie) - lags, name
            # g of frame t = sum over lags k of (sta[k] - mean) . movie[t - lags + k]; the weights sum to 0,
            # so the movie's mean drops out.
            weights = (sta - sta.mean()).reshape(lags, -1)
            flat = movie.reshape(len(movie), -1)
            n = len(movie) - lags
            g = sum(flat[k:k + n] @ weights[k] for k in range(lags))
            model_rate = np.exp(lnl["b"][()] + lnl["a"][()] * g)
            mean_rate = valid.sum() / ((len(movie) - lags) * frame_period)
            assert model_rate.mean() == pytest.approx(mean_rate, rel=0.03), name
            assert 0.5 < lnl["a_norm"][()] <= 1.05, name   # 1 = a perfect STA of the unit-variance drive
            assert lnl["bits_per_spike"][()] > 0, name


def test_the_declaration_names_every_key_the_maths_returns():
    """The writer puts each value of rf_geometry() and lnl_fit() at its declared output: the two key sets agree."""
    from mea_pipeline.geometry.lnl import lnl_fit
    from mea_pipeline.geometry.rf import RfGeometryParams, rf_geometry
    from mea_pipeline.steps.rf_geometry import LN_MODEL, PER_STA, STA_GEOMETRY

    def leaves(tree, below=""):
        for name, value in tree.items():
            yield from leaves(value, f"{below}{name}/") if isinstance(value, dict) else [below + name]

    p = RfGeometryParams()
    sta = np.random.default_rng(0).normal(127.5, 5.0, (60, 15, 15)).astype(np.float32)
    movie = np.random.default_rng(1).integers(0, 2, (500, 15, 15)).astype(np.uint8) * 255
    result = rf_geometry(sta, p)
    result["lnl"] = lnl_fit(sta, movie, np.arange(60, 500, 3), frames_before=60, frame_period_s=1 / 60,
                            n_bins=p.lnl_bins, min_spikes=p.lnl_min_spikes)
    assert set(leaves(result)) == set(STA_GEOMETRY)
    assert set(leaves(rf_geometry(None, p))) == {key for key in STA_GEOMETRY if not key.startswith("lnl/")}
    assert all(STA_GEOMETRY[key] in LN_MODEL for key in STA_GEOMETRY if key.startswith("lnl/"))
    # Written only with a dense-noise STA, each says so.
    assert all(not out.required and "written" in out.doc for out in PER_STA + LN_MODEL)
