"""Step 6 maths against synthetic electrical images whose soma position and footprint are known."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d
from scipy.signal import savgol_filter

from mea_pipeline.errors import InputError
from mea_pipeline.geometry.maps import peak_to_peak_map
from mea_pipeline.geometry.soma import SOMA_GEOMETRY_KEYS, soma_geometry

SPIKE_INDEX = 10


def synthetic_eimage(row, col, sigma=1.0, depth=150.0, noise=4.0, seed=0):
    """(50, 65, 65) eimage: a biphasic trough at t = 10 on a Gaussian footprint centred at (row, col)."""
    rng = np.random.default_rng(seed)
    t = np.arange(50.0)
    waveform = -np.exp(-0.5 * ((t - SPIKE_INDEX) / 1.5) ** 2) + 0.3 * np.exp(-0.5 * ((t - 18) / 4.0) ** 2)
    rows, cols = np.mgrid[0:65, 0:65]
    footprint = np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / (2 * sigma ** 2))
    image = depth * waveform[:, None, None] * footprint[None] + rng.normal(0, noise, (50, 65, 65))
    return image.astype(np.float32)


def test_centre_is_the_soma_electrode():
    geometry = soma_geometry(synthetic_eimage(23, 41))
    assert geometry["status"] == "ok" and geometry["reason"] == ""
    assert (geometry["center_row"], geometry["center_col"]) == (23.0, 41.0)
    assert abs(geometry["center_row_subpixel"] - 23) < 0.15 and abs(geometry["center_col_subpixel"] - 41) < 0.15


@pytest.mark.parametrize("row, col", [(30.3, 20.6), (12.45, 50.2), (44.7, 33.4)])
def test_subpixel_centre_recovers_a_fractional_position(row, col):
    geometry = soma_geometry(synthetic_eimage(row, col, seed=1))
    assert (geometry["center_row"], geometry["center_col"]) == (round(row), round(col))
    assert abs(geometry["center_row_subpixel"] - row) < 0.3
    assert abs(geometry["center_col_subpixel"] - col) < 0.3


def half_max_lattice(sigma_row: float, sigma_col: float, smoothing: float = 1.0) -> tuple[int, int, int]:
    """(area, extent along axis 2, extent along axis 1) of the analytic half-max footprint.

    A Gaussian footprint of sigmas (sigma_row, sigma_col), smoothed by a Gaussian of sigma
    ``smoothing`` (the lab's rule), is a Gaussian of variances sigma^2 + smoothing^2; it exceeds
    half its peak where dr^2 / (2 v_row) + dc^2 / (2 v_col) < ln 2. Electrodes are counted directly.
    """
    v_row, v_col = sigma_row ** 2 + smoothing ** 2, sigma_col ** 2 + smoothing ** 2
    inside = [(dr, dc) for dr in range(-10, 11) for dc in range(-10, 11)
              if dr * dr / (2 * v_row) + dc * dc / (2 * v_col) < np.log(2)]
    rows, cols = zip(*inside)
    return len(inside), max(cols) - min(cols) + 1, max(rows) - min(rows) + 1


@pytest.mark.parametrize("sigma, expected", [(1.0, (9, 3, 3)), (2.0, (21, 5, 5))])
def test_half_max_footprint_is_the_analytic_one(sigma, expected):
    # The lattice count is the analytic value; the literal guards the count itself. A smoothing
    # or footprint sigma off by a factor of 2, or another threshold, changes both numbers.
    assert half_max_lattice(sigma, sigma) == expected
    geometry = soma_geometry(synthetic_eimage(32, 32, sigma=sigma, noise=0.5))
    assert (geometry["area"], geometry["size_x"], geometry["size_y"]) == expected
    assert geometry["equivalent_diameter"] == pytest.approx(2 * np.sqrt(expected[0] / np.pi))


def test_anisotropic_footprint_extent_follows_the_axes():
    rng = np.random.default_rng(2)
    t = np.arange(50.0)
    waveform = -np.exp(-0.5 * ((t - SPIKE_INDEX) / 1.5) ** 2)
    rows, cols = np.mgrid[0:65, 0:65]
    footprint = np.exp(-0.5 * (((rows - 30) / 1.0) ** 2 + ((cols - 30) / 2.5) ** 2))  # wide along axis 2
    image = 100 * waveform[:, None, None] * footprint + rng.normal(0, 0.5, (50, 65, 65))
    geometry = soma_geometry(image)
    expected = half_max_lattice(1.0, 2.5)
    assert expected == (17, 7, 3)  # size_x is the extent along axis 2 (columns), size_y along axis 1
    assert (geometry["area"], geometry["size_x"], geometry["size_y"]) == expected


def test_diff_map_is_the_unsmoothed_frame_range_max_minus_min():
    image = synthetic_eimage(20, 20)
    geometry = soma_geometry(image)
    window = image[10:15].astype(np.float64)
    assert geometry["diff_map"].dtype == np.float64 and geometry["diff_map"].shape == (65, 65)
    np.testing.assert_allclose(geometry["diff_map"], window.max(axis=0) - window.min(axis=0))


@pytest.mark.parametrize("image", [np.full((50, 65, 65), np.nan), np.zeros((50, 65, 65)),
                                   np.full((50, 65, 65), 3.0, dtype=np.float32)],
                         ids=["nan", "zeros", "constant"])
def test_unit_without_signal_gets_nan_and_no_data(image):
    geometry = soma_geometry(image)
    assert geometry["status"] == "no_data" and geometry["reason"]
    assert all(np.isnan(geometry[key]) for key in SOMA_GEOMETRY_KEYS)
    assert geometry["diff_map"].shape == (65, 65) and np.isnan(geometry["diff_map"]).all()
    assert set(geometry) == set(soma_geometry(synthetic_eimage(5, 5)))


def test_every_scalar_key_is_a_float():
    geometry = soma_geometry(synthetic_eimage(40, 10))
    assert SOMA_GEOMETRY_KEYS == ("center_row", "center_col", "size_x", "size_y", "area", "equivalent_diameter",
                                  "center_row_subpixel", "center_col_subpixel")
    assert all(type(geometry[key]) is float for key in SOMA_GEOMETRY_KEYS)


def test_vectorised_result_equals_a_per_electrode_loop():
    rng = np.random.default_rng(3)
    image = rng.normal(0, 10, (50, 17, 23)).astype(np.float32)  # small: the loop is slow
    image[:, 7, 9] = np.nan  # NaN electrodes count as 0, as in the lab's code
    # The lab's per-electrode procedure, written as a loop.
    clean = np.nan_to_num(image.astype(np.float64))
    clean -= clean[:5].mean(axis=0)
    clean = gaussian_filter1d(clean, 2.0, axis=0, mode="nearest")
    expected = np.empty(image.shape[1:])
    for r in range(image.shape[1]):
        for c in range(image.shape[2]):
            trace = savgol_filter(clean[:, r, c], 7, 3)
            expected[r, c] = trace.max() - trace.min()
    np.testing.assert_allclose(peak_to_peak_map(clean, 7, 3), expected, rtol=1e-12, atol=1e-12)
    geometry = soma_geometry(image)
    expected_center = np.unravel_index(np.argmax(expected), expected.shape)
    assert (geometry["center_row"], geometry["center_col"]) == expected_center


def test_a_non_3d_array_is_an_input_error():
    with pytest.raises(InputError, match="eimage_sta"):
        soma_geometry(np.zeros((65, 65)))
