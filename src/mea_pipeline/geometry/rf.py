"""rf_geometry maths: receptive-field centre, size and model fits of one unit from its dense-noise STA."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .maps import (SIZE_KEYS, argmax_center, frame_range_diff, peak_to_peak_map, remove_baseline,
                   threshold_size, varies_in_time)
from .rf_fits import DOG_KEYS, GAUSSIAN_KEYS, ONOFF_KEYS, empty_fit, fit_dog, fit_gaussian, fit_on_off
from .rf_preprocess import peak_frame, preprocess_sta, signed_extreme_map, spatial_profile
from .rf_unblurred import UNBLURRED_KEYS, fit_unblurred_gaussian

# Shape of the NaN arrays reported for a unit that has no STA at all.
DEFAULT_STA_SHAPE = (60, 15, 15)


@dataclass(frozen=True)
class RfGeometryParams:
    """Every constant of rf_geometry, with the lab's values where the lab has one.

    Attributes
    ----------
    frame_range : tuple[int, int]
        Size: STA frames (inclusive, clipped; the STA's last frame is the one just before the
        spike, 59 by default) whose max - min is thresholded: the RF's own range, where the lab's
        unified pipeline passed the soma's (10, 14).
    threshold_fraction : float
        Size: the region is where the smoothed map exceeds this fraction of its maximum.
    baseline_frames : int
        Each pixel's mean over the first this many frames is removed.
    sigma_t : float
        Sigma (frames) of the temporal Gaussian smoothing.
    savgol_window : int
        Window length (frames) of the Savitzky-Golay smoothing of every trace before its
        max - min is taken.
    savgol_order : int
        Polynomial order of that Savitzky-Golay smoothing.
    padding : int
        Zero padding (checkers) around the STA before the spatial blur and the fits.
    spatial_sigma : float
        Sigma (checkers) of the 2-D Gaussian blur of every frame.
    size_sigma : float
        Sigma (checkers) of the smoothing of the size map.
    center_fit_radius : float
        Half-width (checkers) of the box the fitted centres are bounded to.
    max_sigma : float
        Upper bound (checkers) of every fitted sigma.
    gaussian_max_nfev : int
        Evaluation budget (curve_fit maxfev) of the lab's rotated Gaussian fit (``gaussian_fit``);
        a fit that has not converged by then is reported as failed.
    dog_max_nfev : int
        Evaluation budget of the lab's difference-of-Gaussians fit (``DoG``).
    on_off_max_nfev : int
        Evaluation budget of each of the lab's ON and OFF Gaussian fits (``ONOFF_model``).
    unblurred_sigma_start : float
        Our fit of the unblurred map (``gaussian_fit_unblurred``): start sigma (checkers);
        synthetic and typical ganglion-cell centres are about one checker.
    unblurred_min_sigma : float
        Lower sigma bound (checkers) of that fit: below 0.5 checker a sampled Gaussian is one pixel.
    unblurred_max_nfev : int
        Evaluation budget of that fit.
    lnl_fitting : bool
        Whether the LN model is fitted (:func:`mea_pipeline.geometry.lnl.lnl_fit`).
    lnl_bins : int
        Bins of the LN model's histogram nonlinearity.
    lnl_min_spikes : int
        Spikes in the valid frame range below which the LN model is not fitted.
    """

    frame_range: tuple[int, int] = (40, 60)
    threshold_fraction: float = 0.5
    baseline_frames: int = 10
    sigma_t: float = 2.0
    savgol_window: int = 7
    savgol_order: int = 3
    padding: int = 5
    spatial_sigma: float = 1.5
    size_sigma: float = 0.5
    center_fit_radius: float = 5.0
    max_sigma: float = 7.5
    gaussian_max_nfev: int = 5000
    dog_max_nfev: int = 5000
    on_off_max_nfev: int = 3000
    unblurred_sigma_start: float = 1.5
    unblurred_min_sigma: float = 0.5
    unblurred_max_nfev: int = 2000
    lnl_fitting: bool = True
    lnl_bins: int = 50
    lnl_min_spikes: int = 10


def rf_geometry(sta: np.ndarray | None, params: RfGeometryParams = RfGeometryParams()) -> dict:
    """Receptive-field geometry of one unit: the lab's keys, and our unblurred Gaussian beside them.

    Preprocessing (lab): NaN -> 0, per-pixel baseline (mean of the first ``baseline_frames``
    frames) removed, zero padding of ``padding`` checkers, 2-D Gaussian blur ``spatial_sigma``,
    temporal Gaussian ``sigma_t`` frames. On that padded array: M = max - min of every pixel's
    Savitzky-Golay (``savgol_window``, ``savgol_order``) smoothed trace; centre = argmax of M;
    size = threshold region of max - min over STA frames ``frame_range`` (inclusive, clipped; the
    RF's own range where the lab's unified pipeline passed the soma's (10, 14)) smoothed by
    ``size_sigma``; ``peak_frame`` = frame of the largest absolute value.

    Fits (:mod:`~mea_pipeline.geometry.rf_fits`, the lab's, solved as the lab solves them):
    ``gaussian_fit`` (rotated Gaussian on M, budget ``gaussian_max_nfev``; lab theta
    convention, sigmas in the fit's order), ``DoG`` (on M, ``dog_max_nfev``), ``ONOFF_model``
    (on the signed extreme map, ``on_off_max_nfev``). Their sigmas include the blur.
    ``gaussian_fit_unblurred`` (:mod:`~mea_pipeline.geometry.rf_unblurred`, ours): the RF's own
    sigmas, from the unblurred map, start sigma ``unblurred_sigma_start``, sigmas in
    [``unblurred_min_sigma``, ``max_sigma``], budget ``unblurred_max_nfev``.

    Parameters
    ----------
    sta : ndarray (frames, rows, cols) or None
        Dense-noise STA, last frame = the one just before the spike; None when the unit has none.
    params : RfGeometryParams
        The constants named above are its fields.

    Returns
    -------
    dict
        ``center_row``, ``center_col``, ``size_x`` (columns), ``size_y`` (rows), ``area``,
        ``equivalent_diameter`` (checkers), ``peak_frame`` (int, -1 if none), ``diff_map``
        (rows, cols) = M without padding, ``sta_time_course`` (frames,) = preprocessed trace at
        the rounded ``gaussian_fit`` centre (NaN if that fit failed), ``status`` ('ok',
        'no_sta' or 'flat_sta'), ``reason``, and the groups ``gaussian_fit``,
        ``gaussian_fit_unblurred``, ``DoG``, ``ONOFF_model``, each with a ``fit_status``. All
        centres are in checker units of the unpadded grid (``center_x`` = column, ``center_y`` =
        row). Every key is always present: values not computed are NaN, never a sentinel.
    """
    if sta is None:
        return _not_computed(DEFAULT_STA_SHAPE, "no_sta", "the unit has no dense-noise STA")
    sta = np.asarray(sta)
    if sta.ndim != 3:
        raise InputError(f"dense-noise STA must be a (frames, rows, cols) array, got shape {sta.shape}")
    if not np.isfinite(sta).any():
        return _not_computed(sta.shape, "no_sta", "the STA is all NaN (the unit had no valid spike)")
    if not varies_in_time(sta):
        return _not_computed(sta.shape, "flat_sta", "the STA is flat (no checker varies in time)")

    p = params
    centered = remove_baseline(sta, p.baseline_frames)
    preprocessed = preprocess_sta(centered, padding=p.padding, spatial_sigma=p.spatial_sigma, sigma_t=p.sigma_t)
    peak_to_peak = peak_to_peak_map(preprocessed, p.savgol_window, p.savgol_order)
    center = argmax_center(peak_to_peak)
    size = threshold_size(frame_range_diff(preprocessed, p.frame_range), center, p.size_sigma, p.threshold_fraction)

    gaussian = fit_gaussian(peak_to_peak, center, center_radius=p.center_fit_radius, max_sigma=p.max_sigma,
                            shift=p.padding, max_nfev=p.gaussian_max_nfev)
    dog = fit_dog(peak_to_peak, center, center_radius=p.center_fit_radius, max_sigma=p.max_sigma, shift=p.padding,
                  max_nfev=p.dog_max_nfev)
    on_off = fit_on_off(signed_extreme_map(preprocessed, p.savgol_window, p.savgol_order),
                        center_radius=p.center_fit_radius, max_sigma=p.max_sigma, shift=p.padding,
                        max_nfev=p.on_off_max_nfev)
    profile = spatial_profile(centered, preprocessed[:, center[0], center[1]])
    unpadded_center = (int(np.clip(center[0] - p.padding, 0, sta.shape[1] - 1)),
                       int(np.clip(center[1] - p.padding, 0, sta.shape[2] - 1)))
    unblurred = fit_unblurred_gaussian(
        profile, unpadded_center, center_radius=p.center_fit_radius,
        center_limits=tuple((-float(p.padding), float(n - 1 + p.padding)) for n in sta.shape[1:]),
        sigma_start=p.unblurred_sigma_start, sigma_bounds=(p.unblurred_min_sigma, p.max_sigma),
        max_nfev=p.unblurred_max_nfev)

    inner = (slice(p.padding, p.padding + sta.shape[1]), slice(p.padding, p.padding + sta.shape[2]))
    return {
        "center_row": float(center[0] - p.padding), "center_col": float(center[1] - p.padding), **size,
        "peak_frame": peak_frame(preprocessed), "diff_map": peak_to_peak[inner],
        "sta_time_course": _time_course_at_fit(preprocessed, gaussian, p.padding),
        "status": "ok", "reason": "", "gaussian_fit": gaussian, "gaussian_fit_unblurred": unblurred, "DoG": dog,
        "ONOFF_model": on_off,
    }


def _time_course_at_fit(preprocessed: np.ndarray, gaussian: dict, padding: int) -> np.ndarray:
    """The lab's ``sta_time_course``: the preprocessed trace at the rounded Gaussian centre (padded grid, clamped)."""
    if gaussian["fit_status"] != "ok":
        return np.full(preprocessed.shape[0], np.nan)
    row = min(max(int(round(gaussian["center_y"] + padding)), 0), preprocessed.shape[1] - 1)
    col = min(max(int(round(gaussian["center_x"] + padding)), 0), preprocessed.shape[2] - 1)
    return preprocessed[:, row, col].copy()


def _not_computed(shape: tuple[int, ...], status: str, reason: str) -> dict:
    return {
        "center_row": np.nan, "center_col": np.nan, **dict.fromkeys(SIZE_KEYS, np.nan), "peak_frame": -1,
        "diff_map": np.full(shape[1:], np.nan), "sta_time_course": np.full(shape[0], np.nan),
        "status": status, "reason": reason, "gaussian_fit": empty_fit(GAUSSIAN_KEYS, status),
        "gaussian_fit_unblurred": empty_fit(UNBLURRED_KEYS, status),
        "DoG": empty_fit(DOG_KEYS, status), "ONOFF_model": empty_fit(ONOFF_KEYS, status),
    }
