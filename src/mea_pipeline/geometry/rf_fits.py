"""rf_geometry's lab fits: rotated 2-D Gaussian and concentric DoG on the peak-to-peak map, ON/OFF Gaussians.

These fill the lab's keys (``gaussian_fit``, ``DoG``, ``ONOFF_model``), so they are the lab's
fits: the same map, model and parameter order, start values, bounds and evaluation budget, solved
the same way (``scipy.optimize.curve_fit`` with bounds: trust-region reflective, two-point
Jacobian). Same inputs give the lab's numbers. Pixel grids are x = column (axis 2), y = row
(axis 1) of the map; centres are returned in the caller's coordinates (grid index minus
``shift``). R² is ``1 - SS_res / SS_tot`` over all pixels (0 for a constant map). Where the lab
drops a failed fit (no group) or writes defaults, we write NaN and a ``fit_status`` saying why.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

GAUSSIAN_KEYS = ("center_x", "center_y", "sigma_x", "sigma_y", "amplitude", "theta", "offset", "r_squared")
DOG_KEYS = ("center_x", "center_y", "sigma_exc", "sigma_inh", "amp_exc", "amp_inh", "offset", "r_squared")
ON_OFF_FIELDS = ("center_x", "center_y", "sigma_x", "sigma_y", "amplitude", "r_squared")
ONOFF_KEYS = tuple(f"{side}_{field}" for side in ("on", "off") for field in ON_OFF_FIELDS)


def empty_fit(keys: tuple[str, ...], fit_status: str) -> dict:
    """The layout of a fit group with NaN values, for a fit that was not made or failed."""
    return {**dict.fromkeys(keys, np.nan), "fit_status": fit_status}


def lab_rotated_gaussian(xy, amplitude, x0, y0, sigma_x, sigma_y, theta, offset):
    """The lab's rotated Gaussian ``offset + A exp(-(a dx² + 2 b dx dy + c dy²))``, raveled.

    ``a = cos² / 2 sx² + sin² / 2 sy²``, ``b = sin 2θ (1 / sy² - 1 / sx²) / 4``,
    ``c = sin² / 2 sx² + cos² / 2 sy²``: the ``sigma_x`` axis points along
    ``(cos θ, -sin θ)`` in (column, row), i.e. ``theta`` turns it from +column toward **-row**
    (counter-clockwise on a screen whose rows grow downward). ``xy`` = (x, y) grids.
    """
    x, y = xy
    cos2, sin2, sin_2t = np.cos(theta) ** 2, np.sin(theta) ** 2, np.sin(2 * theta)
    a = cos2 / (2 * sigma_x ** 2) + sin2 / (2 * sigma_y ** 2)
    b = -sin_2t / (4 * sigma_x ** 2) + sin_2t / (4 * sigma_y ** 2)
    c = sin2 / (2 * sigma_x ** 2) + cos2 / (2 * sigma_y ** 2)
    dx, dy = x - x0, y - y0
    return (offset + amplitude * np.exp(-(a * dx ** 2 + 2 * b * dx * dy + c * dy ** 2))).ravel()


def lab_difference_of_gaussians(xy, amp_exc, amp_inh, x0, y0, sigma_exc, sigma_inh, offset):
    """Concentric ``offset + Ae exp(-r² / 2 se²) - Ai exp(-r² / 2 si²)``, raveled (lab parameter order)."""
    x, y = xy
    r2 = (x - x0) ** 2 + (y - y0) ** 2
    return (offset + amp_exc * np.exp(-r2 / (2 * sigma_exc ** 2)) - amp_inh * np.exp(-r2 / (2 * sigma_inh ** 2))).ravel()


def lab_axis_aligned_gaussian(xy, amplitude, x0, y0, sigma_x, sigma_y, offset):
    """``offset + A exp(-dx² / 2 sx² - dy² / 2 sy²)``, raveled (lab parameter order)."""
    x, y = xy
    return (offset + amplitude * np.exp(-((x - x0) ** 2 / (2 * sigma_x ** 2) + (y - y0) ** 2 / (2 * sigma_y ** 2)))).ravel()


def _curve_fit(model, image: np.ndarray, start, lower, upper, max_nfev: int):
    """``curve_fit`` of ``model`` to ``image`` as the lab calls it: (params, r_squared, fit_status)."""
    y, x = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            params, _ = curve_fit(model, (x, y), image.ravel(), p0=start, bounds=(lower, upper), maxfev=max_nfev)
    except RuntimeError:
        return None, np.nan, f"failed: no convergence within maxfev={max_nfev} evaluations"
    except (ValueError, np.linalg.LinAlgError) as exc:
        return None, np.nan, f"failed: {exc}"
    residual = image - model((x, y), *params).reshape(image.shape)
    total = float(np.sum((image - image.mean()) ** 2))
    return params, (1.0 - float(np.sum(residual ** 2)) / total if total > 0 else 0.0), "ok"


def _center_box(center: tuple[int, int], radius: float, shape: tuple[int, int]):
    """The lab's centre bounds: ``radius`` around ``center`` within [0, rows] x [0, cols] (ends included)."""
    row, col = center
    return (max(0, col - radius), max(0, row - radius)), (min(shape[1], col + radius), min(shape[0], row + radius))


def fit_gaussian(peak_to_peak: np.ndarray, center: tuple[int, int], *, center_radius: float, max_sigma: float,
                 shift: float, max_nfev: int) -> dict:
    """The lab's rotated Gaussian fitted to the peak-to-peak map (``gaussian_fit``).

    Start: amplitude ``M[center] - median(M)``, offset ``median(M)``, both sigmas
    ``min(max(1, min(rows, cols) / 6), max_sigma)``, theta 0. Bounds: centre within
    ``center_radius`` of ``center`` (row, col), sigmas in [0.5, ``max_sigma``], theta in
    [-pi, pi], amplitude and offset free. ``sigma_x``/``sigma_y`` are reported in the fit's own
    order (not sorted) with ``theta`` as fitted, in the convention of :func:`lab_rotated_gaussian`.
    """
    rows, cols = peak_to_peak.shape
    (x_lo, y_lo), (x_hi, y_hi) = _center_box(center, center_radius, peak_to_peak.shape)
    median = float(np.median(peak_to_peak))
    sigma = min(max(1.0, min(rows, cols) / 6), max_sigma)
    start = [peak_to_peak[center] - median, center[1], center[0], sigma, sigma, 0.0, median]
    lower = [-np.inf, x_lo, y_lo, 0.5, 0.5, -np.pi, -np.inf]
    upper = [np.inf, x_hi, y_hi, max_sigma, max_sigma, np.pi, np.inf]
    params, r_squared, status = _curve_fit(lab_rotated_gaussian, peak_to_peak, start, lower, upper, max_nfev)
    if params is None:
        return empty_fit(GAUSSIAN_KEYS, status)
    amplitude, x0, y0, sigma_x, sigma_y, theta, offset = (float(v) for v in params)
    return {"center_x": x0 - shift, "center_y": y0 - shift, "sigma_x": abs(sigma_x), "sigma_y": abs(sigma_y),
            "amplitude": amplitude, "theta": theta, "offset": offset, "r_squared": r_squared, "fit_status": status}


def fit_dog(peak_to_peak: np.ndarray, center: tuple[int, int], *, center_radius: float, max_sigma: float,
            shift: float, max_nfev: int) -> dict:
    """The lab's concentric difference of Gaussians fitted to the peak-to-peak map (``DoG``).

    Start: ``Ae = |M[center] - median(M)|``, ``Ai = Ae / 2``, ``se = min(max(0.5, min(rows, cols) / 8),
    max_sigma / 2)``, ``si = min(2 se, max_sigma)``, offset the median. Bounds: amplitudes >= 0,
    centre within ``center_radius``, se in [0.3, max_sigma], si in [0.5, max_sigma].
    """
    rows, cols = peak_to_peak.shape
    (x_lo, y_lo), (x_hi, y_hi) = _center_box(center, center_radius, peak_to_peak.shape)
    median = float(np.median(peak_to_peak))
    amp = abs(float(peak_to_peak[center]) - median)
    sigma_exc = min(max(0.5, min(rows, cols) / 8), max_sigma * 0.5)
    start = [amp, amp * 0.5, center[1], center[0], sigma_exc, min(2 * sigma_exc, max_sigma), median]
    lower = [0.0, 0.0, x_lo, y_lo, 0.3, 0.5, -np.inf]
    upper = [np.inf, np.inf, x_hi, y_hi, max_sigma, max_sigma, np.inf]
    params, r_squared, status = _curve_fit(lab_difference_of_gaussians, peak_to_peak, start, lower, upper, max_nfev)
    if params is None:
        return empty_fit(DOG_KEYS, status)
    amp_exc, amp_inh, x0, y0, sigma_exc, sigma_inh, offset = (float(v) for v in params)
    return {"center_x": x0 - shift, "center_y": y0 - shift, "sigma_exc": abs(sigma_exc), "sigma_inh": abs(sigma_inh),
            "amp_exc": amp_exc, "amp_inh": amp_inh, "offset": offset, "r_squared": r_squared, "fit_status": status}


def fit_on_off(extreme_map: np.ndarray, *, center_radius: float, max_sigma: float, shift: float,
               max_nfev: int) -> dict:
    """The lab's axis-aligned Gaussians on the ON part ``max(E, 0)`` and OFF part ``max(-E, 0)`` (``ONOFF_model``).

    Each part starts at its own argmax with its maximum as amplitude, offset 0 and sigmas
    ``min(max(0.5, min(rows, cols) / 6), max_sigma)``; amplitude >= 0, centre within
    ``center_radius`` of that argmax, sigmas in [0.3, max_sigma]. A part with no positive pixel
    or a failed fit is NaN (the lab writes sigma 0 and the RF centre); ``fit_status`` is 'ok'
    when both parts fitted, else names each part's status.
    """
    fit, statuses = {}, []
    for side, part in (("on", np.clip(extreme_map, 0, None)), ("off", np.clip(-extreme_map, 0, None))):
        values, status = _fit_part(part, center_radius, max_sigma, shift, max_nfev)
        fit.update({f"{side}_{field}": value for field, value in zip(ON_OFF_FIELDS, values)})
        statuses.append(f"{side}: {status}")
    both_ok = all(s.endswith(": ok") for s in statuses)
    return {**fit, "fit_status": "ok" if both_ok else "; ".join(statuses)}


def _fit_part(part: np.ndarray, center_radius: float, max_sigma: float, shift: float, max_nfev: int):
    if not np.max(part) > 0:
        return [np.nan] * len(ON_OFF_FIELDS), "no signal of this polarity"
    rows, cols = part.shape
    peak = np.unravel_index(int(np.argmax(part)), part.shape)
    (x_lo, y_lo), (x_hi, y_hi) = _center_box(peak, center_radius, part.shape)
    sigma = min(max(0.5, min(rows, cols) / 6), max_sigma)
    start = [part[peak], peak[1], peak[0], sigma, sigma, 0.0]
    lower = [0.0, x_lo, y_lo, 0.3, 0.3, -np.inf]
    upper = [np.inf, x_hi, y_hi, max_sigma, max_sigma, np.inf]
    params, r_squared, status = _curve_fit(lab_axis_aligned_gaussian, part, start, lower, upper, max_nfev)
    if params is None:
        return [np.nan] * len(ON_OFF_FIELDS), status
    amplitude, x0, y0, sigma_x, sigma_y, _ = (float(v) for v in params)
    return [x0 - shift, y0 - shift, abs(sigma_x), abs(sigma_y), amplitude, r_squared], status
