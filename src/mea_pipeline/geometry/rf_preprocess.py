"""rf_geometry preprocessing: the lab's filtered STA and the maps the receptive-field fits work on."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, gaussian_filter1d

from .maps import savgol_smooth


def preprocess_sta(centered: np.ndarray, *, padding: int, spatial_sigma: float, sigma_t: float) -> np.ndarray:
    """The lab's preprocessed STA: zero-padded, blurred in space, smoothed in time.

    ``centered`` is the baseline-removed STA (t, rows, cols). It is zero-padded by ``padding``
    pixels on each spatial side, every frame is blurred by a 2-D Gaussian of ``spatial_sigma``
    pixels (reflect edges) and every pixel's trace by a Gaussian of ``sigma_t`` frames (nearest
    edges). Returns float64 (t, rows + 2 padding, cols + 2 padding).
    """
    padded = np.pad(centered, ((0, 0), (padding, padding), (padding, padding)))
    blurred = gaussian_filter(padded, (0.0, spatial_sigma, spatial_sigma))
    return gaussian_filter1d(blurred, sigma_t, axis=0, mode="nearest")


def signed_extreme_map(preprocessed: np.ndarray, savgol_window: int, savgol_order: int) -> np.ndarray:
    """Per pixel, the Savitzky-Golay smoothed trace's peak if larger in size than its trough, else the trough."""
    smooth = savgol_smooth(preprocessed, savgol_window, savgol_order)
    peak, trough = smooth.max(axis=0), smooth.min(axis=0)
    return np.where(np.abs(peak) > np.abs(trough), peak, trough)


def peak_frame(preprocessed: np.ndarray) -> int:
    """Frame at which the largest absolute preprocessed value occurs."""
    return int(np.argmax(np.abs(preprocessed).max(axis=(1, 2))))


def spatial_profile(centered: np.ndarray, time_course: np.ndarray) -> np.ndarray:
    """Unblurred spatial RF, denoised by projecting every pixel's trace on ``time_course``.

    For a space-time separable STA ``S(x) k(t)`` and a time course ``c k(t)`` (the preprocessed
    trace at the RF centre), the least-squares weight of each pixel on the time course, scaled by
    the time course's largest absolute value, is ``S(x) k(t_peak)``: the baseline-removed map at
    the time course's peak frame, with the noise of all frames averaged down. Its units are those
    of the STA; the sign at the centre is the sign of the time course's main lobe. Returns zeros
    when the time course is zero.
    """
    norm = float(time_course @ time_course)
    if not norm > 0:
        return np.zeros(centered.shape[1:])
    peak_value = time_course[np.argmax(np.abs(time_course))]
    return np.tensordot(time_course, centered, axes=(0, 0)) * (peak_value / norm)
