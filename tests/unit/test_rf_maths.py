"""Step 7 maths (RF geometry and the lab's fits) against STAs and maps made from a known model."""

import time
from dataclasses import replace

import numpy as np
import pytest
from scipy.signal import lfilter

from mea_pipeline.errors import InputError
from mea_pipeline.geometry.rf import RfGeometryParams, rf_geometry
from mea_pipeline.geometry.rf_fits import fit_dog, fit_gaussian, fit_on_off
from mea_pipeline.synth.cells import Cell, receptive_fields, temporal_kernel

GRID = 15
FRAMES = 60


def biphasic_kernel():
    """(60,) temporal STA profile: main lobe 4 frames before the spike, slower opposite rebound."""
    lag = FRAMES - np.arange(FRAMES, dtype=np.float64)  # frames before the spike frame
    fast, slow = (lag / 4) ** 3 * np.exp(3 * (1 - lag / 4)), (lag / 9) ** 3 * np.exp(3 * (1 - lag / 9))
    return fast - 0.35 * slow


def lab_convention_ellipse(row, col, sigma_x, sigma_y, theta, shape=(GRID, GRID)):
    """Elliptical Gaussian written as the lab's gaussian_2d defines theta: the sigma_x axis points
    along (cos theta, -sin theta) in (column, row), i.e. theta turns +column toward -row."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    axis_x = np.array([np.cos(theta), -np.sin(theta)])   # (column, row)
    axis_y = np.array([np.sin(theta), np.cos(theta)])
    offsets = np.stack([cols - col, rows - row], axis=-1)
    return np.exp(-(offsets @ axis_x) ** 2 / (2 * sigma_x ** 2) - (offsets @ axis_y) ** 2 / (2 * sigma_y ** 2))


def elliptical_sta(row, col, sigma_major, sigma_minor, theta, polarity=1, noise=2.0, seed=0):
    """STA (60, 15, 15) of 0/255 noise: 127.5 + polarity * 20 * kernel(t) * ellipse (lab theta) + noise."""
    rng = np.random.default_rng(seed)
    space = lab_convention_ellipse(row, col, sigma_major, sigma_minor, theta)
    signal = polarity * 20 * biphasic_kernel()[:, None, None] * space
    return (127.5 + signal + rng.normal(0, noise, (FRAMES, GRID, GRID))).astype(np.float32)


def keys_of(tree):
    return {k: keys_of(v) if isinstance(v, dict) else None for k, v in tree.items()}


def axis_angle_error(a, b):
    """Difference of two axis orientations (radians, modulo a half turn)."""
    return abs((a - b + np.pi / 2) % np.pi - np.pi / 2)


def lab_major_axis_angle(fit):
    """Image angle (from +column toward +row) of the major axis a lab fit describes."""
    theta = fit["theta"]
    column, row = (np.cos(theta), -np.sin(theta)) if fit["sigma_x"] >= fit["sigma_y"] else (np.sin(theta), np.cos(theta))
    return np.arctan2(row, column)


# The lab blurs the STA by 1.5 checkers before fitting its peak-to-peak map: a Gaussian RF of
# sigma s appears there with sqrt(s^2 + 1.5^2).
BLUR = 1.5
CASES = [(0.5, 1), (-1.0, -1), (1.3, 1)]


@pytest.mark.parametrize("theta, polarity", CASES)
def test_lab_gaussian_fit_keeps_the_lab_theta_convention_on_the_blurred_map(theta, polarity):
    row, col, major, minor = 6.6, 7.4, 2.5, 1.2
    geometry = rf_geometry(elliptical_sta(row, col, major, minor, theta, polarity))
    fit = geometry["gaussian_fit"]
    assert geometry["status"] == "ok" and fit["fit_status"] == "ok"
    assert abs(fit["center_y"] - row) < 0.3 and abs(fit["center_x"] - col) < 0.3
    # The true major axis points along (cos theta, -sin theta): image angle -theta. A fit read with
    # the mirrored convention (toward +row) would be off by 2 theta.
    assert axis_angle_error(lab_major_axis_angle(fit), -theta) < 0.1
    big, small = max(fit["sigma_x"], fit["sigma_y"]), min(fit["sigma_x"], fit["sigma_y"])
    assert big == pytest.approx(np.hypot(major, BLUR), rel=0.08)
    assert small == pytest.approx(np.hypot(minor, BLUR), rel=0.08)
    # M is unsigned: the amplitude is positive whatever the polarity.
    assert fit["amplitude"] > 0 and -np.pi <= fit["theta"] <= np.pi


def test_lab_gaussian_fit_reports_the_sigmas_in_the_fits_own_order():
    """theta = 1.3: the fit describes the major axis as sigma_y; the lab does not re-sort."""
    fit = rf_geometry(elliptical_sta(6.6, 7.4, 2.5, 1.2, 1.3))["gaussian_fit"]
    assert fit["sigma_x"] < fit["sigma_y"]
    assert axis_angle_error(lab_major_axis_angle(fit), -1.3) < 0.1


@pytest.mark.parametrize("theta, polarity", CASES)
def test_unblurred_fit_gives_the_rf_own_sigmas_and_orientation(theta, polarity):
    row, col, major, minor = 6.6, 7.4, 2.5, 1.2
    geometry = rf_geometry(elliptical_sta(row, col, major, minor, theta, polarity))
    fit = geometry["gaussian_fit_unblurred"]
    assert fit["fit_status"] == "ok"
    assert abs(fit["center_y"] - row) < 0.2 and abs(fit["center_x"] - col) < 0.2
    assert fit["sigma_major"] == pytest.approx(major, rel=0.08)
    assert fit["sigma_minor"] == pytest.approx(minor, rel=0.1)
    # Stimulus frame: 0 deg = +column, 90 deg = +row; the lab's theta = 0.5 is -28.6 deg = 151.4 deg.
    assert 0 <= fit["orientation_deg"] < 180
    assert np.degrees(axis_angle_error(np.radians(fit["orientation_deg"]), -theta)) < 4
    assert np.sign(fit["amplitude"]) == polarity
    assert fit["ellipse_1sigma_area"] == pytest.approx(np.pi * fit["sigma_major"] * fit["sigma_minor"])
    assert fit["ellipse_2sigma_area"] == pytest.approx(4 * fit["ellipse_1sigma_area"])
    assert fit["ellipse_2sigma_equivalent_diameter"] == pytest.approx(2 * np.sqrt(fit["ellipse_2sigma_area"] / np.pi))
    on_off = geometry["ONOFF_model"]
    side = "on" if polarity > 0 else "off"
    assert on_off["fit_status"] == "ok"
    assert on_off[f"{side}_amplitude"] > on_off[f"{'off' if polarity > 0 else 'on'}_amplitude"]
    assert abs(on_off[f"{side}_center_x"] - col) < 0.3 and abs(on_off[f"{side}_center_y"] - row) < 0.3
    # The lab's argmax centre, padding removed, and the time course peaking ~4 frames before the spike.
    assert abs(geometry["center_row"] - row) <= 0.5 and abs(geometry["center_col"] - col) <= 0.5
    assert abs(geometry["peak_frame"] - (FRAMES - 4)) <= 1
    assert abs(int(np.argmax(np.abs(geometry["sta_time_course"]))) - (FRAMES - 4)) <= 1
    assert geometry["diff_map"].shape == (GRID, GRID) and geometry["sta_time_course"].shape == (FRAMES,)


def test_lab_fits_recover_exact_maps():
    """Each lab fit on a map that is exactly its model (built here, not with the fitted functions)."""
    rng = np.random.default_rng(1)
    rows, cols = np.mgrid[0:25, 0:25].astype(np.float64)
    noise = rng.normal(0, 0.05, rows.shape)
    ellipse = 2 + 10 * lab_convention_ellipse(11.3, 12.4, 3.0, 1.6, 0.5, shape=rows.shape) + noise
    fit = fit_gaussian(ellipse, (11, 12), center_radius=5, max_sigma=7.5, shift=5, max_nfev=5000)
    assert [fit[k] for k in ("center_x", "center_y", "sigma_x", "sigma_y", "theta", "amplitude", "offset")] == \
        pytest.approx([7.4, 6.3, 3.0, 1.6, 0.5, 10, 2], rel=0.02)
    r2 = (cols - 12.4) ** 2 + (rows - 11.3) ** 2
    dog_map = 1 + 12 * np.exp(-r2 / 8.0) - 4 * np.exp(-r2 / (2 * 4.5 ** 2)) + noise
    dog = fit_dog(dog_map, (11, 12), center_radius=5, max_sigma=7.5, shift=5, max_nfev=5000)
    assert [dog[k] for k in ("center_x", "center_y", "sigma_exc", "sigma_inh", "amp_exc", "amp_inh", "offset")] == \
        pytest.approx([7.4, 6.3, 2.0, 4.5, 12, 4, 1], rel=0.03)
    extreme = (9 * np.exp(-(cols - 12.4) ** 2 / (2 * 2.2 ** 2) - (rows - 11.3) ** 2 / (2 * 1.4 ** 2))
               - 4 * np.exp(-(cols - 5) ** 2 / (2 * 1.5 ** 2) - (rows - 19) ** 2 / (2 * 2.5 ** 2)) + noise)
    on_off = fit_on_off(extreme, center_radius=5, max_sigma=7.5, shift=5, max_nfev=3000)
    assert [on_off[k] for k in ("on_center_x", "on_center_y", "on_sigma_x", "on_sigma_y", "on_amplitude")] == \
        pytest.approx([7.4, 6.3, 2.2, 1.4, 9], rel=0.05)
    assert [on_off[k] for k in ("off_center_x", "off_center_y", "off_sigma_x", "off_sigma_y", "off_amplitude")] == \
        pytest.approx([0, 14, 1.5, 2.5, 4], rel=0.05, abs=0.05)


def test_size_uses_the_rf_frame_range_clipped_to_the_sta():
    sta = elliptical_sta(7, 7, 1.5, 1.5, 0.0)
    geometry = rf_geometry(sta)
    assert geometry["area"] == rf_geometry(sta, replace(RfGeometryParams(), frame_range=(40, 59)))["area"]
    # A round RF of sigma 1.5 checkers blurred by 1.5 and 0.5: a compact region, not the whole grid.
    assert 9 <= geometry["area"] <= 60 and abs(geometry["size_x"] - geometry["size_y"]) <= 1
    # Frames 10-14 (the soma's range, used by the lab's unified pipeline) hold only noise here.
    assert rf_geometry(sta, replace(RfGeometryParams(), frame_range=(10, 14)))["area"] != geometry["area"]


@pytest.mark.parametrize("sta, status", [(None, "no_sta"), (np.full((60, 15, 15), np.nan, np.float32), "no_sta"),
                                         (np.zeros((60, 15, 15), np.float32), "flat_sta"),
                                         (np.full((60, 15, 15), 127.5, np.float32), "flat_sta")],
                         ids=["none", "nan", "zeros", "constant"])
def test_missing_or_flat_sta_gives_nan_with_a_status(sta, status):
    geometry = rf_geometry(sta)
    assert geometry["status"] == status and geometry["reason"]
    assert keys_of(geometry) == keys_of(rf_geometry(elliptical_sta(7, 7, 1.2, 1.0, 0.3)))
    for group in ("gaussian_fit", "gaussian_fit_unblurred", "DoG", "ONOFF_model"):
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
    for group in ("gaussian_fit", "gaussian_fit_unblurred", "DoG", "ONOFF_model"):
        assert isinstance(geometry[group]["fit_status"], str)
    assert geometry["gaussian_fit_unblurred"]["r_squared"] < 0.3


def test_a_tiny_evaluation_budget_reports_a_failed_fit():
    geometry = rf_geometry(elliptical_sta(7, 7, 1.5, 1.0, 0.4),
                           replace(RfGeometryParams(), gaussian_max_nfev=2, unblurred_max_nfev=2))
    fit = geometry["gaussian_fit"]
    assert fit["fit_status"].startswith("failed:") and np.isnan(fit["sigma_x"]) and np.isnan(fit["center_x"])
    assert geometry["gaussian_fit_unblurred"]["fit_status"].startswith("failed:")
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
    fit = rf_geometry(lnp_sta(center, sigma, polarity, seed))["gaussian_fit_unblurred"]
    assert fit["fit_status"] == "ok" and fit["r_squared"] > 0.4
    assert abs(fit["center_y"] - center[0]) < 0.35 and abs(fit["center_x"] - center[1]) < 0.35
    # The surround takes 7-15 % of a single Gaussian's width (see geometry.rf_unblurred).
    assert np.sqrt(fit["sigma_major"] * fit["sigma_minor"]) == pytest.approx(sigma * 0.9, rel=0.15)
    assert np.sign(fit["amplitude"]) == polarity
