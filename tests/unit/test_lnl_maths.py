"""Step 7's LN model against spikes drawn from a known exponential LN model."""

import numpy as np
import pytest

from mea_pipeline.errors import InputError
from mea_pipeline.geometry.lnl import LNL_FLOAT_KEYS
from mea_pipeline.geometry.lnl import lnl_fit as fit_with
from mea_pipeline.geometry.rf import RfGeometryParams

GRID, LAGS = 15, 60
DT = 1 / 60.0           # display frame period: the bins the spikes are counted in
BASE_HZ, GAIN = 20.0, 0.9


def ln_cell(n_frames=20000, seed=5):
    """Binary 0/255 noise and spikes of rate = exp(b + a g) (Hz) per display frame.

    The filter is random and zero-mean, so g (= filter . stimulus window, the window ending with
    the frame just before the spike frame) does not depend on any stimulus offset, and a shift of
    the window by one frame decorrelates it. ``a`` is set so the drive a g has standard deviation
    GAIN; ``b`` = log(BASE_HZ). Returns the movie, the filter (60, 15, 15) (given to the fit as its
    STA), spike frames, and the true a, b.
    """
    rng = np.random.default_rng(seed)
    movie = (rng.integers(0, 2, (n_frames, GRID * GRID)) * 255).astype(np.uint8)
    flt = rng.normal(0, 1, (LAGS, GRID * GRID))
    flt -= flt.mean()
    windows = np.lib.stride_tricks.sliding_window_view(movie.astype(np.float64), LAGS, axis=0)  # (T-59, px, lags)
    g = np.einsum("tpk,kp->t", windows[:-1], flt)            # g for frames 60 .. T-1
    a = GAIN / g.std()
    b = np.log(BASE_HZ)
    counts = np.zeros(n_frames, dtype=np.int64)
    counts[LAGS:] = rng.poisson(np.exp(b + a * g) * DT)
    spike_frames = np.repeat(np.arange(n_frames), counts)
    return movie.reshape(n_frames, GRID, GRID), flt.reshape(LAGS, GRID, GRID), spike_frames, a, b, g


def lnl_fit(sta, movie, spike_frames, *, frame_period_s, min_spikes=RfGeometryParams.lnl_min_spikes):
    """The LN fit as rf_geometry makes it: the STA's length, the step's default bins and spike floor."""
    return fit_with(sta, movie, spike_frames, frames_before=len(sta), frame_period_s=frame_period_s,
                    n_bins=RfGeometryParams.lnl_bins, min_spikes=min_spikes)


@pytest.fixture(scope="module")
def cell():
    return ln_cell()


def test_lnl_fit_recovers_gain_and_offset_in_hz_of_the_display_frames(cell):
    movie, sta, spike_frames, a, b, g = cell
    result = lnl_fit(127.5 + 3.0 * sta, movie, spike_frames, frame_period_s=DT)   # any affine STA scaling
    assert result["fit_status"] == "ok"
    # a is per unit of the fit's own g = (sta - mean) . (stimulus - mean): 3 x ours.
    assert result["a"] * 3.0 == pytest.approx(a, rel=0.15)
    assert result["a_norm"] == pytest.approx(GAIN, rel=0.15)
    # b is log Hz at g = 0; binning 60 Hz frames per 1/15 s (the lab's bug) would shift it by log 4.
    assert result["b"] == pytest.approx(b, abs=0.15)
    assert result["n_spikes"] == len(spike_frames) and result["n_frames"] == len(movie) - LAGS
    assert result["bits_per_spike"] > 0.2 and result["log_likelihood"] > result["null_log_likelihood"]
    # Well-populated bins of the histogram nonlinearity follow the true rate (Hz).
    centers, rate = result["g_bin_centers"].astype(float), result["rate_vs_g"].astype(float)
    frames_per_bin, _ = np.histogram(g * 3.0, np.linspace(centers[0] - (centers[1] - centers[0]) / 2,
                                                           centers[-1] + (centers[1] - centers[0]) / 2, len(centers) + 1))
    populated = frames_per_bin > 500
    assert populated.sum() >= 10
    assert rate[populated] == pytest.approx(np.exp(b + a * centers[populated] / 3.0), rel=0.25)
    assert result["g_bin_centers"].dtype == np.float32 and result["rate_vs_g"].shape == (50,)
    assert result["rectification_index"] > 0.3 and 0 < result["r_squared"] < 1


def test_a_filter_one_frame_late_or_reversed_in_time_explains_nothing(cell):
    movie, sta, spike_frames, _, _, _ = cell
    late = lnl_fit(np.roll(sta, 1, axis=0), movie, spike_frames, frame_period_s=DT)
    reversed_ = lnl_fit(sta[::-1], movie, spike_frames, frame_period_s=DT)
    assert abs(late["a_norm"]) < 0.1 and abs(reversed_["a_norm"]) < 0.1


def test_shuffled_spikes_carry_no_information(cell):
    movie, sta, spike_frames, _, _, _ = cell
    shuffled = np.random.default_rng(6).integers(LAGS, len(movie), len(spike_frames))
    assert abs(lnl_fit(sta, movie, shuffled, frame_period_s=DT)["bits_per_spike"]) < 0.02


def test_lnl_fit_reads_a_memmapped_movie_like_an_array(cell, tmp_path):
    movie, sta, spike_frames, _, _, _ = cell
    np.save(tmp_path / "movie.npy", movie)
    mapped = np.load(tmp_path / "movie.npy", mmap_mode="r")
    in_memory = lnl_fit(sta, movie, spike_frames, frame_period_s=DT)
    from_disk = lnl_fit(sta, mapped, spike_frames, frame_period_s=DT)
    assert from_disk["a"] == pytest.approx(in_memory["a"]) and from_disk["fit_status"] == "ok"


def test_lnl_fit_with_too_few_spikes_is_nan_with_a_status(cell):
    movie, sta, spike_frames, _, _, _ = cell
    result = lnl_fit(sta, movie, spike_frames[:9], frame_period_s=DT)
    assert result["fit_status"].startswith("too few spikes") and result["n_spikes"] == 9
    assert all(np.isnan(result[key]) for key in LNL_FLOAT_KEYS)
    assert np.isnan(result["rate_vs_g"]).all() and result["rate_vs_g"].shape == (50,)
    assert lnl_fit(sta, movie, spike_frames[:9], frame_period_s=DT, min_spikes=5)["fit_status"] == "ok"
    assert lnl_fit(np.full_like(sta, np.nan), movie, spike_frames, frame_period_s=DT)["fit_status"] == "no_sta"


def test_lnl_fit_rejects_a_movie_of_another_shape(cell):
    movie, sta, spike_frames, _, _, _ = cell
    with pytest.raises(InputError, match="movie"):
        lnl_fit(sta, movie[:, :10], spike_frames, frame_period_s=DT)
