"""compute_eimage_sta against a naive float64 reference (full sosfiltfilt + direct window means)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from scipy import signal

from mea_pipeline.eimage import EimageParams
from mea_pipeline.eimage.plan import Plan
from mea_pipeline.eimage.sta import compute_eimage_sta
from mea_pipeline.eimage.zero_phase import ZeroPhaseHighpass

FS = 20_000.0


def make_sensor(n: int, shape=(8, 9), fs: float = FS, seed: int = 0, offset: float = 3000.0):
    """int16 noise with offsets, slow drift and a planted footprint per unit; spike trains."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    x = rng.normal(0, 20, (n,) + shape)
    x += rng.uniform(-offset, offset, shape) + 200 * np.sin(2 * np.pi * 4 * t)[:, None, None]
    spikes = [np.sort(rng.choice(n, 40, replace=False)) for _ in range(4)]
    wave = -80 * np.exp(-((np.arange(30) - 10) / 3.0) ** 2)
    for u, s in enumerate(spikes):
        r, c = u % shape[0], (2 * u) % shape[1]
        for k in s[s < n - 30]:
            x[k : k + 30, r, c] += wave
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16), spikes


def reference(x, spikes, fs, p: EimageParams):
    """The recipe done the slow, obvious way in float64."""
    t = min(round(p.duration_s * fs), x.shape[0])
    sos = signal.butter(p.filter_order, p.cutoff_hz, "high", fs=fs, output="sos")
    y = signal.sosfiltfilt(sos, x[:t].astype(np.float64), axis=0)
    w0, w1 = p.window
    sta, used, excluded = [], [], []
    for s in spikes:
        s = np.sort(np.asarray(s).astype(np.int64))
        selected = s[(s >= 0) & (s < t)][: p.spike_limit]  # the lab: first spike_limit spikes, then the fit
        ok = selected[(selected + w0 >= 0) & (selected + w1 <= t)]
        used.append(len(ok))
        excluded.append(len(selected) - len(ok))
        windows = [y[k + w0 : k + w1] for k in ok]
        sta.append(np.mean(windows, axis=0) if windows else np.full((w1 - w0,) + x.shape[1:], np.nan))
    return np.array(sta), np.array(used), np.array(excluded), y


def assert_matches(result, x, spikes, fs, p):
    sta, used, excluded, y = reference(x, spikes, fs, p)
    assert result.sta.dtype == np.float32
    assert result.sta.shape == sta.shape
    np.testing.assert_array_equal(result.n_spikes_used, used)
    np.testing.assert_array_equal(result.n_spikes_excluded, excluded)
    np.testing.assert_array_equal(np.isnan(result.sta), np.isnan(sta))
    # float32-grade: y.std() is the filtered signal's scale (errors seen: below 1e-6 of it).
    np.testing.assert_allclose(result.sta, sta, rtol=0, atol=5e-6 * y.std() + 1e-6 * np.abs(sta[~np.isnan(sta)]).max())
    return sta


def test_matches_reference_full_chip_h5_with_many_chunk_edges(tmp_path):
    x, spikes = make_sensor(6000, shape=(65, 65))
    path = tmp_path / "sensor.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("SensorData 1 1", data=x, chunks=(1000, 65, 65))
    p = EimageParams(chunk_samples=1000)
    assert len(Plan(6000, 50, 1000, ZeroPhaseHighpass(2, 100.0, FS).settle_samples()).reads) >= 4
    with h5py.File(path, "r") as f:
        result = compute_eimage_sta(f["SensorData 1 1"], spikes, FS, p)
    sta = assert_matches(result, x, spikes, FS, p)
    assert result.n_samples_used == 6000
    # The planted footprint is the most negative point of unit 0's image.
    assert np.unravel_index(np.nanargmin(sta[0]), sta[0].shape)[1:] == (0, 0)


def test_spikes_around_chunk_edges_are_all_used():
    x, _ = make_sensor(7000, seed=1)
    plan = Plan(7000, 50, 1000, ZeroPhaseHighpass(2, 100.0, FS).settle_samples())
    edges = sorted({r for r, _ in plan.reads[1:]} | set(plan.origins[1:]) | {plan.tail_start})
    near = np.unique(np.concatenate([e + np.arange(-55, 56) for e in edges]))
    near = near[(near >= 10) & (near <= 7000 - 40)]
    spikes = [near, near[::7], near[3::11]]
    result = compute_eimage_sta(x, spikes, FS, EimageParams(chunk_samples=1000))
    assert list(result.n_spikes_used) == [len(s) for s in spikes]
    assert_matches(result, x, spikes, FS, EimageParams(chunk_samples=1000))


def test_spike_limit_selects_the_first_spikes_and_excluded_counts_only_those():
    # The lab's eimage_sta metadata: the first spike_limit spikes are selected, n_spikes_excluded
    # counts the selected ones whose window spills over an end (never the spikes beyond the limit).
    x, _ = make_sensor(5000, seed=2)
    spikes = [np.array([4000, 3, 120, 2500, 77, 1500, 4990, 900, 60, 3100])]  # unsorted
    p = EimageParams(spike_limit=4, chunk_samples=1000)
    result = compute_eimage_sta(x, spikes, FS, p)
    assert result.n_spikes_used[0] == 3  # selected 3, 60, 77, 120; 3 is too close to the start
    assert result.n_spikes_excluded[0] == 1
    assert_matches(result, x, spikes, FS, p)
    many = compute_eimage_sta(x, [np.arange(100, 4900, 10)], FS, p)
    assert (many.n_spikes_used[0], many.n_spikes_excluded[0]) == (4, 0)


def test_windows_spilling_over_either_end_are_excluded():
    x, _ = make_sensor(3000, seed=3)
    spikes = [np.array([-5, 0, 9, 10, 11, 2959, 2960, 2961, 2999, 3000, 4000])]
    result = compute_eimage_sta(x, spikes, FS, EimageParams(chunk_samples=1000))
    assert result.n_spikes_used[0] == 4  # 10, 11, 2959, 2960
    assert result.n_spikes_excluded[0] == 4  # 0, 9, 2961, 2999; -5 and >= T are not in [0, T)
    assert_matches(result, x, spikes, FS, EimageParams(chunk_samples=1000))


def test_units_without_usable_spikes_are_nan():
    x, spikes = make_sensor(3000, seed=4)
    units = [np.array([], dtype=np.int64), spikes[0], np.array([1, 2999])]
    result = compute_eimage_sta(x, units, FS, EimageParams(chunk_samples=1000))
    assert np.isnan(result.sta[0]).all() and np.isnan(result.sta[2]).all()
    assert not np.isnan(result.sta[1]).any()
    assert list(result.n_spikes_used) == [0, len(spikes[0]) - np.sum((spikes[0] < 10) | (spikes[0] > 2960)), 0]
    empty = compute_eimage_sta(x, [np.array([], dtype=np.int64)], FS)
    assert empty.sta.shape == (1, 50, 8, 9) and np.isnan(empty.sta).all()


def test_result_does_not_depend_on_chunk_samples():
    x, spikes = make_sensor(9000, seed=5)
    a = compute_eimage_sta(x, spikes, FS, EimageParams(chunk_samples=1000))
    b = compute_eimage_sta(x, spikes, FS, EimageParams(chunk_samples=3333))
    c = compute_eimage_sta(x, spikes, FS, EimageParams(chunk_samples=20_000))
    scale = np.abs(a.sta).max()
    np.testing.assert_allclose(b.sta, a.sta, rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(c.sta, a.sta, rtol=0, atol=1e-5 * scale)


def test_duration_cut_is_honoured():
    x, spikes = make_sensor(8000, seed=6)
    p = EimageParams(duration_s=0.25, chunk_samples=1000)  # 5000 of the 8000 samples
    result = compute_eimage_sta(x, spikes, FS, p)
    assert result.n_samples_used == 5000
    assert_matches(result, x, spikes, FS, p)


def test_25_khz_other_window_and_order():
    fs = 25_000.0
    x, spikes = make_sensor(7000, fs=fs, seed=7)
    for p in (EimageParams(chunk_samples=1500), EimageParams(window=(-5, 20), filter_order=3, chunk_samples=2000)):
        assert_matches(compute_eimage_sta(x, spikes, fs, p), x, spikes, fs, p)


def test_large_dc_offsets_keep_float32_precision():
    x, spikes = make_sensor(6000, seed=8, offset=25_000.0)
    assert_matches(compute_eimage_sta(x, spikes, FS, EimageParams(chunk_samples=1500)), x, spikes, FS,
                   EimageParams(chunk_samples=1500))


def test_rejects_non_int16_sensor():
    with pytest.raises(TypeError):
        compute_eimage_sta(np.zeros((100, 2, 2), np.float32), [np.array([50])], FS)


@pytest.mark.parametrize("order,fs", [(1, 20_000.0), (2, 20_000.0), (4, 25_000.0)])
def test_zero_phase_form_matches_sosfiltfilt(order, fs):
    """Kernel = autocorrelation of the impulse response; causal + anti-causal states, the start
    state and the exact tail reproduce sosfiltfilt."""
    zp = ZeroPhaseHighpass(order, 100.0, fs)
    impulse = np.zeros(6000)
    impulse[0] = 1.0
    h = signal.sosfilt(zp.sos, impulse)
    np.testing.assert_allclose(zp.kernel(60), [h[: len(h) - k] @ h[k:] for k in range(60)], atol=1e-12)
    rng = np.random.default_rng(order)
    n, c = 4000, 3
    x = np.cumsum(rng.normal(0, 3, (n, c)), axis=0) + rng.normal(0, 20, (n, c)) + 500
    y = signal.sosfiltfilt(zp.sos, x, axis=0)
    p = zp.poles[:, None]
    past = np.zeros((n, len(zp.poles), c), complex)
    ahead = np.zeros_like(past)
    start = zp.start_state(x[: zp.padlen + 1])
    past[0] = start[0::2] + 1j * start[1::2]
    for t in range(1, n):
        past[t] = p * (past[t - 1] + x[t - 1])
    for t in range(n - 2, -1, -1):
        ahead[t] = p * (ahead[t + 1] + x[t + 1])
    both = zp.g0 * x + np.real((zp.weights * zp.beta)[None, :, None] * (past + ahead)).sum(axis=1)
    interior = n - zp.settle_samples()
    np.testing.assert_allclose(both[:interior], y[:interior], atol=1e-7 * np.abs(y).max())
    tau = interior - 100
    state = np.empty((zp.n_states, c))
    state[0::2], state[1::2] = past[tau].real, past[tau].imag
    np.testing.assert_allclose(zp.tail(x[tau:], state), y[tau:], atol=1e-7 * np.abs(y).max())
