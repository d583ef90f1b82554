"""Step 7 maths (RF geometry and LN model) against STAs and spikes made from a known model."""

import time

import numpy as np
import pytest
from scipy.signal import lfilter

from mea_pipeline.errors import InputError
from mea_pipeline.geometry.lnl import LNL_FLOAT_KEYS, lnl_fit
from mea_pipeline.geometry.rf import rf_geometry
from mea_pipeline.synth.cells import Cell, receptive_fields, temporal_kernel

GRID = 15
FRAMES = 60


def biphasic_kernel():
    """(60,) temporal STA profile: main lobe 4 frames before the spike, slower opposite rebound."""
    lag = FRAMES - np.arange(FRAMES, dtype=np.float64)  # frames before the spike frame
    fast, slow = (lag / 4) ** 3 * np.exp(3 * (1 - lag / 4)), (lag / 9) ** 3 * np.exp(3 * (1 - lag / 9))
    return fast - 0.35 * slow


def rotated_gaussian_sta(row, col, sigma_major, sigma_minor, theta, polarity, noise=3.0, seed=0):
    """STA (60, 15, 15) of 0/255 noise: 127.5 + polarity * 20 * kernel(t) * rotated Gaussian + noise."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:GRID, 0:GRID].astype(np.float64)
    dx, dy = cols - col, rows - row
    u, v = dx * np.cos(theta) + dy * np.sin(theta), -dx * np.sin(theta) + dy * np.cos(theta)
    space = np.exp(-0.5 * ((u / sigma_major) ** 2 + (v / sigma_minor) ** 2))
    signal = polarity * 20 * biphasic_kernel()[:, None, None] * space
    return (127.5 + signal + rng.normal(0, noise, (FRAMES, GRID, GRID))).astype(np.float32)


def keys_of(tree):
    return {k: keys_of(v) if isinstance(v, dict) else None for k, v in tree.items()}


def axis_angle_error(a, b):
    """Difference of two axis orientations (radians, modulo a half turn)."""
    return abs((a - b + np.pi / 2) % np.pi - np.pi / 2)


@pytest.mark.parametrize("theta, polarity", [(0.6, 1), (-1.0, -1), (1.3, 1)])
def test_rotated_gaussian_is_recovered(theta, polarity):
    row, col, major, minor = 6.3, 8.6, 1.8, 0.9
    geometry = rf_geometry(rotated_gaussian_sta(row, col, major, minor, theta, polarity))
    fit = geometry["gaussian_fit"]
    assert geometry["status"] == "ok" and fit["fit_status"] == "ok"
    assert abs(fit["center_y"] - row) < 0.5 and abs(fit["center_x"] - col) < 0.5
    # Reported in canonical form: sigma_x the major axis, theta its angle (from +column toward +row).
    assert fit["sigma_x"] == pytest.approx(major, rel=0.25) and fit["sigma_y"] == pytest.approx(minor, rel=0.25)
    assert axis_angle_error(fit["theta"], theta) < 0.2 and -np.pi / 2 <= fit["theta"] < np.pi / 2
    assert fit["ellipse_1sigma_area"] == pytest.approx(np.pi * fit["sigma_x"] * fit["sigma_y"])
    assert fit["ellipse_2sigma_area"] == pytest.approx(4 * fit["ellipse_1sigma_area"])
    diameter = fit["ellipse_2sigma_equivalent_diameter"]
    assert diameter == pytest.approx(2 * np.sqrt(fit["ellipse_2sigma_area"] / np.pi))
    assert np.sign(fit["amplitude"]) == polarity
    on_off = geometry["ONOFF_model"]
    assert on_off["fit_status"] == "ok"
    if polarity > 0:
        assert on_off["on_amplitude"] > on_off["off_amplitude"]
        assert abs(on_off["on_center_x"] - col) < 1 and abs(on_off["on_center_y"] - row) < 1
    else:
        assert on_off["off_amplitude"] > on_off["on_amplitude"]
        assert abs(on_off["off_center_x"] - col) < 1 and abs(on_off["off_center_y"] - row) < 1
    dog = geometry["DoG"]
    assert dog["fit_status"] == "ok" and abs(dog["center_x"] - col) < 1 and abs(dog["center_y"] - row) < 1
    # The lab's argmax centre, padding removed, and the time course peaking ~4 frames before the spike.
    assert abs(geometry["center_row"] - row) <= 1 and abs(geometry["center_col"] - col) <= 1
    assert abs(geometry["peak_frame"] - (FRAMES - 4)) <= 1
    assert abs(int(np.argmax(np.abs(geometry["sta_time_course"]))) - (FRAMES - 4)) <= 1
    assert geometry["diff_map"].shape == (GRID, GRID) and geometry["sta_time_course"].shape == (FRAMES,)
    assert 2 <= geometry["size_x"] <= 10 and 2 <= geometry["size_y"] <= 10 and geometry["area"] > 0


def test_size_uses_the_rf_frame_range_clipped_to_the_sta():
    sta = rotated_gaussian_sta(7, 7, 1.5, 1.5, 0.0, 1)
    geometry = rf_geometry(sta)
    assert geometry["area"] == rf_geometry(sta, frame_range=(40, 59))["area"]
    # A round RF of sigma 1.5 checkers blurred by 1.5 and 0.5: a compact region, not the whole grid.
    assert 9 <= geometry["area"] <= 60 and abs(geometry["size_x"] - geometry["size_y"]) <= 1
    # Frames 10-14 (the soma's range, used by the lab's unified pipeline) hold only noise here.
    assert rf_geometry(sta, frame_range=(10, 14))["area"] != geometry["area"]


@pytest.mark.parametrize("sta, status", [(None, "no_sta"), (np.full((60, 15, 15), np.nan, np.float32), "no_sta"),
                                         (np.zeros((60, 15, 15), np.float32), "flat_sta"),
                                         (np.full((60, 15, 15), 127.5, np.float32), "flat_sta")],
                         ids=["none", "nan", "zeros", "constant"])
def test_missing_or_flat_sta_gives_nan_with_a_status(sta, status):
    geometry = rf_geometry(sta)
    assert geometry["status"] == status and geometry["reason"]
    assert keys_of(geometry) == keys_of(rf_geometry(rotated_gaussian_sta(7, 7, 1.2, 1.0, 0.3, 1)))
    for group in ("gaussian_fit", "DoG", "ONOFF_model"):
        assert geometry[group]["fit_status"] == status
        assert all(np.isnan(v) for k, v in geometry[group].items() if k != "fit_status")
    for key in ("center_row", "center_col", "size_x", "size_y", "area", "equivalent_diameter"):
        assert np.isnan(geometry[key])
    assert geometry["peak_frame"] == -1
    assert np.isnan(geometry["diff_map"]).all() and geometry["diff_map"].shape == (15, 15)
    assert np.isnan(geometry["sta_time_course"]).all() and geometry["sta_time_course"].shape == (60,)


def test_pure_noise_finishes_quickly_with_a_status():
    sta = np.random.default_rng(4).normal(127.5, 5.0, (60, 15, 15)).astype(np.float32)
    started = time.perf_counter()
    geometry = rf_geometry(sta)
    assert time.perf_counter() - started < 10
    for group in ("gaussian_fit", "DoG", "ONOFF_model"):
        assert isinstance(geometry[group]["fit_status"], str)
    assert geometry["gaussian_fit"]["r_squared"] < 0.3


def test_a_tiny_evaluation_budget_reports_a_failed_fit():
    geometry = rf_geometry(rotated_gaussian_sta(7, 7, 1.5, 1.0, 0.4, 1), max_nfev=2)
    fit = geometry["gaussian_fit"]
    assert fit["fit_status"].startswith("failed:") and np.isnan(fit["sigma_x"]) and np.isnan(fit["center_x"])
    assert np.isnan(geometry["sta_time_course"]).all()


def test_a_non_3d_sta_is_an_input_error():
    with pytest.raises(InputError, match="STA"):
        rf_geometry(np.zeros((15, 15)))


def lnp_sta(center, sigma, polarity, seed, n_patterns=2700, hold=4, base_rate_hz=8.0, frame_rate_hz=60.0):
    """STA of a synthetic cell simulated as in mea_pipeline.synth.cells (centre-surround RF, 4-frame hold)."""
    rng = np.random.default_rng(seed)
    cell = Cell(unit_number=1, row=1, column=1, amplitude_adc=100.0, is_rgc=True, silent=False,
                base_rate_hz=base_rate_hz, rf_center=center, rf_sigma=sigma,
                polarity="on" if polarity > 0 else "off", tuned=False, preferred_direction_deg=None)
    weights = receptive_fields([cell])[:, 0]
    movie = np.repeat(rng.integers(0, 2, (n_patterns, GRID * GRID)).astype(np.float64) * 255, hold, axis=0)
    drive = lfilter(temporal_kernel(), [1.0], (2 * movie / 255 - 1) @ weights)
    drive *= polarity / drive[100:].std()
    counts = rng.poisson(base_rate_hz * np.exp(np.clip(drive, -4, 3)) / frame_rate_hz)[FRAMES:]
    span = len(movie) - FRAMES
    sta = np.stack([counts @ movie[k:k + span] for k in range(FRAMES)]) / counts.sum()
    return sta.reshape(FRAMES, GRID, GRID).astype(np.float32)


@pytest.mark.parametrize("center, sigma, polarity, seed", [((7.3, 5.6), 0.7, 1, 10), ((4.2, 9.8), 0.95, -1, 11),
                                                           ((10.6, 10.1), 1.2, 1, 12)])
def test_synthetic_centre_surround_cell_sigma_is_the_centre_sigma(center, sigma, polarity, seed):
    """The 1.5-checker preprocessing blur must not inflate the reported sigma (fit on the unblurred map)."""
    fit = rf_geometry(lnp_sta(center, sigma, polarity, seed))["gaussian_fit"]
    assert fit["fit_status"] == "ok" and fit["r_squared"] > 0.4
    assert abs(fit["center_y"] - center[0]) < 0.5 and abs(fit["center_x"] - center[1]) < 0.5
    assert fit["sigma_x"] == pytest.approx(sigma, rel=0.25) and fit["sigma_y"] == pytest.approx(sigma, rel=0.25)
    assert np.sign(fit["amplitude"]) == polarity


def lnp_recording(n_frames=9000, gain=0.8, seed=5):
    """Random 0/255 binary noise, spikes from a known exponential LN model, and the resulting STA."""
    rng = np.random.default_rng(seed)
    movie = (rng.integers(0, 2, (n_frames, GRID, GRID)) * 255).astype(np.uint8)
    rows, cols = np.mgrid[0:GRID, 0:GRID]
    space = np.exp(-((rows - 7) ** 2 + (cols - 6) ** 2) / (2 * 1.2 ** 2))
    flt = (biphasic_kernel()[:, None, None] * space).reshape(FRAMES, -1)
    contrast = movie.reshape(n_frames, -1) / 255.0 - 0.5
    g = np.zeros(n_frames)
    for k in range(FRAMES):
        g[FRAMES:] += contrast[k:k + n_frames - FRAMES] @ flt[k]
    g /= g[FRAMES:].std()
    counts = rng.poisson(4.0 * np.exp(gain * g) / 15.0)
    counts[:FRAMES] = 0
    spike_frames = np.repeat(np.arange(n_frames), counts)
    span = n_frames - FRAMES
    sta = np.stack([counts[FRAMES:] @ movie.reshape(n_frames, -1)[k:k + span] for k in range(FRAMES)])
    return sta.reshape(FRAMES, GRID, GRID) / counts.sum(), movie, spike_frames.astype(np.int64)


def test_lnl_fit_recovers_an_exponential_nonlinearity():
    sta, movie, spike_frames = lnp_recording()
    result = lnl_fit(sta, movie, spike_frames, frame_period_s=1 / 15)
    assert result["fit_status"] == "ok"
    assert result["a_norm"] > 0.3 and result["a"] > 0
    assert result["bits_per_spike"] > 0.2 and result["log_likelihood"] > result["null_log_likelihood"]
    assert result["n_spikes"] == len(spike_frames) and result["n_frames"] == len(movie) - FRAMES
    assert result["rectification_index"] > 0.5 and 0 < result["r_squared"] < 1
    assert result["g_bin_centers"].dtype == np.float32 and result["g_bin_centers"].shape == (50,)
    assert result["rate_vs_g"].dtype == np.float32 and result["rate_vs_g"].shape == (50,)
    # The rate curve rises with the generator signal, as the model does.
    assert np.corrcoef(result["g_bin_centers"], result["rate_vs_g"])[0, 1] > 0.5
    # Shuffled spike times carry no information.
    shuffled = np.random.default_rng(6).integers(FRAMES, len(movie), len(spike_frames))
    assert abs(lnl_fit(sta, movie, shuffled, frame_period_s=1 / 15)["bits_per_spike"]) < 0.02


def test_lnl_fit_reads_a_memmapped_movie_like_an_array(tmp_path):
    sta, movie, spike_frames = lnp_recording(n_frames=3000, seed=7)
    np.save(tmp_path / "movie.npy", movie)
    mapped = np.load(tmp_path / "movie.npy", mmap_mode="r")
    in_memory = lnl_fit(sta, movie, spike_frames, frame_period_s=1 / 15)
    from_disk = lnl_fit(sta, mapped, spike_frames, frame_period_s=1 / 15)
    assert from_disk["a"] == pytest.approx(in_memory["a"]) and from_disk["fit_status"] == "ok"


def test_lnl_fit_with_too_few_spikes_is_nan_with_a_status():
    sta, movie, spike_frames = lnp_recording(n_frames=2000)
    result = lnl_fit(sta, movie, spike_frames[:9], frame_period_s=1 / 15)
    assert result["fit_status"].startswith("too few spikes") and result["n_spikes"] == 9
    assert all(np.isnan(result[key]) for key in LNL_FLOAT_KEYS)
    assert np.isnan(result["rate_vs_g"]).all() and result["rate_vs_g"].shape == (50,)
    assert lnl_fit(np.full_like(sta, np.nan), movie, spike_frames, frame_period_s=1 / 15)["fit_status"] == "no_sta"


def test_lnl_fit_rejects_a_movie_of_another_shape():
    sta, movie, spike_frames = lnp_recording(n_frames=2000)
    with pytest.raises(InputError, match="movie"):
        lnl_fit(sta, movie[:, :10], spike_frames, frame_period_s=1 / 15)
