"""Step 7 fits: rotated 2-D Gaussian, concentric difference of Gaussians and ON/OFF Gaussians.

Every fit is a bounded ``scipy.optimize.least_squares`` ('trf') with a fixed evaluation budget,
so no input can stall it. Pixel grids are x = column (axis 2), y = row (axis 1); centres are
returned in the caller's coordinates (grid index minus ``shift``). A fit that fails returns NaN
for every number and a ``fit_status`` saying why; R² is ``1 - SS_res / SS_tot`` over all pixels
(0 when the map is constant).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

GAUSSIAN_KEYS = ("center_x", "center_y", "sigma_x", "sigma_y", "amplitude", "theta", "offset", "r_squared",
                 "ellipse_1sigma_area", "ellipse_1sigma_equivalent_diameter",
                 "ellipse_2sigma_area", "ellipse_2sigma_equivalent_diameter")
DOG_KEYS = ("center_x", "center_y", "sigma_exc", "sigma_inh", "amp_exc", "amp_inh", "offset", "r_squared")
_ON_OFF_FIELDS = ("center_x", "center_y", "sigma_x", "sigma_y", "amplitude", "r_squared")
ONOFF_KEYS = tuple(f"{side}_{field}" for side in ("on", "off") for field in _ON_OFF_FIELDS)
# ((row min, row max), (column min, column max)) of a fitted centre, in grid indices.
CenterLimits = tuple[tuple[float, float], tuple[float, float]]


def empty_fit(keys: tuple[str, ...], fit_status: str) -> dict:
    """The layout of a fit group with NaN values, for a fit that was not made or failed."""
    return {**dict.fromkeys(keys, np.nan), "fit_status": fit_status}


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


def difference_of_gaussians(params: np.ndarray, y: np.ndarray, x: np.ndarray, with_jacobian: bool = False):
    """Concentric ``offset + Ae exp(-r² / 2 se²) - Ai exp(-r² / 2 si²)``.

    ``params`` = (x0, y0, se, si, Ae, Ai, offset).
    """
    x0, y0, sigma_exc, sigma_inh, amp_exc, amp_inh, offset = params
    dx, dy = x - x0, y - y0
    r2 = dx ** 2 + dy ** 2
    exc, inh = np.exp(-r2 / (2 * sigma_exc ** 2)), np.exp(-r2 / (2 * sigma_inh ** 2))
    value = offset + amp_exc * exc - amp_inh * inh
    if not with_jacobian:
        return value
    radial = amp_exc * exc / sigma_exc ** 2 - amp_inh * inh / sigma_inh ** 2
    jacobian = np.stack([
        radial * dx, radial * dy, amp_exc * exc * r2 / sigma_exc ** 3, -amp_inh * inh * r2 / sigma_inh ** 3,
        exc, -inh, np.ones_like(exc)], axis=-1)
    return value, jacobian


def axis_aligned_gaussian(params: np.ndarray, y: np.ndarray, x: np.ndarray, with_jacobian: bool = False):
    """``offset + A exp(-dx² / 2 sx² - dy² / 2 sy²)``; params (x0, y0, sx, sy, A, offset)."""
    x0, y0, sx, sy, amplitude, offset = params
    dx, dy = x - x0, y - y0
    bump = np.exp(-0.5 * ((dx / sx) ** 2 + (dy / sy) ** 2))
    value = offset + amplitude * bump
    if not with_jacobian:
        return value
    scaled = amplitude * bump
    jacobian = np.stack([scaled * dx / sx ** 2, scaled * dy / sy ** 2, scaled * dx ** 2 / sx ** 3,
                         scaled * dy ** 2 / sy ** 3, bump, np.ones_like(bump)], axis=-1)
    return value, jacobian


def _least_squares(model, image: np.ndarray, start, lower, upper, max_nfev: int):
    """Bounded fit of ``model`` to ``image``: (params, r_squared, fit_status); params None on failure."""
    y, x = (axis.ravel() for axis in np.mgrid[0:image.shape[0], 0:image.shape[1]].astype(np.float64))
    data = image.ravel()
    lower, upper = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    start = np.clip(np.asarray(start, dtype=np.float64), lower, upper)
    try:
        result = least_squares(lambda p: model(p, y, x) - data, start, jac=lambda p: model(p, y, x, True)[1],
                               bounds=(lower, upper), method="trf", x_scale="jac", max_nfev=max_nfev)
    except (ValueError, np.linalg.LinAlgError) as exc:
        return None, np.nan, f"failed: {exc}"
    if result.status <= 0:
        return None, np.nan, f"failed: no convergence within max_nfev={max_nfev} evaluations"
    if not np.all(np.isfinite(result.x)):
        return None, np.nan, "failed: non-finite parameters"
    total = float(np.sum((data - data.mean()) ** 2))
    r_squared = 1.0 - float(np.sum(result.fun ** 2)) / total if total > 0 else 0.0
    return result.x, r_squared, "ok"


def _center_bounds(center: float, radius: float, limits: tuple[float, float]) -> tuple[float, float]:
    return max(limits[0], center - radius), min(limits[1], center + radius)


def fit_rotated_gaussian(image: np.ndarray, center: tuple[int, int], *, center_radius: float,
                         center_limits: CenterLimits, sigma_start: float, sigma_bounds: tuple[float, float],
                         shift: float, max_nfev: int) -> dict:
    """Rotated elliptical Gaussian + offset fitted to ``image`` around ``center`` (row, col).

    The centre may move ``center_radius`` pixels from ``center`` (and stays within
    ``center_limits``); sigmas stay within ``sigma_bounds``. The result is reported in the one
    form that makes it unique: ``sigma_x`` >= ``sigma_y`` (major, minor axis) and ``theta`` the
    angle of the major axis from +column toward +row in [-pi/2, pi/2). The
    ``ellipse_<k>sigma_*`` sizes are those of the ellipse with semi-axes ``k sigma_x`` and
    ``k sigma_y``: area ``pi k² sigma_x sigma_y`` and the diameter of the disc of that area
    ``2 k sqrt(sigma_x sigma_y)``.
    """
    row, col = center
    median = float(np.median(image))
    y_lo, y_hi = _center_bounds(row, center_radius, center_limits[0])
    x_lo, x_hi = _center_bounds(col, center_radius, center_limits[1])
    # Unequal start sigmas: with a circular start the residual does not depend on theta.
    start = [col, row, sigma_start * 1.2, sigma_start, image[row, col] - median, 0.0, median]
    lower = [x_lo, y_lo, sigma_bounds[0], sigma_bounds[0], -np.inf, -np.pi, -np.inf]
    upper = [x_hi, y_hi, sigma_bounds[1], sigma_bounds[1], np.inf, np.pi, np.inf]
    params, r_squared, status = _least_squares(rotated_gaussian, image, start, lower, upper, max_nfev)
    if params is None:
        return empty_fit(GAUSSIAN_KEYS, status)
    x0, y0, sigma_x, sigma_y, amplitude, theta, offset = (float(v) for v in params)
    if sigma_x < sigma_y:
        sigma_x, sigma_y, theta = sigma_y, sigma_x, theta + np.pi / 2
    fit = {"center_x": x0 - shift, "center_y": y0 - shift, "sigma_x": sigma_x, "sigma_y": sigma_y,
           "amplitude": amplitude, "theta": float((theta + np.pi / 2) % np.pi - np.pi / 2),
           "offset": offset, "r_squared": r_squared}
    for multiple in (1, 2):
        fit[f"ellipse_{multiple}sigma_area"] = float(np.pi * multiple ** 2 * sigma_x * sigma_y)
        fit[f"ellipse_{multiple}sigma_equivalent_diameter"] = float(2 * multiple * np.sqrt(sigma_x * sigma_y))
    return {**fit, "fit_status": status}


def fit_dog(image: np.ndarray, center: tuple[int, int], *, center_radius: float,
            center_limits: CenterLimits, max_sigma: float, shift: float, max_nfev: int) -> dict:
    """Concentric difference of Gaussians + offset fitted to ``image`` (the lab's start and bounds).

    Start: excitatory amplitude ``|image[center] - median|``, inhibitory half of it, sigmas
    ``n/8`` (within [0.5, max_sigma/2]) and twice that (at most ``max_sigma``) for an n-pixel map.
    Bounds: amplitudes >= 0, sigma_exc in [0.3, max_sigma], sigma_inh in [0.5, max_sigma].
    """
    row, col = center
    median = float(np.median(image))
    amp = abs(float(image[row, col]) - median)
    sigma_exc = min(max(0.5, image.shape[0] / 8), max_sigma / 2)
    y_lo, y_hi = _center_bounds(row, center_radius, center_limits[0])
    x_lo, x_hi = _center_bounds(col, center_radius, center_limits[1])
    start = [col, row, sigma_exc, min(2 * sigma_exc, max_sigma), amp, amp / 2, median]
    lower = [x_lo, y_lo, 0.3, 0.5, 0.0, 0.0, -np.inf]
    upper = [x_hi, y_hi, max_sigma, max_sigma, np.inf, np.inf, np.inf]
    params, r_squared, status = _least_squares(difference_of_gaussians, image, start, lower, upper, max_nfev)
    if params is None:
        return empty_fit(DOG_KEYS, status)
    x0, y0, *rest = (float(v) for v in params)
    return {**dict(zip(DOG_KEYS, [x0 - shift, y0 - shift, *rest, r_squared])), "fit_status": status}


def fit_on_off(extreme_map: np.ndarray, *, center_radius: float, center_limits: CenterLimits,
               sigma_start: float, max_sigma: float, shift: float, max_nfev: int) -> dict:
    """Axis-aligned Gaussians fitted separately to the ON part ``max(E, 0)`` and OFF part ``max(-E, 0)``.

    Each part's fit starts at its own argmax with its maximum as amplitude; amplitude >= 0, centre
    within ``center_radius`` of that argmax, sigmas in [0.3, max_sigma]. A part with no positive
    pixel is not fitted. ``fit_status`` is 'ok' when both parts fitted, else names each part's status.
    """
    fit, statuses = {}, []
    for side, part in (("on", np.maximum(extreme_map, 0.0)), ("off", np.maximum(-extreme_map, 0.0))):
        values, status = _fit_part(part, center_radius, center_limits, sigma_start, max_sigma, max_nfev)
        if values is None:
            values = [np.nan] * len(_ON_OFF_FIELDS)
        else:
            values[0] -= shift
            values[1] -= shift
        fit.update({f"{side}_{field}": value for field, value in zip(_ON_OFF_FIELDS, values)})
        statuses.append(f"{side}: {status}")
    both_ok = all(s.endswith(": ok") for s in statuses)
    return {**fit, "fit_status": "ok" if both_ok else "; ".join(statuses)}


def _fit_part(part, center_radius, center_limits, sigma_start, max_sigma, max_nfev):
    peak = float(part.max())
    if not peak > 0:
        return None, "no signal of this polarity"
    row, col = np.unravel_index(int(np.argmax(part)), part.shape)
    y_lo, y_hi = _center_bounds(row, center_radius, center_limits[0])
    x_lo, x_hi = _center_bounds(col, center_radius, center_limits[1])
    start = [col, row, sigma_start, sigma_start, peak, float(np.median(part))]
    lower = [x_lo, y_lo, 0.3, 0.3, 0.0, -np.inf]
    upper = [x_hi, y_hi, max_sigma, max_sigma, np.inf, np.inf]
    params, r_squared, status = _least_squares(axis_aligned_gaussian, part, start, lower, upper, max_nfev)
    if params is None:
        return None, status
    x0, y0, sx, sy, amplitude, _ = (float(v) for v in params)
    return [x0, y0, sx, sy, amplitude, r_squared], status
