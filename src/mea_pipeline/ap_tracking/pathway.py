"""Straight-line pathway and travel direction of one axon track.

Tracks are (N, 3) arrays of [t, row, col] (row = axis 1, col = axis 2). Lines are
``row = slope * col + intercept``; directions are degrees in [0, 360) with 0 = +col and
90 = +row (image axes: rows grow downward).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import linregress


@dataclass(frozen=True)
class Pathway:
    """Least-squares line ``row = slope * col + intercept`` through a track's centroids."""

    slope: float
    intercept: float
    r_value: float
    p_value: float
    std_err: float

    @property
    def r_squared(self) -> float:
        return self.r_value ** 2


def fit_pathway(centroids: np.ndarray) -> Pathway | None:
    """Ordinary least squares of row on col; None for a vertical track (all columns equal).

    The caller decides how many centroids a fit needs (``min_points_for_fit``); at least 2.
    """
    track = np.asarray(centroids, dtype=np.float64).reshape(-1, 3)
    if len(track) < 2 or np.ptp(track[:, 2]) == 0:
        return None
    fit = linregress(track[:, 2], track[:, 1])
    return Pathway(float(fit.slope), float(fit.intercept), float(fit.rvalue), float(fit.pvalue),
                   float(fit.stderr))


def direction_deg(centroids: np.ndarray) -> float:
    """Direction the signal travels: from the first centroid toward the time-weighted mean.

    Centroids are sorted by t; weights 1..N favour later points. When the weighted mean falls
    on the first point the last point is used instead.

    Returns
    -------
    angle : float
        Degrees in [0, 360), 0 = +col, 90 = +row; NaN when every candidate point coincides
        with the first one (no movement).
    """
    track = np.asarray(centroids, dtype=np.float64).reshape(-1, 3)
    if len(track) < 2:
        return float("nan")
    track = track[np.argsort(track[:, 0], kind="stable")]
    start = track[0, 1:]
    target = np.average(track[:, 1:], axis=0, weights=np.arange(1, len(track) + 1))
    if np.hypot(*(target - start)) < 1e-9:
        target = track[-1, 1:]
    d_row, d_col = target - start
    if np.hypot(d_row, d_col) < 1e-9:
        return float("nan")
    return wrap_degrees(np.degrees(np.arctan2(d_row, d_col)))


def wrap_degrees(angle: float) -> float:
    """Angle in [0, 360) (``-1e-20 % 360`` alone rounds to 360.0)."""
    wrapped = float(angle) % 360.0
    return 0.0 if wrapped >= 360.0 else wrapped
