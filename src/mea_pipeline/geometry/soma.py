"""soma_geometry maths: soma centre, extent and area of one unit from its electrical image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..errors import InputError
from .maps import (SIZE_KEYS, argmax_center, frame_range_diff, peak_to_peak_map, remove_baseline,
                   threshold_size, varies_in_time)

SOMA_GEOMETRY_KEYS = ("center_row", "center_col", *SIZE_KEYS, "center_row_subpixel", "center_col_subpixel")


@dataclass(frozen=True)
class SomaGeometryParams:
    """Every constant of soma_geometry, with the lab's values (``ap_sta.py``: ``TemporalConfig``, ``GeometryConfig``).

    Attributes
    ----------
    baseline_frames : int
        Centre: each electrode's mean over its first this many samples is removed.
    sigma_t : float
        Centre: sigma (samples) of the Gaussian smoothing along time (nearest edges).
    savgol_window : int
        Centre: window length (samples) of the Savitzky-Golay smoothing of every trace before
        its max - min is taken.
    savgol_order : int
        Centre: polynomial order of that Savitzky-Golay smoothing.
    frame_range : tuple[int, int]
        Size: samples (inclusive; the spike is at 10) whose max - min is ``diff_map``.
    threshold_fraction : float
        Size: the footprint is where the smoothed ``diff_map`` exceeds this fraction of its maximum.
    size_sigma : float
        Size: sigma (electrodes) of the 2-D Gaussian smoothing of ``diff_map``.
    subpixel_radius : int
        Sub-electrode centre: half-width (electrodes) of the square around the centre it is taken in.
    """

    baseline_frames: int = 5
    sigma_t: float = 2.0
    savgol_window: int = 7
    savgol_order: int = 3
    frame_range: tuple[int, int] = (10, 14)
    threshold_fraction: float = 0.5
    size_sigma: float = 1.0
    subpixel_radius: int = 2


def soma_geometry(eimage: np.ndarray, params: SomaGeometryParams = SomaGeometryParams()) -> dict:
    """Soma centre and footprint of one unit from its eimage_sta (the lab's MaxMin method).

    Centre: NaN -> 0, per-electrode baseline (mean of the first ``baseline_frames`` samples)
    removed, Gaussian smoothing along time (``sigma_t`` samples, nearest edges), Savitzky-Golay
    smoothing (``savgol_window``, ``savgol_order``) of every trace at once, then the argmax of the
    peak-to-peak map. Size: on the raw eimage, max - min over samples ``frame_range`` (inclusive),
    measured by :func:`~mea_pipeline.geometry.maps.threshold_size` around the centre. The names
    are the fields of ``params``.

    The sub-electrode centre is the centre of mass of the trough depth
    ``max(0, -min over time)`` of the baseline-removed (unsmoothed) traces, less its median over
    the array (the noise floor of the minimum, which would otherwise pull the estimate toward the
    middle of the window), inside the square of half-width ``subpixel_radius`` electrodes around
    the integer centre (clipped at the array edge). It equals the integer centre when that
    square holds no depth above the floor.

    Parameters
    ----------
    eimage : ndarray (t, rows, cols)
        Mean high-passed sensor signal around the unit's spikes (axis 1 = row, axis 2 = column).
    params : SomaGeometryParams

    Returns
    -------
    dict
        ``center_row``, ``center_col`` (integer-valued floats), ``size_x`` (extent along axis 2),
        ``size_y`` (along axis 1), ``area`` (electrodes²), ``equivalent_diameter`` (electrodes),
        ``center_row_subpixel``, ``center_col_subpixel`` (floats), ``diff_map`` (float64
        (rows, cols), unsmoothed frame-range max - min), ``status`` ('ok' or 'no_data') and
        ``reason`` ('' when ok). A unit with an all-NaN or signal-free eimage gets NaN for every
        number and for ``diff_map``, never (0, 0).
    """
    eimage = np.asarray(eimage)
    if eimage.ndim != 3:
        raise InputError(f"eimage_sta must be a (time, rows, cols) array, got shape {eimage.shape}")
    if not np.isfinite(eimage).any():
        return _no_data(eimage.shape[1:], "eimage_sta is all NaN (the unit had no usable spike)")
    if not varies_in_time(eimage):
        return _no_data(eimage.shape[1:], "eimage_sta is flat (no electrode trace varies in time)")
    p = params
    centered = remove_baseline(eimage, p.baseline_frames)
    smooth = gaussian_filter1d(centered, p.sigma_t, axis=0, mode="nearest")
    peak_to_peak = peak_to_peak_map(smooth, p.savgol_window, p.savgol_order)
    center = argmax_center(peak_to_peak)
    diff_map = frame_range_diff(eimage, p.frame_range)
    subpixel = _trough_centre_of_mass(centered, center, p.subpixel_radius)
    return {
        "center_row": float(center[0]), "center_col": float(center[1]),
        **threshold_size(diff_map, center, p.size_sigma, p.threshold_fraction),
        "center_row_subpixel": subpixel[0], "center_col_subpixel": subpixel[1],
        "diff_map": diff_map, "status": "ok", "reason": "",
    }


def _trough_centre_of_mass(centered: np.ndarray, center: tuple[int, int], radius: int) -> tuple[float, float]:
    depth = np.maximum(0.0, -centered.min(axis=0))
    weight = np.maximum(0.0, depth - np.median(depth))
    rows = slice(max(center[0] - radius, 0), center[0] + radius + 1)
    cols = slice(max(center[1] - radius, 0), center[1] + radius + 1)
    window = weight[rows, cols]
    total = window.sum()
    if not total > 0:
        return float(center[0]), float(center[1])
    row_index = np.arange(rows.start, rows.start + window.shape[0])
    col_index = np.arange(cols.start, cols.start + window.shape[1])
    return (float(window.sum(axis=1) @ row_index / total), float(window.sum(axis=0) @ col_index / total))


def _no_data(shape: tuple[int, ...], reason: str) -> dict:
    return {**dict.fromkeys(SOMA_GEOMETRY_KEYS, np.nan), "diff_map": np.full(shape, np.nan),
            "status": "no_data", "reason": reason}
