"""Step 10 science before the ONH: bad lanes, soma/AIS, noise filter, centroids, pathway, direction."""

import numpy as np
import pytest

from mea_pipeline.ap_tracking import postprocess, soma
from mea_pipeline.ap_tracking.lanes import fix_bad_lanes, parse_bad_lanes
from mea_pipeline.ap_tracking.params import APTrackingParams
from mea_pipeline.ap_tracking.pathway import direction_deg, fit_pathway

# The science functions with the step's parameter values (the tests below give the others explicitly).
P = APTrackingParams()


def coarse_soma(image):
    return soma.coarse_soma(image, P.soma_std_threshold, P.soma_temporal_range)


def refined_soma(image, coarse):
    return soma.refined_soma(image, coarse, P.soma_refine_radius)


def axon_initial_segment(image, soma_tyx):
    return soma.axon_initial_segment(image, soma_tyx, P.ais_search_xy_radius, P.ais_search_t_radius, P.ais_fraction)


def filter_noise(prediction):
    return postprocess.filter_noise(prediction, P.centroid_threshold, P.min_cluster_size, P.temporal_window_size)


def axon_centroids(filtered, row, col, max_displacement=P.max_displacement):
    return postprocess.axon_centroids(filtered, row, col, P.centroid_start_frame, P.exclude_radius, max_displacement)


def longest_smooth_segment(centroids):
    return postprocess.longest_smooth_segment(centroids, P.max_displacement_post)


# --- bad lanes -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, lanes, rejected", [
    ("53, 59", [52, 58], []),
    (b"53,59", [52, 58], []),
    ("7, 18. 38, 36", [6, 35], ["18. 38"]),
    ("59, 53, 53,", [52, 58], []),
    ("0, -3, x", [], ["0", "-3", "x"]),
    (None, [], []),
    ("", [], []),
    (np.array([b"12, 3"]), [2, 11], []),
    (float("nan"), [], []),
])
def test_parse_bad_lanes(text, lanes, rejected):
    assert parse_bad_lanes(text) == (lanes, rejected)


def test_fix_bad_lanes_sets_columns_to_the_whole_mean_and_keeps_the_input():
    eimage = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    original = eimage.copy()
    fixed = fix_bad_lanes(eimage, [1, 3, 99])
    np.testing.assert_array_equal(eimage, original)
    assert np.all(fixed[..., [1, 3]] == original.mean())
    np.testing.assert_array_equal(fixed[..., [0, 2]], original[..., [0, 2]])
    assert np.all(np.isnan(fix_bad_lanes(np.full((2, 3, 4), np.nan), [1])))


# --- soma and AIS ----------------------------------------------------------------------------

def _soma_image(row=30, col=40, rng=None):
    """Biphasic soma trough at frame 10 on a Gaussian footprint, plus an early AIS electrode."""
    rng = rng or np.random.default_rng(0)
    image = rng.normal(0, 0.2, (50, 65, 65)).astype(np.float32)
    rr, cc = np.mgrid[0:65, 0:65]
    footprint = np.exp(-((rr - row) ** 2 + (cc - col) ** 2) / 2.0)
    wave = -np.exp(-(np.arange(50) - 10) ** 2 / 4.0) + 0.3 * np.exp(-(np.arange(50) - 16) ** 2 / 8.0)
    image += 40 * wave[:, None, None] * footprint[None]
    return image


def test_soma_and_ais_on_a_known_trough():
    image = _soma_image()
    image[8, 32, 41] = -20.0   # earlier than the soma trough, more than 30 % of it
    assert coarse_soma(image) == (30, 40)
    assert refined_soma(image, (30, 40)) == (10, 30, 40)
    assert axon_initial_segment(image, (10, 30, 40)) == (8, 32, 41)


def test_refined_soma_window_is_the_labs_asymmetric_one():
    image = np.zeros((50, 65, 65), dtype=np.float32)
    image[12, 35, 30] = -5.0   # row + 5: outside [row - 5, row + 5)
    image[20, 25, 30] = -1.0   # row - 5: inside
    assert refined_soma(image, (30, 30)) == (20, 25, 30)


def test_ais_is_none_when_nothing_reaches_the_fraction():
    image = np.zeros((50, 65, 65), dtype=np.float32)
    image[10, 30, 30] = 4.0    # a positive "trough": nothing is below 0.3 * 4
    assert axon_initial_segment(image, (10, 30, 30)) is None


# --- noise filter ----------------------------------------------------------------------------

def test_noise_filter_removes_small_specks_and_applies_the_thresholds():
    prediction = np.zeros((6, 20, 20), dtype=np.float32)
    for t in range(6):
        prediction[t, 5:7, 5:8] = 0.9           # a 6-pixel blob in every frame
    prediction[2, 15, 15] = 0.8                 # isolated speck in a frame with other signal
    prediction[3, 5, 10] = 0.03                 # below threshold
    filtered = filter_noise(prediction)
    assert filtered[2, 15, 15] == 0 and filtered[3, 5, 10] == 0
    np.testing.assert_array_equal(filtered[:, 5:7, 5:8], prediction[:, 5:7, 5:8])
    assert filtered.dtype == np.float32 and prediction[2, 15, 15] == 0.8   # input untouched


def test_noise_filter_keeps_a_lone_pair_only_with_temporal_support():
    prediction = np.zeros((5, 20, 20), dtype=np.float32)
    prediction[2, 10, 10:12] = 0.5    # frame with only 2 pixels: kept by the spatial stage (quirk)
    prediction[3, 11, 12] = 0.5       # next frame, within 2 pixels: supports it
    prediction[1, 0, 19] = 0.5        # alone in space and time: removed by the temporal stage
    filtered = filter_noise(prediction)
    assert filtered[2, 10, 10] == 0.5 and filtered[2, 10, 11] == 0.5
    assert filtered[1, 0, 19] == 0
    # frame 3 is supported by frame 2; a lone pixel in the last frame is never checked
    assert filtered[3, 11, 12] == 0.5
    prediction[4, 0, 0] = 0.5
    assert filter_noise(prediction)[4, 0, 0] == 0.5


# --- centroids, segments, pathway, direction -------------------------------------------------

def _moving_blob(start=(32.0, 32.0), angle_deg=30.0, speed=1.0, t0=10, frames=50):
    """Probability volume: a 3x3 blob moving ``speed`` electrodes per frame from ``start``."""
    volume = np.zeros((frames, 65, 65), dtype=np.float32)
    heading = np.array([np.sin(np.radians(angle_deg)), np.cos(np.radians(angle_deg))])  # (row, col)
    rr, cc = np.mgrid[0:65, 0:65]
    for t in range(t0, frames):
        row, col = np.asarray(start) + speed * (t - t0) * heading
        blob = np.exp(-((rr - row) ** 2 + (cc - col) ** 2) / 1.0)
        volume[t] = np.where(blob > 0.1, blob, 0)
    return volume


def test_centroids_of_a_moving_blob_lie_on_its_line_and_give_its_direction():
    volume = _moving_blob(angle_deg=30.0)
    centroids = axon_centroids(filter_noise(volume), 32, 32)
    assert centroids.dtype == np.float32 and centroids.shape[1] == 3
    t, row, col = centroids.T
    assert t.min() >= 16   # inside the 11 x 11 soma square nothing is found
    expected_row = 32 + np.tan(np.radians(30.0)) * (col - 32)
    # Blobs cut by the soma square (first frames) or the chip edge have shifted centres.
    whole = (t >= 18) & (col < 62)
    np.testing.assert_allclose(row[whole], expected_row[whole], atol=0.1)
    np.testing.assert_allclose(row, expected_row, atol=0.6)
    pathway = fit_pathway(centroids)
    assert pathway.slope == pytest.approx(np.tan(np.radians(30.0)), abs=0.02)
    assert pathway.r_squared > 0.99
    assert abs(direction_deg(centroids) - 30.0) < 2.0


@pytest.mark.parametrize("angle", [0.0, 100.0, 200.0, 315.0])
def test_direction_in_image_axes(angle):
    centroids = axon_centroids(_moving_blob(angle_deg=angle), 32, 32)
    difference = (direction_deg(centroids) - angle + 180) % 360 - 180
    assert abs(difference) < 2.0


def test_centroids_pick_the_largest_component_and_respect_max_displacement():
    volume = np.zeros((14, 65, 65), dtype=np.float32)
    volume[10, 50:53, 50:53] = 0.5       # 9 px
    volume[10, 10, 10:12] = 1.0          # 2 px, brighter but smaller
    volume[11, 50:53, 51:54] = 0.5
    volume[12, 5:8, 5:8] = 0.5           # far jump
    track = axon_centroids(volume, 32, 32, max_displacement=10)
    np.testing.assert_allclose(track, [[10, 51, 51], [11, 51, 52]])
    assert len(axon_centroids(volume, 32, 32)) == 3
    assert axon_centroids(np.zeros((20, 65, 65)), 32, 32).shape == (0, 3)


def test_longest_smooth_segment_keeps_the_longest_run():
    track = np.array([[10, 0, 0], [11, 1, 0], [12, 20, 20], [13, 21, 20], [14, 22, 20],
                      [15, 23, 21], [16, 2, 2]], dtype=np.float32)
    kept = longest_smooth_segment(track[::-1])   # unsorted input is sorted by t
    np.testing.assert_array_equal(kept[:, 0], [12, 13, 14, 15])
    tie = np.array([[10, 0, 0], [11, 1, 0], [12, 20, 20], [13, 21, 20]], dtype=np.float32)
    np.testing.assert_array_equal(longest_smooth_segment(tie)[:, 0], [10, 11])


def test_vertical_track_has_no_pathway():
    centroids = np.array([[t, 10 + t, 30] for t in range(12)], dtype=np.float32)
    assert fit_pathway(centroids) is None
    assert direction_deg(centroids) == pytest.approx(90.0)
