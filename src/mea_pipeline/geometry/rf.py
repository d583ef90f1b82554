"""Step 7 maths: receptive-field centre, size and model fits of one unit from its dense-noise STA."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .maps import (SIZE_KEYS, argmax_center, frame_range_diff, peak_to_peak_map, remove_baseline,
                   threshold_size, varies_in_time)
from .rf_fits import (DOG_KEYS, GAUSSIAN_KEYS, ONOFF_KEYS, empty_fit, fit_dog, fit_on_off,
                      fit_rotated_gaussian)
from .rf_preprocess import peak_frame, preprocess_sta, signed_extreme_map, spatial_profile, time_course_at

# Shape of the NaN arrays reported for a unit that has no STA at all.
DEFAULT_STA_SHAPE = (60, 15, 15)
# Start sigma (checkers) of the Gaussian fit on the unblurred map: the synthetic and typical
# ganglion-cell centres are about one checker. Below 0.5 checker a sampled Gaussian is one pixel.
UNBLURRED_SIGMA_START = 1.5
UNBLURRED_MIN_SIGMA = 0.5


def rf_geometry(sta: np.ndarray | None, *, frame_range: tuple[int, int] = (40, 60),
                threshold_fraction: float = 0.5, baseline_frames: int = 10, sigma_t: float = 2.0,
                savgol_window: int = 7, savgol_order: int = 3, padding: int = 5, spatial_sigma: float = 1.5,
                size_sigma: float = 0.5, center_fit_radius: float = 5.0, max_sigma: float = 7.5,
                max_nfev: int = 2000) -> dict:
    """Receptive-field geometry of one unit (the lab's method, with the project's decisions).

    Preprocessing (lab): NaN -> 0, per-pixel baseline (mean of the first ``baseline_frames``
    frames) removed, zero padding of ``padding`` checkers, 2-D Gaussian blur ``spatial_sigma``,
    temporal Gaussian ``sigma_t`` frames. On that padded array: centre = argmax of the
    Savitzky-Golay peak-to-peak map M; size = threshold region of max - min over STA frames
    ``frame_range`` (inclusive, clipped; the RF's own range, not the soma's) smoothed by
    ``size_sigma``; ``peak_frame`` = frame of the largest absolute value.

    Fits (bounded least squares, at most ``max_nfev`` evaluations each):

    * ``gaussian_fit``: rotated Gaussian + offset on the **unblurred** spatial RF, i.e. the
      baseline-removed STA projected on the preprocessed time course at the centre (see
      :func:`~mea_pipeline.geometry.rf_preprocess.spatial_profile`), which is the map at the
      time course's peak frame with the noise of all frames averaged down. Its ``sigma_x``,
      ``sigma_y`` are therefore those of the RF itself, comparable with a true RF sigma; fitting
      the lab's blurred map M instead would add ``spatial_sigma`` in quadrature
      (``sigma_M² = sigma² + 1.5²``), and undoing that analytically amplifies small errors
      several-fold for one-checker RFs. A centre-only Gaussian RF is recovered exactly; for a
      centre-surround RF the single Gaussian gives part of its width to the surround (with the
      synthetic cells' surround, twice the centre sigma at weight 0.35: 7-15 % smaller than the
      centre sigma). ``amplitude`` is in STA units and carries the polarity of the time
      course's main lobe. Sigmas lie in [0.5, ``max_sigma``] and are reported with ``sigma_x``
      the major axis and ``theta`` its angle from +column toward +row, in [-pi/2, pi/2).
    * ``DoG``: concentric difference of Gaussians on M (lab); its sigmas include the blur.
    * ``ONOFF_model``: axis-aligned Gaussians on the ON and OFF parts of the signed extreme map
      of the preprocessed STA (lab); their sigmas include the blur. An ON-centre unit has the
      larger ``on_amplitude``.

    Parameters
    ----------
    sta : ndarray (frames, rows, cols) or None
        Dense-noise STA, last frame = the one just before the spike; None when the unit has none.

    Returns
    -------
    dict
        ``center_row``, ``center_col``, ``size_x`` (columns), ``size_y`` (rows), ``area``,
        ``equivalent_diameter`` (checkers), ``peak_frame`` (int, -1 if none), ``diff_map``
        (rows, cols) = M without padding, ``sta_time_course`` (frames,) = preprocessed trace at
        the rounded Gaussian centre (NaN if that fit failed), ``status`` ('ok', 'no_sta' or
        'flat_sta'), ``reason``, and the groups ``gaussian_fit``, ``DoG``, ``ONOFF_model``, each
        with a ``fit_status``. All centres are in checker units of the unpadded grid
        (``center_x`` = column, ``center_y`` = row). Every key is always present: values not
        computed are NaN, never a sentinel.
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

    centered = remove_baseline(sta, baseline_frames)
    preprocessed = preprocess_sta(centered, padding=padding, spatial_sigma=spatial_sigma, sigma_t=sigma_t)
    peak_to_peak = peak_to_peak_map(preprocessed, savgol_window, savgol_order)
    center = argmax_center(peak_to_peak)
    size = threshold_size(frame_range_diff(preprocessed, frame_range), center, size_sigma, threshold_fraction)

    padded_limits = tuple((0.0, float(n - 1)) for n in preprocessed.shape[1:])
    lab_sigma_start = min(max(1.0, max(preprocessed.shape[1:]) / 6), max_sigma)
    profile = spatial_profile(centered, preprocessed[:, center[0], center[1]])
    unpadded_center = (int(np.clip(center[0] - padding, 0, sta.shape[1] - 1)),
                       int(np.clip(center[1] - padding, 0, sta.shape[2] - 1)))
    gaussian = fit_rotated_gaussian(
        profile, unpadded_center, center_radius=center_fit_radius,
        center_limits=tuple((-float(padding), float(n - 1 + padding)) for n in sta.shape[1:]),
        sigma_start=UNBLURRED_SIGMA_START, sigma_bounds=(UNBLURRED_MIN_SIGMA, max_sigma), shift=0.0,
        max_nfev=max_nfev)
    dog = fit_dog(peak_to_peak, center, center_radius=center_fit_radius, center_limits=padded_limits,
                  max_sigma=max_sigma, shift=padding, max_nfev=max_nfev)
    on_off = fit_on_off(signed_extreme_map(preprocessed, savgol_window, savgol_order),
                        center_radius=center_fit_radius, center_limits=padded_limits,
                        sigma_start=lab_sigma_start, max_sigma=max_sigma, shift=padding, max_nfev=max_nfev)

    if gaussian["fit_status"] == "ok":
        time_course = time_course_at(preprocessed, gaussian["center_y"], gaussian["center_x"], padding)
    else:
        time_course = np.full(sta.shape[0], np.nan)
    inner = (slice(padding, padding + sta.shape[1]), slice(padding, padding + sta.shape[2]))
    return {
        "center_row": float(center[0] - padding), "center_col": float(center[1] - padding), **size,
        "peak_frame": peak_frame(preprocessed), "diff_map": peak_to_peak[inner], "sta_time_course": time_course,
        "status": "ok", "reason": "", "gaussian_fit": gaussian, "DoG": dog, "ONOFF_model": on_off,
    }


def _not_computed(shape: tuple[int, ...], status: str, reason: str) -> dict:
    return {
        "center_row": np.nan, "center_col": np.nan, **dict.fromkeys(SIZE_KEYS, np.nan), "peak_frame": -1,
        "diff_map": np.full(shape[1:], np.nan), "sta_time_course": np.full(shape[0], np.nan),
        "status": status, "reason": reason, "gaussian_fit": empty_fit(GAUSSIAN_KEYS, status),
        "DoG": empty_fit(DOG_KEYS, status), "ONOFF_model": empty_fit(ONOFF_KEYS, status),
    }
