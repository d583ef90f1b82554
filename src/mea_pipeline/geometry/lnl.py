"""rf_geometry's LN model: generator signal from the STA, histogram nonlinearity, exponential Poisson fit."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import minimize

from ..errors import InputError

LNL_FLOAT_KEYS = ("a", "b", "a_norm", "log_likelihood", "null_log_likelihood", "bits_per_spike", "r_squared",
                  "rectification_index", "nonlinearity_index", "threshold_g")
# Frames of the movie turned into float64 at a time: bounds memory for a long memmapped movie.
CHUNK_FRAMES = 4096
LOG_RATE_LIMIT = 20.0
SLOPE_BOUNDS = (-10.0, 10.0)
INTERCEPT_BOUNDS = (-20.0, 20.0)


def lnl_fit(sta: np.ndarray, movie: np.ndarray, spike_frames: np.ndarray, *, frames_before: int,
            frame_period_s: float, n_bins: int, min_spikes: int) -> dict:
    """Linear-nonlinear Poisson model of one unit under the dense noise (the lab's LN fit).

    The generator signal of movie frame ``t`` (for ``frames_before <= t < n_frames``) is
    ``g_t = sum_k (sta[k] - mean(sta)) . (movie[t - frames_before + k] - mean(movie))``, the
    alignment of the STA (``sta[-1]`` = frame just before the spike frame). Spikes are counted
    per frame. The nonlinearity is the spike-count histogram over ``n_bins`` bins of g (range
    widened by 1 % each side) divided by the frame histogram and by ``frame_period_s``,
    Gaussian-smoothed by one bin. The model ``rate = exp(b_z + a_z z)`` on z-scored g is fitted by
    Poisson maximum likelihood (L-BFGS-B, a_z in [-10, 10], b_z in [-20, 20], log rate clipped to
    +-20) and transformed back to raw g (``a = a_z / std(g)``, ``b = b_z - a_z mean(g) / std(g)``);
    ``a_norm = a_z``. Rates are per second of the frames actually binned (``frame_period_s``, the
    display frame): the lab divides by 1/15 s while binning display frames, so its ``b``,
    ``rate_vs_g`` and log-likelihoods are off by that factor (log 4 at 60 Hz).

    Parameters
    ----------
    sta : ndarray (frames_before, rows, cols)
        The unit's dense-noise STA.
    movie : ndarray (n_frames, rows, cols)
        The noise movie (uint8 or float; may be a memmap, it is read in chunks).
    spike_frames : ndarray of int
        Movie frame on screen at each spike (movie-relative).
    frames_before : int
        STA frames (the STA's length; the first ``frames_before`` movie frames have no full window).
    frame_period_s : float
        Duration of one movie frame (s).
    n_bins : int
        Bins of the histogram nonlinearity.
    min_spikes : int
        Spikes in the valid frame range below which the model is not fitted.

    Returns
    -------
    dict
        ``a``, ``b`` (log Hz at g = 0), ``a_norm``, ``log_likelihood`` and
        ``null_log_likelihood`` (the lab's form ``sum(y log rate - rate dt)`` for the model and
        for a constant rate), ``bits_per_spike`` (their difference per spike in bits),
        ``r_squared`` (squared correlation of per-frame counts with ``exp(b + a g)``), the
        curve's shape metrics (:func:`nonlinearity_shape`: ``rectification_index``,
        ``nonlinearity_index``, ``threshold_g``), ``n_frames`` and ``n_spikes`` (frames and
        spikes in the valid range), ``g_bin_centers`` (raw g) and ``rate_vs_g`` (Hz) float32
        (n_bins,), and ``fit_status`` ('ok', 'no_sta', 'flat_sta', 'too few spikes: ...' or
        'failed: ...'; NaN values unless 'ok').
    """
    sta, movie, frame_period_s = _checked(sta, movie, frame_period_s, frames_before)
    n_frames = max(movie.shape[0] - frames_before, 0)
    frames = np.asarray(spike_frames, dtype=np.int64)
    frames = frames[(frames >= frames_before) & (frames < movie.shape[0])]
    counts = np.bincount(frames - frames_before, minlength=n_frames).astype(np.float64)
    n_spikes = int(counts.sum())

    def not_fitted(status: str) -> dict:
        nan_curve = np.full(n_bins, np.nan, np.float32)
        return {**dict.fromkeys(LNL_FLOAT_KEYS, np.nan), "n_frames": n_frames, "n_spikes": n_spikes,
                "g_bin_centers": nan_curve, "rate_vs_g": nan_curve.copy(), "fit_status": status}

    if not np.isfinite(sta).any():
        return not_fitted("no_sta")
    weights = np.nan_to_num(sta.astype(np.float64)).reshape(frames_before, -1)
    weights -= weights.mean()
    if not np.any(weights):
        return not_fitted("flat_sta")
    if not n_frames:
        return not_fitted(f"failed: the movie has no frame after its first {frames_before}")
    if n_spikes < min_spikes:
        return not_fitted(f"too few spikes: {n_spikes} in the valid frame range (need {min_spikes})")
    g = generator_signal(weights, movie)
    g_mean, g_std = float(g.mean()), float(g.std())
    if not g_std > 0:
        return not_fitted("failed: the generator signal is constant")

    centers, rate_curve = histogram_nonlinearity(g, counts, n_bins, frame_period_s)
    z = (g - g_mean) / g_std
    fit = _fit_exponential(z, counts, frame_period_s)
    if fit is None:
        return not_fitted("failed: L-BFGS-B did not converge")
    a_z, b_z = fit
    a, b = a_z / g_std, b_z - a_z * g_mean / g_std
    log_likelihood = _log_likelihood(counts, np.clip(b_z + a_z * z, -LOG_RATE_LIMIT, LOG_RATE_LIMIT), frame_period_s)
    mean_rate = n_spikes / (n_frames * frame_period_s)
    null_log_likelihood = _log_likelihood(counts, np.full(n_frames, np.log(max(mean_rate, 1e-10))), frame_period_s)
    return {
        "a": a, "b": b, "a_norm": a_z, "log_likelihood": log_likelihood, "null_log_likelihood": null_log_likelihood,
        "bits_per_spike": float((log_likelihood - null_log_likelihood) / (n_spikes * np.log(2.0))),
        "r_squared": _squared_correlation(counts, np.exp(b + a * g)),
        **nonlinearity_shape(centers, rate_curve),
        "n_frames": n_frames, "n_spikes": n_spikes,
        "g_bin_centers": centers.astype(np.float32), "rate_vs_g": rate_curve.astype(np.float32),
        "fit_status": "ok",
    }


def _checked(sta, movie, frame_period_s, frames_before):
    sta = np.asarray(sta)
    if sta.ndim != 3 or sta.shape[0] != frames_before:
        raise InputError(f"STA for the LN fit must be ({frames_before}, rows, cols), got shape {sta.shape}")
    if np.ndim(movie) != 3 or tuple(movie.shape[1:]) != sta.shape[1:]:
        raise InputError(f"noise movie must be (frames, {sta.shape[1]}, {sta.shape[2]}) like the STA, "
                         f"got shape {np.shape(movie)}; check that the STA was computed from this movie")
    if not frame_period_s > 0:
        raise InputError(f"frame_period_s must be positive, got {frame_period_s}")
    return sta, movie, float(frame_period_s)


def generator_signal(weights: np.ndarray, movie: np.ndarray) -> np.ndarray:
    """``g_t`` for ``t = lags .. n_frames - 1`` from mean-free ``weights`` (lags, pixels).

    One matrix product per chunk of frames gives every frame's response at every lag; g is the
    sum of those responses along the lag diagonals.
    """
    lags = weights.shape[0]
    n_frames = movie.shape[0]
    # The weights sum to zero, so any constant taken off the stimulus leaves g unchanged: the
    # first chunk's mean stands in for the movie mean and keeps the float64 sums small.
    offset = float(np.mean(movie[:CHUNK_FRAMES], dtype=np.float64))
    per_lag = np.empty((n_frames, lags))
    for start in range(0, n_frames, CHUNK_FRAMES):
        chunk = np.asarray(movie[start:start + CHUNK_FRAMES], dtype=np.float64).reshape(-1, weights.shape[1])
        per_lag[start:start + len(chunk)] = (chunk - offset) @ weights.T
    g = np.zeros(max(n_frames - lags, 0))
    for k in range(lags):
        g += per_lag[k:k + len(g), k]
    return g


def histogram_nonlinearity(g: np.ndarray, counts: np.ndarray, n_bins: int, frame_period_s: float):
    """(bin centres, smoothed firing rate in Hz) of spikes against the generator signal."""
    low, high = float(g.min()), float(g.max())
    margin = 0.01 * (high - low)
    edges = np.linspace(low - margin, high + margin, n_bins + 1)
    frames_per_bin, _ = np.histogram(g, edges)
    spikes_per_bin, _ = np.histogram(g, edges, weights=counts)
    rate = spikes_per_bin / np.maximum(frames_per_bin, 1) / frame_period_s
    return 0.5 * (edges[:-1] + edges[1:]), gaussian_filter1d(rate, 1.0)


def _log_likelihood(counts: np.ndarray, log_rate: np.ndarray, frame_period_s: float) -> float:
    """The lab's Poisson log-likelihood ``sum(y log(rate) - rate dt)`` (rate in Hz; the log(y!) and
    y log(dt) terms, equal for every model of the same spikes, are left out)."""
    return float(np.sum(counts * log_rate - np.exp(log_rate) * frame_period_s))


def _fit_exponential(z: np.ndarray, counts: np.ndarray, frame_period_s: float):
    """(a_z, b_z) of ``rate = exp(b_z + a_z z)`` (Hz) by Poisson maximum likelihood, or None if L-BFGS-B fails."""
    log_dt = np.log(frame_period_s)

    def negative_log_likelihood(params):
        log_rate = params[1] + params[0] * z
        inside = np.abs(log_rate) < LOG_RATE_LIMIT
        log_mean = np.clip(log_rate, -LOG_RATE_LIMIT, LOG_RATE_LIMIT) + log_dt
        mean = np.exp(log_mean)
        residual = np.where(inside, counts - mean, 0.0)
        return float(np.sum(mean - counts * log_mean)), -np.array([residual @ z, residual.sum()])

    start = np.array([1.0, np.log(max(counts.mean() / frame_period_s, 1e-10))])
    result = minimize(negative_log_likelihood, start, jac=True, method="L-BFGS-B",
                      bounds=[SLOPE_BOUNDS, INTERCEPT_BOUNDS])
    if not (result.success and np.all(np.isfinite(result.x))):
        return None
    return float(result.x[0]), float(result.x[1])


def _squared_correlation(x: np.ndarray, y: np.ndarray) -> float:
    if not (np.std(x) > 0 and np.std(y) > 0):
        return 0.0
    return float(np.corrcoef(x, y)[0, 1] ** 2)


def nonlinearity_shape(centers: np.ndarray, rate: np.ndarray) -> dict:
    """The lab's shape metrics of the histogram nonlinearity curve.

    On the bins with a finite, non-negative rate (at least 5, else all 0), with the bin centres
    z-scored among themselves and ``level`` the curve's mean rate:
    ``rectification_index`` = (mean rate of bins with z > 0 - of bins with z < 0) / their sum;
    ``nonlinearity_index`` = 1 - max(0, R² of a straight line through the curve);
    ``threshold_g`` = z where the curve crosses ``level`` upward (of the crossings, the one whose
    lower bin is nearest z = 0, interpolated linearly), else the median z of the bins above
    ``level``, else 0.
    """
    keep = np.isfinite(rate) & (rate >= 0)
    if keep.sum() < 5:
        return {"rectification_index": 0.0, "nonlinearity_index": 0.0, "threshold_g": 0.0}
    g, rate = np.asarray(centers, np.float64)[keep], np.asarray(rate, np.float64)[keep]
    z = (g - g.mean()) / g.std() if g.std() > 0 else g - g.mean()
    level = rate.mean()
    above, below = rate[z > 0], rate[z < 0]
    total = above.mean() + below.mean() if len(above) and len(below) else 0.0
    rectification = float((above.mean() - below.mean()) / total) if total > 0 else 0.0
    spread = float(np.sum((rate - level) ** 2))
    linear = np.polyval(np.polyfit(z, rate, 1), z)
    nonlinearity = 1.0 - max(0.0, 1.0 - float(np.sum((rate - linear) ** 2)) / spread) if spread > 0 else 0.0
    return {"rectification_index": rectification, "nonlinearity_index": nonlinearity,
            "threshold_g": _threshold(z, rate, level)}


def _threshold(z: np.ndarray, rate: np.ndarray, level: float) -> float:
    rising = np.flatnonzero(np.diff((rate >= level).astype(int)) == 1)
    if len(rising):
        i = rising[np.argmin(np.abs(z[rising]))]
        if rate[i + 1] == rate[i]:
            return float((z[i] + z[i + 1]) / 2)
        return float(z[i] + (level - rate[i]) * (z[i + 1] - z[i]) / (rate[i + 1] - rate[i]))
    above = z[rate > level]
    return float(np.median(above)) if len(above) else 0.0
