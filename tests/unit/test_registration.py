"""Stimulus -> electrode registration and directions between frames, against hand-written transforms."""

import math

import numpy as np
import pytest

from mea_pipeline.ap_tracking.orientation import angle_correction
from mea_pipeline.ap_tracking.params import APTrackingParams
from mea_pipeline.frames import registration
from mea_pipeline.frames.registration import AFFINE, cardinal_label, decompose, map_direction, retina_direction
from mea_pipeline.steps.dsgc import DsgcParams

# Written out by hand (cos 30 = 0.8660254038, sin 30 = 0.5), not built with the code under test.
ROTATE_30_SCALE_QUARTER = np.array([[0.2165063509, -0.125], [0.125, 0.2165063509]])
# The stimulus transposed (column <-> row), then rotated by 30 deg, scaled by 0.25:
# 0.25 * [[c, -s], [s, c]] @ [[0, 1], [1, 0]] = 0.25 * [[-s, c], [c, s]].
MIRROR_ROTATE_30_SCALE_QUARTER = np.array([[-0.125, 0.2165063509], [0.2165063509, 0.125]])
OFFSET = np.array([12.0, -4.0])
DSGC = DsgcParams()


def fit_registration(stimulus_xy, electrode_xy, **given):
    """The registration with the dsgc step's parameter values, but those ``given``."""
    values = dict(kind=DSGC.registration_kind, min_points=DSGC.registration_min_units,
                  outlier_threshold_um=DSGC.registration_outlier_um, pitch_um=DSGC.electrode_pitch_um,
                  max_hypotheses=DSGC.registration_max_hypotheses, min_spread_ratio=DSGC.registration_min_spread,
                  seed=DSGC.seed)
    return registration.fit_registration(stimulus_xy, electrode_xy, **(values | given))


def stimulus_points(n=14, seed=1):
    """RF centres spread over a 300 x 300 pixel stimulus."""
    return np.random.default_rng(seed).uniform(20, 280, size=(n, 2))


def electrode_points(matrix, stimulus, noise=0.0, seed=2):
    electrode = stimulus @ np.asarray(matrix).T + OFFSET
    return electrode + np.random.default_rng(seed).normal(0, noise, electrode.shape)


def test_rotation_and_scale_are_recovered_without_reflection():
    s = stimulus_points()
    fit = fit_registration(s, electrode_points(ROTATE_30_SCALE_QUARTER, s))
    assert fit.status == "ok" and fit.reason == "" and not fit.reflected
    assert fit.rotation_deg == pytest.approx(30.0, abs=1e-6) and fit.scale == pytest.approx(0.25, abs=1e-9)
    np.testing.assert_allclose(fit.matrix, ROTATE_30_SCALE_QUARTER, atol=1e-9)
    np.testing.assert_allclose(fit.offset, OFFSET, atol=1e-7)
    assert fit.residual_um < 1e-6 and fit.residual_other_handedness_um > 100
    assert fit.inliers.all() and fit.n_used == 14


def test_a_mirrored_stimulus_is_reported_as_reflected():
    s = stimulus_points()
    fit = fit_registration(s, electrode_points(MIRROR_ROTATE_30_SCALE_QUARTER, s, noise=0.3), pitch_um=16.0)
    assert fit.status == "ok" and fit.reflected
    assert fit.rotation_deg == pytest.approx(30.0, abs=1.0) and fit.scale == pytest.approx(0.25, rel=0.01)
    np.testing.assert_allclose(fit.matrix, MIRROR_ROTATE_30_SCALE_QUARTER, atol=0.004)
    # 0.3 electrodes of noise per axis: about 0.3 * sqrt(2) * 16 = 6.8 um RMS.
    assert 4.0 < fit.residual_um < 10.0
    assert fit.residual_other_handedness_um > 10 * fit.residual_um


def test_a_flip_of_the_row_axis_is_a_reflection_with_its_own_rotation():
    # diag(1, -1) = R(270) @ T: the +row axis of the stimulus points along electrode angle 270.
    scale, rotation, reflected = decompose(np.diag([2.0, -2.0]))
    assert reflected and scale == pytest.approx(2.0) and rotation == pytest.approx(270.0)
    s = stimulus_points()
    fit = fit_registration(s, electrode_points(np.diag([0.2, -0.2]), s))
    assert fit.reflected and fit.rotation_deg == pytest.approx(270.0, abs=1e-6)


def test_known_outliers_are_excluded_and_named():
    s = stimulus_points(n=16)
    e = electrode_points(ROTATE_30_SCALE_QUARTER, s, noise=0.2)
    outliers = [3, 8, 11]
    e[outliers] += np.array([[15.0, 0.0], [-9.0, 12.0], [0.0, -20.0]])   # 150-320 um off at 16 um pitch
    fit = fit_registration(s, e, outlier_threshold_um=60.0)
    assert fit.status == "ok" and not fit.reflected
    assert np.flatnonzero(~fit.inliers).tolist() == outliers
    assert fit.rotation_deg == pytest.approx(30.0, abs=1.0) and fit.scale == pytest.approx(0.25, rel=0.01)
    assert fit.residual_um < 8.0
    assert np.all(fit.residuals_um[outliers] > 100)


def test_random_hypotheses_when_the_pairs_are_too_many():
    s = stimulus_points(n=60, seed=5)
    e = electrode_points(MIRROR_ROTATE_30_SCALE_QUARTER, s, noise=0.2)
    e[:10] += 25.0                                                         # a sixth of the units far off
    fit = fit_registration(s, e, max_hypotheses=200, seed=3)
    assert fit.status == "ok" and fit.reflected and np.flatnonzero(~fit.inliers).tolist() == list(range(10))
    assert fit.rotation_deg == pytest.approx(30.0, abs=1.0)


def test_refused_below_the_minimum_unit_count():
    s = stimulus_points(n=5)
    fit = fit_registration(s, electrode_points(ROTATE_30_SCALE_QUARTER, s), min_points=6)
    assert fit.status == "refused" and "5 units" in fit.reason and "6 needed" in fit.reason
    assert np.isnan(fit.matrix).all() and np.isnan(fit.residual_um)
    assert fit_registration(s, electrode_points(ROTATE_30_SCALE_QUARTER, s), min_points=5).status == "ok"


def test_refused_when_too_few_units_agree_or_the_points_are_collinear():
    s = stimulus_points(n=8)
    e = np.random.default_rng(0).uniform(0, 64, size=(8, 2))              # no transform relates them
    fit = fit_registration(s, e, min_points=6, outlier_threshold_um=30.0)
    assert fit.status == "refused" and "agree" in fit.reason
    line = np.column_stack([np.linspace(10, 290, 8), np.linspace(40, 200, 8)])
    fit = fit_registration(line, electrode_points(ROTATE_30_SCALE_QUARTER, line))
    assert fit.status == "refused" and "line" in fit.reason


def test_affine_fit_recovers_a_shear_the_similarity_cannot():
    shear = np.array([[0.2, 0.05], [0.0, -0.3]])
    s = stimulus_points()
    e = electrode_points(shear, s)
    affine = fit_registration(s, e, kind=AFFINE)
    assert affine.status == "ok" and affine.kind == "affine" and affine.reflected   # det < 0
    np.testing.assert_allclose(affine.matrix, shear, atol=1e-9)
    assert affine.scale == pytest.approx(math.sqrt(0.06)) and math.isnan(affine.residual_other_handedness_um)
    assert fit_registration(s, e, outlier_threshold_um=1e4).residual_um > 20


def test_directions_through_known_matrices():
    # Rotation by 30 deg: every angle turns by +30.
    np.testing.assert_allclose(map_direction([0, 90, 350], ROTATE_30_SCALE_QUARTER), [30, 120, 20], atol=1e-6)
    # The transpose: 0 (toward +column) becomes 90 (toward +row), 30 becomes 60: the sense flips.
    np.testing.assert_allclose(map_direction([0, 90, 30, 180], [[0, 1], [1, 0]]), [90, 0, 60, 270], atol=1e-9)
    # Transposed, then rotated by 30: a -> 30 + 90 - a (the bar toward +column moves along 120 deg).
    np.testing.assert_allclose(map_direction([0, 45, 200], MIRROR_ROTATE_30_SCALE_QUARTER), [120, 75, 280],
                               atol=1e-6)
    assert np.isnan(map_direction(np.nan, ROTATE_30_SCALE_QUARTER))


def test_retina_directions_follow_the_labs_angle_correction():
    # ONH left of the reference point (33, 33): image angle 0; a dorsal-temporal piece (DV 5, NT -5)
    # expects 135 deg, so directions turn by +135 (0 = nasal, 90 = dorsal, 180 = temporal, 270 = ventral).
    correction = angle_correction((13.0, 33.0), dv=5.0, nt=-5.0,
                                  reference_xy=APTrackingParams().angle_reference_point)
    angle, label = retina_direction([45.0, 300.0, 135.0, 225.0, np.nan], correction)
    np.testing.assert_allclose(angle[:4], [180.0, 75.0, 270.0, 0.0], atol=1e-9)
    assert label.tolist() == ["temporal", "dorsal", "ventral", "nasal", ""]
    assert np.isnan(angle[4])


def test_cardinal_labels_and_ties():
    assert cardinal_label([10, 80, 170, 260, 350, 44.9, 45.1, 315.0]).tolist() == [
        "nasal", "dorsal", "temporal", "ventral", "nasal", "nasal", "dorsal", "nasal"]
