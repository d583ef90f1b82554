"""rf_geometry's own fit (beside the lab's): a rotated Gaussian on the unblurred spatial RF.

The lab's ``gaussian_fit`` is fitted to the peak-to-peak map of the STA blurred by 1.5 checkers,
so its sigmas are the RF's widened by the blur (``sigma_M² ≈ sigma² + 1.5²``), and undoing that
analytically amplifies small errors several-fold for one-checker RFs. This fit works on the
unblurred map (see :func:`~mea_pipeline.geometry.rf_preprocess.spatial_profile`), so its sigmas
are the RF's own, reported as major and minor axis with the major axis' orientation in the
stimulus frame (0 deg = +column, 90 deg = +row, rows growing downward). Solved by bounded least
squares with an analytic Jacobian and a fixed evaluation budget.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from .rf_fits import empty_fit

UNBLURRED_KEYS = ("center_x", "center_y", "sigma_major", "sigma_minor", "orientation_deg", "amplitude", "offset",
                  "r_squared", "ellipse_1sigma_area", "ellipse_1sigma_equivalent_diameter",
                  "ellipse_2sigma_area", "ellipse_2sigma_equivalent_diameter")


def rotated_gaussian(params: np.ndarray, y: np.ndarray, x: np.ndarray, with_jacobian: bool = False):
    """``offset + A exp(-(u² / 2 sx² + v² / 2 sy²))``, u along the axis at ``theta`` from +x toward +y.

    ``params`` = (x0, y0, sx, sy, A, theta, offset); u = dx cos(theta) + dy sin(theta),
    v = -dx sin(theta) + dy cos(theta). With ``with_jacobian`` also returns the (pixels, 7)
    derivatives.
    """
    x0, y0, sx, sy, amplitude, theta, offset = params
    dx, dy = x - x0, y - y0
    cos, sin = np.cos(theta), np.sin(theta)
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos
    bump = np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))
    value = offset + amplitude * bump
    if not with_jacobian:
        return value
    scaled = amplitude * bump
    jacobian = np.stack([
        scaled * (u * cos / sx ** 2 - v * sin / sy ** 2), scaled * (u * sin / sx ** 2 + v * cos / sy ** 2),
        scaled * u ** 2 / sx ** 3, scaled * v ** 2 / sy ** 3, bump,
        -scaled * u * v * (1 / sx ** 2 - 1 / sy ** 2), np.ones_like(bump)], axis=-1)
    return value, jacobian


def fit_unblurred_gaussian(profile: np.ndarray, center: tuple[int, int], *, center_radius: float,
                           center_limits: tuple[tuple[float, float], tuple[float, float]], sigma_start: float,
                           sigma_bounds: tuple[float, float], max_nfev: int) -> dict:
    """Rotated Gaussian + offset fitted to the unblurred spatial RF ``profile`` around ``center`` (row, col).

    The centre may move ``center_radius`` checkers from ``center`` within ``center_limits``
    ((row min, max), (col min, max)); sigmas stay within ``sigma_bounds``. Returns ``center_x``
    (column), ``center_y`` (row), ``sigma_major`` >= ``sigma_minor``, ``orientation_deg`` of the
    major axis in [0, 180) (0 = +column, 90 = +row), ``amplitude`` (STA units, the sign of the
    time course's main lobe), ``offset``, ``r_squared`` and the sizes of the ellipse with
    semi-axes ``k sigma_major``, ``k sigma_minor`` (k = 1, 2): area ``pi k² sigma_major
    sigma_minor`` and the diameter of the disc of that area ``2 k sqrt(sigma_major sigma_minor)``.
    """
    row, col = center
    median = float(np.median(profile))
    (y_lo, y_hi), (x_lo, x_hi) = ((max(lo, c - center_radius), min(hi, c + center_radius))
                                  for c, (lo, hi) in zip(center, center_limits))
    # Unequal start sigmas: with a circular start the residual does not depend on theta.
    start = [col, row, sigma_start * 1.2, sigma_start, profile[row, col] - median, 0.0, median]
    lower = np.array([x_lo, y_lo, sigma_bounds[0], sigma_bounds[0], -np.inf, -np.pi, -np.inf])
    upper = np.array([x_hi, y_hi, sigma_bounds[1], sigma_bounds[1], np.inf, np.pi, np.inf])
    y, x = (axis.ravel() for axis in np.mgrid[0:profile.shape[0], 0:profile.shape[1]].astype(np.float64))
    data = profile.ravel()
    try:
        result = least_squares(lambda p: rotated_gaussian(p, y, x) - data, np.clip(start, lower, upper),
                               jac=lambda p: rotated_gaussian(p, y, x, True)[1], bounds=(lower, upper),
                               method="trf", x_scale="jac", max_nfev=max_nfev)
    except (ValueError, np.linalg.LinAlgError) as exc:
        return empty_fit(UNBLURRED_KEYS, f"failed: {exc}")
    if result.status <= 0:
        return empty_fit(UNBLURRED_KEYS, f"failed: no convergence within max_nfev={max_nfev} evaluations")
    if not np.all(np.isfinite(result.x)):
        return empty_fit(UNBLURRED_KEYS, "failed: non-finite parameters")
    total = float(np.sum((data - data.mean()) ** 2))
    x0, y0, sigma_a, sigma_b, amplitude, theta, offset = (float(v) for v in result.x)
    if sigma_a < sigma_b:
        sigma_a, sigma_b, theta = sigma_b, sigma_a, theta + np.pi / 2
    fit = {"center_x": x0, "center_y": y0, "sigma_major": sigma_a, "sigma_minor": sigma_b,
           "orientation_deg": float(np.degrees(theta) % 180.0), "amplitude": amplitude, "offset": offset,
           "r_squared": 1.0 - float(np.sum(result.fun ** 2)) / total if total > 0 else 0.0}
    for multiple in (1, 2):
        fit[f"ellipse_{multiple}sigma_area"] = float(np.pi * multiple ** 2 * sigma_a * sigma_b)
        fit[f"ellipse_{multiple}sigma_equivalent_diameter"] = float(2 * multiple * np.sqrt(sigma_a * sigma_b))
    return {**fit, "fit_status": "ok"}
