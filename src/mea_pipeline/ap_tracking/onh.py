"""Optic-nerve head (ONH): the point the recording's axon pathways converge to.

Coordinates here are Cartesian as in the lab's ONH: ``x`` = col (axis 2), ``y`` = row (axis 1);
angles in degrees, 0 = +col, 90 = +row. For each R^2 threshold of ``params.r2_thresholds`` in
turn: consensus direction of the good pathways, direction filter, per-cell point sets, then an
iterative refinement (SLSQP, multi-start, ONH constrained to a circle around the chip centre and
downstream of the cells) that removes the worst-fitting cells until the ONH lies inside the
circle. When every threshold fails, the unconstrained pairwise-intersection mean of all
pathways is used ("legacy"). Pathways are never modified: direction flags are returned.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from .params import APTrackingParams
from .pathway import Pathway, wrap_degrees


@dataclass(frozen=True)
class TrackedPathway:
    """One unit's input to the ONH search: its line, direction and centroid track [t, row, col]."""

    unit_id: str
    pathway: Pathway
    direction_deg: float
    centroids: np.ndarray


@dataclass(frozen=True)
class OnhResult:
    """The ONH and how it was found.

    ``r2_threshold`` is the threshold whose attempt succeeded (NaN for legacy);
    ``consensus_direction`` / ``n_valid_after_direction`` / ``direction_valid`` come from that
    attempt (for legacy: from the last attempt that computed them, NaN / 0 / {} if none did).
    ``inside_boundary`` says whether the ONH is closer than ``boundary_tolerance * R`` to the
    centre. ``attempts`` records why each threshold failed. ``rmse`` is ``sqrt(mse)`` for every
    method (the lab writes 0.0 for legacy).
    """

    x: float
    y: float
    method: str
    mse: float
    rmse: float
    total_squared_error: float
    r2_threshold: float
    consensus_direction: float
    n_valid_after_direction: int
    n_cells_used: int
    n_centroids_used: int
    kept_unit_ids: tuple[str, ...]
    outlier_unit_ids: tuple[str, ...]
    n_iterations: int
    inside_boundary: bool
    direction_valid: dict[str, bool] = field(default_factory=dict)
    attempts: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Cell:
    unit_id: str
    start: np.ndarray   # (2,) x, y of the first kept centroid
    points: np.ndarray  # (k, 2) x, y, start included


def angular_difference(a: np.ndarray | float, b: float) -> np.ndarray:
    """Smallest absolute difference between angles in degrees, in [0, 180]."""
    return np.abs((np.asarray(a, dtype=np.float64) - b + 180.0) % 360.0 - 180.0)


def consensus_direction(angles: np.ndarray, r_squared: np.ndarray) -> float:
    """R^2-weighted circular mean of directions, degrees in [0, 360)."""
    weights = np.asarray(r_squared, dtype=np.float64)
    weights = weights / weights.sum()
    radians = np.radians(angles)
    return wrap_degrees(np.degrees(np.arctan2((weights * np.sin(radians)).sum(),
                                              (weights * np.cos(radians)).sum())))


def cell_points(centroids: np.ndarray, exclude_fraction: float, min_remaining: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Start point and points (x = col, y = row) of a track after dropping its first centroids.

    The first ``max(1, floor(exclude_fraction * N))`` centroids by t (nearest the soma, where
    the soma signal blurs the axon) are dropped; None if fewer than ``min_remaining`` are left.
    """
    track = centroids[np.argsort(centroids[:, 0], kind="stable")]
    kept = track[max(1, int(exclude_fraction * len(track))):]
    if len(kept) < min_remaining:
        return None
    points = kept[:, [2, 1]].astype(np.float64)
    return points[0], points


def squared_distances(onh: np.ndarray, starts: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared distance of each point to the line through its cell's start and ``onh``, and its gradient.

    Where the ONH coincides with the start the distance to the start is used (gradient 0).
    ``starts`` is (P, 2) or one (2,) start for all points. Returns ``(d2 (P,), d d2 / d onh (P, 2))``.
    """
    starts = np.broadcast_to(starts, points.shape)
    u = onh[None, :] - starts
    v = points - starts
    cross = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
    norm2 = (u ** 2).sum(axis=1)
    degenerate = norm2 < 1e-12
    safe = np.where(degenerate, 1.0, norm2)
    d2 = np.where(degenerate, (v ** 2).sum(axis=1), cross ** 2 / safe)
    d_cross = np.stack([v[:, 1], -v[:, 0]], axis=1)
    grad = 2 * cross[:, None] * d_cross / safe[:, None] - 2 * (cross ** 2)[:, None] * u / (safe ** 2)[:, None]
    grad[degenerate] = 0.0
    return d2, grad


def _optimise(cells: list[_Cell], consensus: float | None, p: APTrackingParams) -> np.ndarray:
    """Multi-start SLSQP for the ONH of ``cells``; the lowest objective found inside 1.01 R."""
    center, radius = np.asarray(p.center_point, dtype=np.float64), float(p.max_distance_from_center)
    starts = np.concatenate([np.repeat(c.start[None], len(c.points), axis=0) for c in cells])
    points = np.concatenate([c.points for c in cells])
    mean_start = np.mean([c.start for c in cells], axis=0)

    def objective(onh):
        d2, grad = squared_distances(onh, starts, points)
        return d2.sum(), grad.sum(axis=0)

    constraints = [{"type": "ineq", "fun": lambda o: radius ** 2 - ((o - center) ** 2).sum(),
                    "jac": lambda o: -2.0 * (o - center)}]
    guesses = [center]
    if consensus is not None:
        heading = np.array([np.cos(np.radians(consensus)), np.sin(np.radians(consensus))])
        constraints.append({"type": "ineq", "fun": lambda o: (o - mean_start) @ heading,
                            "jac": lambda o: heading})
        guesses.insert(0, mean_start + p.consensus_start_offset * heading)
    ring = np.radians(360.0 / p.n_ring_starts * np.arange(p.n_ring_starts))
    guesses += list(center + p.ring_start_fraction * radius * np.stack([np.cos(ring), np.sin(ring)], axis=1))
    if np.hypot(*(mean_start - center)) <= radius:
        guesses.append(mean_start)

    bounds = [(center[0] - radius, center[0] + radius), (center[1] - radius, center[1] + radius)]
    best, best_value = center, None
    for guess in guesses:
        guess = np.clip(guess, center - radius, center + radius)
        offset = np.hypot(*(guess - center))
        if offset > radius:
            guess = center + (guess - center) * radius / offset
        result = minimize(objective, guess, jac=True, method="SLSQP", bounds=bounds, constraints=constraints,
                          options={"maxiter": p.slsqp_maxiter, "ftol": p.slsqp_ftol})
        # The success flag is ignored (as in the lab): any finite result inside the circle competes.
        inside = np.hypot(*(result.x - center)) <= p.accept_radius_factor * radius
        if inside and np.isfinite(result.fun) and (best_value is None or result.fun < best_value):
            best, best_value = np.asarray(result.x, dtype=np.float64), float(result.fun)
    return best


def _cell_errors(onh: np.ndarray, cells: list[_Cell]) -> np.ndarray:
    return np.array([squared_distances(onh, c.start, c.points)[0].mean() for c in cells])


def _refine_onh(cells: list[_Cell], consensus: float | None, p: APTrackingParams):
    """Optimise, and while the ONH is not well inside the circle remove the worst-fitting cells.

    Returns ``(onh, kept cells, removed cells, n_iterations, inside_boundary)``; when the ONH
    never gets closer than ``boundary_tolerance * R`` to the centre, the iteration whose ONH
    was closest is returned.
    """
    center, radius = np.asarray(p.center_point, dtype=np.float64), float(p.max_distance_from_center)
    min_keep = max(p.min_pathways, int(p.min_remaining_fraction * len(cells)))
    kept, removed = list(cells), []
    closest, previous_distance = None, np.inf
    no_progress, rate, iteration = 0, p.removal_fraction, 0
    for iteration in range(1, p.max_iterations + 1):
        onh = _optimise(kept, consensus, p)
        distance = float(np.hypot(*(onh - center)))
        if closest is None or distance < closest[0]:
            closest = (distance, onh, list(kept), list(removed))
        if distance < p.boundary_tolerance * radius:
            return onh, kept, removed, iteration, True
        if previous_distance - distance < p.min_progress:
            no_progress += 1
        else:
            no_progress, rate = 0, p.removal_fraction
        if no_progress >= p.no_progress_patience:
            rate, no_progress = min(rate + p.removal_fraction_step, p.max_removal_fraction), 0
        previous_distance = distance
        n_remove = min(max(1, int(rate * len(kept))), len(kept) - min_keep)
        if n_remove <= 0:
            break
        worst = set(np.argsort(_cell_errors(onh, kept))[::-1][:n_remove].tolist())
        removed += [c for i, c in enumerate(kept) if i in worst]
        kept = [c for i, c in enumerate(kept) if i not in worst]
    _, onh, kept, removed = closest
    return onh, kept, removed, iteration, False


def _attempt(tracks: list[TrackedPathway], tau: float, p: APTrackingParams) -> dict:
    """One R^2 threshold: a result dict (``onh`` present on success) and the reason otherwise."""
    r2 = np.array([t.pathway.r_squared for t in tracks])
    angles = np.array([t.direction_deg for t in tracks])
    good = (r2 >= tau) & np.isfinite(angles)
    if not good.any():
        return {"reason": f"R2>={tau:g}: no pathway with a direction reaches it"}
    consensus = consensus_direction(angles[good], r2[good])
    valid = angular_difference(angles, consensus) <= p.direction_tolerance_deg
    attempt = {"consensus": consensus, "valid": {t.unit_id: bool(v) for t, v in zip(tracks, valid)},
               "n_valid": int((good & valid).sum())}
    if attempt["n_valid"] < 2:
        return attempt | {"reason": f"R2>={tau:g}: {attempt['n_valid']} direction-valid pathways, need 2"}
    cells = []
    for track, use in zip(tracks, good & valid):
        if use and len(track.centroids) >= p.min_centroids_per_cell:
            found = cell_points(track.centroids, p.centroid_exclude_fraction, p.min_points_after_exclusion)
            if found is not None:
                cells.append(_Cell(track.unit_id, *found))
    if len(cells) < max(2, p.min_pathways):
        return attempt | {"reason": f"R2>={tau:g}: {len(cells)} usable cells, need {max(2, p.min_pathways)}"}
    return attempt | {"onh": _refine_onh(cells, consensus, p)}


def legacy_intersection(tracks: list[TrackedPathway], parallel_tolerance: float):
    """Mean of all pairwise line intersections weighted by the pair's mean R^2 (no constraint).

    Returns ``(x, y, mse)`` with mse the mean squared distance of the point to the lines, or
    None when all lines are parallel.
    """
    slopes = np.array([t.pathway.slope for t in tracks])
    intercepts = np.array([t.pathway.intercept for t in tracks])
    r2 = np.array([t.pathway.r_squared for t in tracks])
    crossings, weights = [], []
    for i, j in itertools.combinations(range(len(tracks)), 2):
        if abs(slopes[i] - slopes[j]) >= parallel_tolerance:
            x = (intercepts[j] - intercepts[i]) / (slopes[i] - slopes[j])
            crossings.append((x, slopes[i] * x + intercepts[i]))
            weights.append((r2[i] + r2[j]) / 2)
    if not crossings:
        return None
    weights = np.asarray(weights) if np.sum(weights) > 0 else None
    x, y = np.average(np.asarray(crossings), axis=0, weights=weights)
    mse = float(np.mean((slopes * x - y + intercepts) ** 2 / (slopes ** 2 + 1)))
    return float(x), float(y), mse


def find_onh(tracks: list[TrackedPathway], params: APTrackingParams = APTrackingParams()) -> tuple[OnhResult | None, str]:
    """ONH of a recording from its units' pathways.

    Returns
    -------
    result : OnhResult or None
    reason : str
        Why there is no result ('' when there is one).
    """
    if len(tracks) < 2:
        return None, f"{len(tracks)} unit(s) with a pathway; the ONH needs at least 2"
    center, radius = np.asarray(params.center_point), params.max_distance_from_center
    failures, last = [], {}
    for tau in params.r2_thresholds:
        attempt = _attempt(tracks, tau, params)
        if "consensus" in attempt:
            last = attempt
        if "onh" not in attempt:
            failures.append(attempt["reason"])
            continue
        onh, kept, removed, n_iterations, inside = attempt["onh"]
        starts = np.concatenate([np.repeat(c.start[None], len(c.points), axis=0) for c in kept])
        points = np.concatenate([c.points for c in kept])
        total = float(squared_distances(onh, starts, points)[0].sum())
        return OnhResult(
            x=float(onh[0]), y=float(onh[1]), method="iterative_refinement", mse=total / len(points),
            rmse=float(np.sqrt(total / len(points))), total_squared_error=total, r2_threshold=float(tau),
            consensus_direction=attempt["consensus"], n_valid_after_direction=attempt["n_valid"],
            n_cells_used=len(kept), n_centroids_used=len(points),
            kept_unit_ids=tuple(c.unit_id for c in kept), outlier_unit_ids=tuple(c.unit_id for c in removed),
            n_iterations=n_iterations, inside_boundary=inside, direction_valid=attempt["valid"],
            attempts=tuple(failures)), ""
    legacy = legacy_intersection(tracks, params.parallel_slope_tolerance)
    if legacy is None:
        return None, "iterative refinement failed (" + "; ".join(failures) + ") and all pathways are parallel"
    x, y, mse = legacy
    return OnhResult(
        x=x, y=y, method="legacy", mse=mse, rmse=float(np.sqrt(mse)), total_squared_error=mse * len(tracks),
        r2_threshold=float("nan"), consensus_direction=last.get("consensus", float("nan")),
        n_valid_after_direction=last.get("n_valid", 0), n_cells_used=len(tracks),
        n_centroids_used=int(sum(len(t.centroids) for t in tracks)),
        kept_unit_ids=tuple(t.unit_id for t in tracks), outlier_unit_ids=(), n_iterations=0,
        inside_boundary=bool(np.hypot(x - center[0], y - center[1]) < params.boundary_tolerance * radius),
        direction_valid=last.get("valid", {}), attempts=tuple(failures)), ""
