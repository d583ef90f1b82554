"""The CNN's training distribution: electrical images drawn from a broad family, with known axon voxels.

One generator's choices do not carry over to another's (issue 19: weights trained on the
project's own synthetic recordings found 16 of 55 axons on another generator's), so every
choice a generator fixes is drawn here, per unit, from a wide range:

* **scale and noise**: eimage noise std (ADC counts, after averaging ``n`` spikes) over two
  decades; noise mixed in random proportions from white, time-correlated, smooth-field,
  common-mode and slow-baseline parts (:func:`random_noise`) plus a slow shift of the whole array;
  a gain per electrode (signal and noise alike), dead electrodes, noisy lanes and lanes flattened
  to the mean (what ap_tracking's bad-lane fix leaves);
* **waveforms**: a trough of random width and skew, an optional positive pre-phase and a
  rebound of random size, delay and width, drawn separately for soma and axon;
* **soma footprint**: an elliptical Gaussian of random size and orientation, with small
  dendritic delays, and a wider surround of the opposite sign with a slower waveform;
* **axon**: trough depth as a signal-to-noise ratio, conduction velocity, start offset and delay,
  curvature, amplitude changing along the path, lateral spread (Gaussian or heavy-tailed),
  sometimes a branch, sometimes no axon at all;
* **the crowd**: other units' whole spikes (soma and axon) falling into the window at random lags,
  divided by ``n``, some of them overlapping the unit.

Rendering works on the eimage directly (50 frames of 50 us, the spike at frame 10, axes (t,
axis 1, axis 2)); each part is drawn noise-free first so the labels
(:func:`~mea_pipeline.ap_training.training_data.trough_labels`) know where the unit's own axon is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage, sparse

from ..synth.cells import CHIP, PITCH_UM
from .training_data import IGNORED, SyntheticUnit, sample_cubes, trough_labels

FRAMES = 50
SPIKE_FRAME = 10          # load_recording's window starts 10 samples before the spike
FRAME_MS = 0.05           # 20 kHz
FOREIGN_PAD = 40          # frames a foreign template reaches beyond the window on either side
MAX_FOREIGN = 12          # foreign spikes per unit (more, each divided by n, only add a faint haze)


@dataclass(frozen=True)
class BroadSpec:
    """Ranges of the training distribution (log-uniform where the name says ``log``, else uniform)."""

    noise_std_log: tuple[float, float] = (0.1, 8.0)          # eimage noise std, ADC counts
    n_spikes_log: tuple[float, float] = (3.0, 3000.0)        # spikes averaged (scales the crowd)
    soma_snr_log: tuple[float, float] = (8.0, 400.0)         # soma trough / noise std
    axon_snr_log: tuple[float, float] = (2.0, 40.0)          # axon trough / noise std
    max_axon_to_soma: float = 0.7                            # axon trough at most this x the soma's
    no_axon_fraction: float = 0.15
    velocity_m_s_log: tuple[float, float] = (0.25, 2.5)
    axon_width_ms_log: tuple[float, float] = (0.03, 0.2)     # trough sigma
    soma_width_ms_log: tuple[float, float] = (0.05, 0.3)
    axon_length_el: tuple[float, float] = (8.0, 60.0)
    ais_offset_el: tuple[float, float] = (0.0, 2.5)
    ais_delay_ms: tuple[float, float] = (0.0, 0.15)
    max_turn_deg: float = 70.0                               # total heading change along the axon
    branch_fraction: float = 0.25
    lateral_spread_el_log: tuple[float, float] = (0.35, 1.5)
    soma_sigma_el_log: tuple[float, float] = (0.6, 2.5)
    surround_scale: tuple[float, float] = (1.5, 4.0)          # surround sigma / footprint sigma
    surround_strength: tuple[float, float] = (0.0, 0.4)       # surround peak / soma trough (opposite sign)
    slow_common_mode: tuple[float, float] = (0.0, 2.0)       # std of a slow whole-array shift, x noise std
    electrode_gain_sd: tuple[float, float] = (0.0, 0.3)      # lognormal sigma of the per-electrode gain
    dead_electrode_fraction: tuple[float, float] = (0.0, 0.01)
    bad_lane_fraction: float = 0.2                           # units with flattened or noisy lanes
    foreign_rate_hz: tuple[float, float] = (0.0, 300.0)      # summed rate of the other units' spikes
    near_foreign_fraction: float = 0.3                       # foreign spikes placed over the unit

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Source:
    """One unit's noise-free soma and axon parts over the window padded by ``FOREIGN_PAD`` frames."""

    soma: np.ndarray
    axon: np.ndarray
    soma_rc: tuple[int, int]


def broad_unit(rng: np.random.Generator, spec: BroadSpec, crowd: list[Source]) -> SyntheticUnit:
    """One random unit: its eimage, its labels, and how it was drawn (see the module docstring)."""
    noise_std = _log_uniform(rng, *spec.noise_std_log)
    n_spikes = int(round(_log_uniform(rng, *spec.n_spikes_log)))
    own = random_source(rng, spec, noise_std, edge=4)
    window = slice(FOREIGN_PAD, FOREIGN_PAD + FRAMES)
    soma, axon = own.soma[window], own.axon[window]
    foreign, foreign_axon = _crowd_signal(rng, spec, crowd, own.soma_rc, n_spikes)
    gain = np.exp(rng.normal(0.0, rng.uniform(*spec.electrode_gain_sd), (CHIP, CHIP)))
    alive = rng.random((CHIP, CHIP)) >= rng.uniform(*spec.dead_electrode_fraction)
    gain *= alive
    noise = random_noise(rng, noise_std)
    # A slow shift of the whole array (reference drift, field potentials locked to the spikes): a
    # cube that is merely darker than zero everywhere is not an axon.
    noise += noise_std * rng.uniform(*spec.slow_common_mode) * _ar1(rng.standard_normal((FRAMES, 1, 1)),
                                                                    rng.uniform(0.8, 0.999))
    lanes = _noisy_lanes(rng, spec, noise, noise_std)
    eimage = gain * (soma + axon + foreign + noise)
    seen_axon = gain * axon
    flattened = _flat_lanes(rng, spec)
    if flattened:
        eimage[:, :, flattened] = eimage.mean()
        seen_axon[:, :, flattened] = 0.0
    local_noise = noise_std * np.maximum(gain, 1e-6)[None] * lanes
    labels = trough_labels(seen_axon, gain * soma, local_noise)
    labels[gain[None] * foreign_axon <= -local_noise] = IGNORED   # another unit's axon: locally an axon is an axon
    distractor = (gain * foreign <= -2 * local_noise) | (gain * soma <= -2 * local_noise)
    return SyntheticUnit(eimage=eimage.astype(np.float32), labels=labels, distractor=distractor, axon=seen_axon,
                         n_spikes=n_spikes, noise_std=noise_std)


def broad_units(n_units: int, rng: np.random.Generator, spec: BroadSpec = BroadSpec(), crowd_every: int = 50):
    """``n_units`` random units (a generator); the crowd of other units is drawn afresh every ``crowd_every``."""
    for i in range(n_units):
        if i % crowd_every == 0:
            crowd = crowd_pool(rng, spec)
        yield broad_unit(rng, spec, crowd)


def training_cubes(n_units: int, rng: np.random.Generator, spec: BroadSpec = BroadSpec(), per_unit: int = 200,
                   negatives_per_positive: float = 3.0):
    """Cubes of ``n_units`` random units, each unit rendered, sampled (``sample_cubes``) and dropped."""
    parts = [sample_cubes(unit, rng, per_unit, negatives_per_positive) for unit in broad_units(n_units, rng, spec)]
    return np.concatenate([c for c, _ in parts]), np.concatenate([t for _, t in parts])


def crowd_pool(rng: np.random.Generator, spec: BroadSpec, n_cells: int = 24) -> list[Source]:
    """Other units whose spikes fall into a unit's windows (unit noise std: their amplitudes are absolute)."""
    return [random_source(rng, spec, _log_uniform(rng, *spec.noise_std_log), edge=1) for _ in range(n_cells)]


def random_source(rng: np.random.Generator, spec: BroadSpec, noise_std: float, edge: int) -> Source:
    """A unit's soma and (unless drawn axon-free) axon, noise-free, over the padded window."""
    t_ms = (np.arange(FRAMES + 2 * FOREIGN_PAD) - FOREIGN_PAD - SPIKE_FRAME) * FRAME_MS
    soma_rc = tuple(int(v) for v in rng.integers(edge, CHIP - edge, size=2))
    soma_depth = noise_std * _log_uniform(rng, *spec.soma_snr_log)
    soma = _soma(rng, spec, t_ms, soma_rc, soma_depth)
    axon = np.zeros_like(soma)
    if rng.random() >= spec.no_axon_fraction:
        depth = min(noise_std * _log_uniform(rng, *spec.axon_snr_log), spec.max_axon_to_soma * soma_depth)
        _add_axon(axon, rng, spec, t_ms, soma_rc, depth)
    return Source(soma, axon, soma_rc)


class Waveform:
    """A unit-depth spike (times in ms): skewed trough at t = 0, optional positive pre-phase, a rebound."""

    def __init__(self, rng: np.random.Generator, width_ms: float):
        self.left, self.right = width_ms * rng.uniform(0.6, 1.0), width_ms * rng.uniform(1.0, 1.8)
        self.phases = [(rng.uniform(0.0, 0.5), width_ms * rng.uniform(2.0, 5.0), width_ms * rng.uniform(1.5, 3.5))]
        if rng.random() < 0.5:
            self.phases.append((rng.uniform(0.05, 0.35), -width_ms * rng.uniform(1.5, 3.0),
                                width_ms * rng.uniform(0.7, 1.5)))
        self.depth = float(-self._unscaled(np.linspace(-1.0, 1.0, 801)).min())

    def __call__(self, t_ms: np.ndarray) -> np.ndarray:
        return self._unscaled(t_ms) / self.depth

    def _unscaled(self, t_ms: np.ndarray) -> np.ndarray:
        shape = -np.exp(-t_ms ** 2 / (2 * np.where(t_ms < 0, self.left, self.right) ** 2))
        for amplitude, centre, width in self.phases:
            shape = shape + amplitude * np.exp(-(t_ms - centre) ** 2 / (2 * width ** 2))
        return shape


def random_noise(rng: np.random.Generator, noise_std: float) -> np.ndarray:
    """(50, 65, 65) noise of std ``noise_std``, mixed in random proportions from five kinds.

    Independent white noise; per-electrode noise correlated in time (AR(1), up to nearly a
    random walk: what a 1/f-like sensor spectrum leaves after the high-pass); a field smooth in
    space and correlated in time; a common mode of all electrodes; a per-electrode offset and
    drift over the window (a slow baseline the short window cannot tell from a constant).
    """
    shape = (FRAMES, CHIP, CHIP)
    weights = rng.dirichlet([1.5, 1.0, 1.0, 1.0, 1.0])
    smooth = ndimage.gaussian_filter(rng.standard_normal(shape), (0, *[rng.uniform(0.7, 3.0)] * 2))
    offset = rng.standard_normal((1, CHIP, CHIP)) + rng.standard_normal((1, CHIP, CHIP)) * np.linspace(-1, 1, FRAMES)[:, None, None]
    parts = [rng.standard_normal(shape),
             _ar1(rng.standard_normal(shape), rng.uniform(0.3, 0.99)),
             _ar1(smooth / smooth.std(), rng.uniform(0.0, 0.99)),
             np.broadcast_to(_ar1(rng.standard_normal((FRAMES, 1, 1)), rng.uniform(0.0, 0.99)), shape),
             offset / offset.std()]
    return noise_std * sum(np.sqrt(w) * p for w, p in zip(weights, parts))


def _ar1(innovations: np.ndarray, phi: float) -> np.ndarray:
    """Stationary unit-variance AR(1) along axis 0 driven by unit-variance ``innovations``."""
    out = np.empty_like(innovations)
    out[0] = innovations[0]
    scale = np.sqrt(1.0 - phi * phi)
    for t in range(1, len(out)):
        out[t] = phi * out[t - 1] + scale * innovations[t]
    return out


def _soma(rng, spec, t_ms, soma_rc, depth) -> np.ndarray:
    """Elliptical Gaussian footprint, waveform delayed slightly with distance (dendrites), and a surround.

    The surround (a wider Gaussian of the opposite sign with its own, slower waveform: the return
    current of the dendrites) leaves a broad, slow field around the soma that reaches beyond the
    square ap_tracking masks, and is not an axon.
    """
    sigma = _log_uniform(rng, *spec.soma_sigma_el_log)
    sigma_a, sigma_b = sigma, sigma * rng.uniform(0.6, 1.0)
    angle = rng.uniform(0, np.pi)
    surround_sigma = sigma * rng.uniform(*spec.surround_scale)
    radius = int(np.ceil(3.5 * max(sigma, surround_sigma)))
    d1, d2 = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    u, v = d1 * np.cos(angle) + d2 * np.sin(angle), -d1 * np.sin(angle) + d2 * np.cos(angle)
    weight = np.exp(-0.5 * ((u / sigma_a) ** 2 + (v / sigma_b) ** 2)).ravel()
    surround = np.exp(-0.5 * (d1 ** 2 + d2 ** 2) / surround_sigma ** 2).ravel()
    delay = (rng.uniform(0.0, 0.04) * np.hypot(d1, d2)).ravel()           # ms
    width = _log_uniform(rng, *spec.soma_width_ms_log)
    wave = Waveform(rng, width)(t_ms[:, None] - delay[None, :])           # (T, footprint)
    slow = Waveform(rng, width * rng.uniform(1.5, 4.0))(t_ms[:, None] - rng.uniform(0.0, 0.3) - delay[None, :])
    field = weight * wave - rng.uniform(*spec.surround_strength) * surround * slow
    out = np.zeros((len(t_ms), CHIP, CHIP))
    a, b = soma_rc[0] + d1.ravel(), soma_rc[1] + d2.ravel()
    ok = (a >= 0) & (a < CHIP) & (b >= 0) & (b < CHIP)
    out[:, a[ok], b[ok]] = depth * field[:, ok]
    return out


def _add_axon(out, rng, spec, t_ms, soma_rc, depth) -> None:
    """A curved axon (and maybe a branch) carrying a travelling trough, splatted with a lateral kernel."""
    velocity = _log_uniform(rng, *spec.velocity_m_s_log)                  # m/s = mm/ms
    width = _log_uniform(rng, *spec.axon_width_ms_log)
    wave = Waveform(rng, width)                                           # one shape for the whole axon
    heading = rng.uniform(0, 2 * np.pi)
    turn = np.radians(rng.uniform(-spec.max_turn_deg, spec.max_turn_deg))
    length = rng.uniform(*spec.axon_length_el)
    start = np.array(soma_rc, float) + rng.uniform(*spec.ais_offset_el) * np.array([np.sin(heading), np.cos(heading)])
    points, distance = _curve(start, heading, turn, length)
    delay = rng.uniform(*spec.ais_delay_ms) + distance * PITCH_UM * 1e-3 / velocity
    gain_along = np.interp(distance, [0, length], rng.uniform(0.5, 1.5, 2)) * np.clip(distance / rng.uniform(0.5, 3), 0, 1)
    kernel = _lateral_kernel(rng, spec)
    _splat(out, points, depth * gain_along, delay, t_ms, kernel, wave)
    if rng.random() < spec.branch_fraction:
        at = int(rng.integers(len(points) // 4, max(len(points) // 4 + 1, 3 * len(points) // 4)))
        side = rng.choice([-1, 1]) * np.radians(rng.uniform(20, 60))
        branch, more = _curve(points[at], heading + turn * distance[at] / length + side, 0.0, rng.uniform(5, 25))
        scale = rng.uniform(0.3, 0.8)
        _splat(out, branch, depth * scale * gain_along[at] * np.ones(len(branch)),
               delay[at] + more * PITCH_UM * 1e-3 / velocity, t_ms, kernel, wave)


def _curve(start: np.ndarray, heading: float, turn: float, length: float):
    """Points every half electrode along an arc of total turn ``turn`` (axis1, axis2) and their arc length."""
    distance = np.arange(0.0, length + 1e-9, 0.5)
    angle = heading + turn * distance / max(length, 1e-9)
    steps = 0.5 * np.stack([np.sin(angle), np.cos(angle)], axis=1)
    points = start[None, :] + np.concatenate([[[0.0, 0.0]], np.cumsum(steps[:-1], axis=0)])
    inside = np.all((points >= -2) & (points <= CHIP + 1), axis=1)
    stop = len(points) if inside.all() else int(np.argmin(inside))
    return points[:max(stop, 1)], distance[:max(stop, 1)]


def _lateral_kernel(rng, spec):
    """Electrode weight as a function of the distance to a path point: Gaussian or heavy-tailed."""
    spread = _log_uniform(rng, *spec.lateral_spread_el_log)
    if rng.random() < 0.5:
        return lambda d: np.exp(-0.5 * (d / spread) ** 2)
    power = rng.uniform(0.75, 1.5)
    return lambda d: (1 + (d / spread) ** 2) ** -power


def _splat(out, points, depth, delay, t_ms, kernel, wave: Waveform) -> None:
    """Add each path point's delayed waveform to the electrodes within 4 of it, normalised so a line has ``depth``."""
    offsets = np.arange(-4, 5)
    d1, d2 = np.meshgrid(offsets, offsets, indexing="ij")
    base = np.floor(points).astype(int)
    a = base[:, 0, None] + d1.ravel()[None, :]
    b = base[:, 1, None] + d2.ravel()[None, :]
    weight = kernel(np.hypot(a - points[:, 0, None], b - points[:, 1, None]))
    line = kernel(np.abs(np.arange(-40, 41) * 0.5)).sum()                 # a straight line's sum under the kernel
    weight = weight * (depth[:, None] / line)
    ok = (a >= 0) & (a < CHIP) & (b >= 0) & (b < CHIP) & (weight > 1e-4 * depth.max())
    values = wave(t_ms[:, None] - delay[None, :])                          # (T, points)
    point = np.nonzero(ok)[0]
    onto = sparse.csr_matrix((weight[ok], (point, (a * CHIP + b)[ok])), shape=(len(points), CHIP * CHIP))
    out += (onto.T @ values.T).T.reshape(out.shape)


def _crowd_signal(rng, spec, crowd, soma_rc, n_spikes):
    """Foreign spikes in the window: each a pool unit's spike at a random lag and place, divided by ``n_spikes``."""
    foreign, foreign_axon = np.zeros((FRAMES, CHIP, CHIP)), np.zeros((FRAMES, CHIP, CHIP))
    window_s = (FRAMES + 2 * FOREIGN_PAD) * FRAME_MS * 1e-3
    count = min(MAX_FOREIGN, rng.poisson(n_spikes * rng.uniform(*spec.foreign_rate_hz) * window_s))
    for _ in range(count):
        other = crowd[int(rng.integers(len(crowd)))]
        lag = int(rng.integers(-FOREIGN_PAD + 1, FOREIGN_PAD))
        if rng.random() < spec.near_foreign_fraction:
            target = np.array(soma_rc) + rng.integers(-6, 7, 2)
        else:
            target = rng.integers(0, CHIP, 2)
        shift = target - np.array(other.soma_rc)
        frames = slice(FOREIGN_PAD + lag, FOREIGN_PAD + lag + FRAMES)
        for part, into in ((other.soma + other.axon, foreign), (other.axon, foreign_axon)):
            into += _shifted(part[frames], shift) / n_spikes
    return foreign, foreign_axon


def _shifted(volume: np.ndarray, shift) -> np.ndarray:
    """``volume`` moved by ``shift`` electrodes along axes 1 and 2, zero-filled."""
    out = np.zeros_like(volume)
    s1, s2 = int(shift[0]), int(shift[1])
    src1, dst1 = slice(max(0, -s1), CHIP - max(0, s1)), slice(max(0, s1), CHIP - max(0, -s1))
    src2, dst2 = slice(max(0, -s2), CHIP - max(0, s2)), slice(max(0, s2), CHIP - max(0, -s2))
    out[:, dst1, dst2] = volume[:, src1, src2]
    return out


def _noisy_lanes(rng, spec, noise, noise_std) -> np.ndarray:
    """Make a few lanes (axis 2) several times noisier in place; returns the per-electrode noise factor."""
    factor = np.ones((1, CHIP, CHIP))
    if rng.random() < spec.bad_lane_fraction:
        lanes = rng.integers(0, CHIP, int(rng.integers(1, 4)))
        extra = rng.uniform(2.0, 6.0)
        noise[:, :, lanes] += np.sqrt(extra ** 2 - 1) * noise_std * rng.standard_normal((FRAMES, CHIP, len(lanes)))
        factor[:, :, lanes] = extra
    return factor


def _flat_lanes(rng, spec) -> list[int]:
    """Lanes (axis 2) the sheet lists as bad: ap_tracking flattens them to the eimage's mean."""
    if rng.random() >= spec.bad_lane_fraction:
        return []
    return sorted({int(v) for v in rng.integers(0, CHIP, int(rng.integers(1, 4)))})


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))
