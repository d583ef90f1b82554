"""Optic-nerve-head search and retina orientation on synthetic straight tracks."""

import math

import numpy as np
import pytest

from mea_pipeline.ap_tracking.onh import TrackedPathway, find_onh, squared_distances
from mea_pipeline.ap_tracking.orientation import (angle_correction, parse_center_xy,
                                                   soma_polar_coordinates)
from mea_pipeline.ap_tracking.params import APTrackingParams
from mea_pipeline.ap_tracking.pathway import direction_deg, fit_pathway

CENTER = np.array([32.5, 32.5])                       # (col, row)
DIAGONAL = np.array([math.cos(math.radians(45)), math.sin(math.radians(45))])
# Off the array (beyond its corner) but inside the allowed circle. The tracks are diagonal on
# purpose: R^2 of row on col is low for near-horizontal tracks (checked separately below).
ONH = CENTER + 45 * DIAGONAL


def _track(unit_id, soma_rc, target_xy, rng, n=25, noise=0.2):
    """Centroids moving one electrode per frame from the soma (row, col) toward ``target_xy``."""
    soma_xy = np.array([soma_rc[1], soma_rc[0]], dtype=float)
    heading = (target_xy - soma_xy) / np.hypot(*(target_xy - soma_xy))
    steps = np.arange(6, 6 + n)[:, None]
    xy = soma_xy + steps * heading + rng.normal(0, noise, (n, 2))
    centroids = np.column_stack([np.arange(10, 10 + n), xy[:, 1], xy[:, 0]]).astype(np.float32)
    return TrackedPathway(unit_id, fit_pathway(centroids), direction_deg(centroids), centroids)


def _converging(n_tracks, rng, target=ONH):
    """Tracks from somas spread over the array whose direction to the target is within 25 deg of 45 deg."""
    somas = []
    while len(somas) < n_tracks:
        row, col = rng.uniform(4, 60, 2)
        offset = target - np.array([col, row])
        angle = math.degrees(math.atan2(offset[1], offset[0]))
        if abs(angle - 45) < 25 and np.hypot(*offset) > 35:
            somas.append((row, col))
    return [_track(f"unit_{i:03d}", soma, target, rng) for i, soma in enumerate(somas)]


def test_converging_tracks_give_the_onh():
    rng = np.random.default_rng(1)
    result, reason = find_onh(_converging(10, rng))
    assert reason == ""
    assert result.method == "iterative_refinement" and result.r2_threshold == 0.8
    assert np.hypot(result.x - ONH[0], result.y - ONH[1]) < 2.0
    assert result.inside_boundary and result.n_iterations == 1 and result.outlier_unit_ids == ()
    assert result.n_cells_used == 10 and result.n_valid_after_direction == 10
    assert result.rmse == pytest.approx(math.sqrt(result.mse)) and result.rmse < 1.0
    assert abs(result.consensus_direction - 45.0) < 15
    assert all(result.direction_valid.values())


def test_tracks_in_wrong_directions_are_left_out():
    rng = np.random.default_rng(2)
    tracks = _converging(10, rng)
    # Two tracks running away from the ONH, toward the array's left edge.
    tracks += [_track("unit_900", (20, 40), np.array([-40.0, 10.0]), rng),
               _track("unit_901", (45, 45), np.array([-40.0, 60.0]), rng)]
    result, _ = find_onh(tracks)
    assert np.hypot(result.x - ONH[0], result.y - ONH[1]) < 2.0
    for outlier in ("unit_900", "unit_901"):
        assert outlier in result.outlier_unit_ids or not result.direction_valid[outlier]
        assert outlier not in result.kept_unit_ids


def test_onh_outside_the_circle_makes_refinement_remove_cells_and_stop():
    rng = np.random.default_rng(3)
    far = CENTER + 70 * DIAGONAL
    result, _ = find_onh(_converging(12, rng, target=far))
    assert result.method == "iterative_refinement" and not result.inside_boundary
    assert np.hypot(result.x - CENTER[0], result.y - CENTER[1]) <= 50 * 1.01
    # The constrained ONH sits on the circle toward the true point; removing cells cannot bring
    # it inside, so the iteration closest to the centre is returned.
    assert np.hypot(result.x - CENTER[0], result.y - CENTER[1]) == pytest.approx(50, abs=0.5)
    assert math.degrees(math.atan2(result.y - CENTER[1], result.x - CENTER[0])) == pytest.approx(45, abs=8)
    assert result.n_iterations > 1 and result.n_cells_used + len(result.outlier_unit_ids) == 12


def test_near_horizontal_tracks_have_low_r2_and_need_a_lower_threshold():
    rng = np.random.default_rng(7)
    target = CENTER + np.array([35.0, 0.0])
    tracks = [_track(f"unit_{i:03d}", (row, 5.0), target, rng) for i, row in enumerate(np.linspace(25, 40, 8))]
    result, _ = find_onh(tracks)
    assert all(t.pathway.r_squared < 0.8 for t in tracks[3:5])
    assert result.r2_threshold < 0.8 or result.method == "legacy"


def test_too_few_cells_fall_back_to_the_legacy_intersection():
    rng = np.random.default_rng(4)
    result, reason = find_onh(_converging(3, rng))
    assert reason == "" and result.method == "legacy" and math.isnan(result.r2_threshold)
    assert np.hypot(result.x - ONH[0], result.y - ONH[1]) < 5.0
    assert result.n_cells_used == 3 and len(result.attempts) == 3
    assert "3 usable cells, need 5" in result.attempts[0]


def test_one_pathway_gives_no_onh():
    result, reason = find_onh(_converging(1, np.random.default_rng(5)))
    assert result is None and "at least 2" in reason


def test_squared_distance_gradient_matches_finite_differences():
    rng = np.random.default_rng(6)
    starts, points = rng.normal(0, 5, (20, 2)), rng.normal(0, 5, (20, 2))
    onh = np.array([3.0, -7.0])
    _, grad = squared_distances(onh, starts, points)
    step = 1e-6
    for axis in range(2):
        shift = np.zeros(2)
        shift[axis] = step
        numeric = (squared_distances(onh + shift, starts, points)[0]
                   - squared_distances(onh - shift, starts, points)[0]) / (2 * step)
        np.testing.assert_allclose(grad[:, axis], numeric, rtol=1e-5, atol=1e-6)


# --- orientation -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("L, 5, -5", ("L", -5.0, -5.0)),
    ("R, -5. -5", ("R", None, None)),
    (b"r,2.5,3", ("R", -2.5, 3.0)),
    ("L, x, 4", ("L", None, 4.0)),
    (None, (None, None, None)),
])
def test_parse_center_xy(text, expected):
    assert parse_center_xy(text) == expected


def test_polar_coordinates_of_a_known_geometry():
    # Soma 10 columns right of and 10 rows below the ONH: 45 deg in image axes.
    polar = soma_polar_coordinates(soma_row=30, soma_col=40, onh_xy=(30.0, 20.0),
                                   correction_deg=None, dv=None, nt=None)
    assert polar.radius == pytest.approx(math.hypot(10, 10))
    assert polar.theta_deg_raw == pytest.approx(45.0) and polar.theta_deg == pytest.approx(45.0)
    assert polar.cartesian_x == 10.0 and polar.cartesian_y == 10.0
    assert polar.quadrant == "Q1" and (polar.original_x, polar.original_y) == (30, 40)
    assert polar.anatomical_quadrant is None and polar.angle_correction_applied is None

    # ONH left of the reference point (33, 33): the image angle to it is 0 deg; a dorsal-temporal
    # piece (DV > 0, NT < 0) expects 135 deg, so every angle turns by +135.
    correction = angle_correction((13.0, 33.0), dv=5.0, nt=-5.0,
                                  reference_xy=APTrackingParams().angle_reference_point)
    assert correction == pytest.approx(135.0)
    polar = soma_polar_coordinates(30, 40, (30.0, 20.0), correction, 5.0, -5.0)
    assert polar.theta_deg_corrected == pytest.approx(180.0)
    assert polar.angle == pytest.approx(math.pi)
    assert polar.transformed_x == pytest.approx(-math.hypot(10, 10)) and polar.transformed_y == pytest.approx(0, abs=1e-9)
    assert polar.quadrant == "Q2"
    assert polar.anatomical_quadrant == "dorsal-temporal" and polar.angle_correction_applied == pytest.approx(135.0)


def test_params_defaults_are_the_unified_pipelines():
    p = APTrackingParams()
    assert (p.direction_tolerance_deg, p.max_distance_from_center, p.center_point) == (30, 50, (32.5, 32.5))
    assert (p.centroid_threshold, p.max_displacement, p.centroid_start_frame) == (0.05, 100, 10)
    assert p.slsqp_maxiter == 1000 and p.filter_by_cell_type and p.fix_bad_lanes  # the lab's budget and switches
