"""Held-out synthetic recordings for validating the AP-tracking CNN (never used for training).

A second generator, built apart from :mod:`~mea_pipeline.ap_training.training_data` and with
other physics, so that a network trained on one and scored on the other is scored on data it
has not learned the quirks of:

* **Membrane action potential**: ``V(tau) = 1 / (exp(-tau / rise) + exp(tau / decay))``
  (a regenerative exponential upstroke meeting an exponential repolarisation), sampled at 5 us.
* **Axon**: a line source travelling at ``v``; its membrane current, hence its extracellular
  signal, follows ``d2V/dtau2`` (triphasic: small positive, large negative, positive). The
  path is a quadratic Bezier curve from the soma to the optic-nerve head (ONH) whose total
  turning is at most ``turning_deg``.
* **Soma**: a disc sink with waveform ``-dV/dtau`` (plus a little ``d2V/dtau2``) and a wider
  disc of dendritic return current of the opposite sign (a closed-field source).
* **Coupling**: every source point reaches an electrode through the point-source kernel
  ``1/sqrt(d^2 + h^2) - 1/sqrt(R^2 + h^2)`` (zero beyond R = 8 electrodes), ``h`` the source's
  height above the electrodes; then a per-electrode gain (the chip's, shared by all units).
* **Eimage**: the unit's own template high-passed as load_recording does (100 Hz Butterworth order 2,
  zero phase), plus the other units' templates at Poisson lags divided by ``n`` (the spikes of
  others falling in the averaged windows), plus noise generated already band-limited: a 1/f^a
  spectrum times the high-pass's squared response, mixed from an electrode-independent part,
  a smooth field (cubic spline of a coarse grid) and a common mode, scaled to the eimage's
  noise std.

Eimages are float32 (50, 65, 65) = (t, axis 1, axis 2), 20 kHz, the soma trough at frame 10.
Per-voxel labels come from the unit's own noise-free axon and soma parts
(:func:`~mea_pipeline.ap_training.training_data.trough_labels`); other units' axons are not
told apart from their somas here, so where one crosses a unit's eimage it counts as not axon.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal, sparse

from ..synth.cells import CHIP, PITCH_UM
from .training_data import Scene, trough_labels, visible_axon_frames

FRAME_S, FRAME_MS = 50e-6, 0.05       # 20 kHz
N_FRAMES, SPIKE_FRAME = 50, 10       # load_recording's window: -10 .. +40 samples
HIGHPASS_HZ, HIGHPASS_ORDER = 100.0, 2
KERNEL_RADIUS = 8                    # electrodes; the point-source kernel is zero beyond
TEMPLATE_FRAMES = (-40, 90)          # a template's frames around its own spike (foreign lags use them all)
_LONG = np.arange(-300, 430)         # frames the high-pass runs over before the template is cut out
_SOMA_BOX = 5                        # the SNR rule's square: soma +- 5 electrodes (ap_tracking masks it)
_FINE_STEP_MS = 0.005
_NOISE_DRAW = 256                    # frames of a circular noise draw (78 Hz resolution) cut to N_FRAMES
_COARSE = 9                          # grid of the smooth noise field


@dataclass(frozen=True)
class HeldOutSpec:
    """One named held-out set: every range ``(low, high)`` is sampled uniformly per unit or scene.

    Attributes
    ----------
    name : str
    n_units : int
    no_axon_fraction : float
        Share of units drawn without an axon (amacrine or displaced cells), rounded.
    n_spikes : (int, int)
        Spikes averaged into a unit's eimage (log-uniform).
    noise_std : (float, float)
        Eimage noise std in high-passed ADC counts, before the electrode gain (log-uniform).
    axon_snr : (float, float)
        Deepest trough of the unit's axon component outside the 11 x 11 soma square, before the
        electrode gain, over the eimage noise std.
    soma_to_axon : (float, float)
        Soma trough over that axon trough (units without an axon take it times a drawn SNR).
    velocity_m_s : (float, float)
        Axon conduction velocity.
    turning_deg : float
        Largest total turning of an axon from soma to ONH (signed, uniform in +-).
    axon_height_um, soma_height_um : (float, float)
        Source heights above the electrode plane.
    soma_radius_um, dendrite_radius_um : (float, float)
        Radii of the somatic sink disc and the dendritic return disc.
    return_fraction : (float, float)
        Share of the somatic current returned through the dendritic disc.
    rise_ms, decay_ms : (float, float)
        Time constants of the membrane action potential.
    axon_delay_frames : (float, float)
        Axon trough at the soma relative to the soma trough (negative: the axon fires first).
    rate_hz : (float, float)
        Firing rates (set the foreign spikes per eimage).
    gain : (float, float)
        Per-electrode gain, drawn once per scene.
    noise_exponent : (float, float)
        ``a`` of the noise's 1/f^a power spectrum, per scene.
    common_mode_fraction, smooth_fraction : (float, float)
        Variance shares of the common-mode and smooth-field noise, per scene.
    onh_distance : (float, float)
        ONH distance from the array centre in electrodes; its direction is uniform in ``onh_angle_deg``.
    onh_angle_deg : (float, float)
        Direction of the ONH from the centre (0 = +axis 2, 90 = +axis 1).
    min_soma_gap, min_onh_gap : float
        Least distance between somas, and from a soma to the ONH, in electrodes.
    soma_margin : float
        Somas lie at least this many electrodes inside the array's edges.
    """

    name: str
    n_units: int = 30
    no_axon_fraction: float = 0.25
    n_spikes: tuple[int, int] = (20, 500)
    noise_std: tuple[float, float] = (0.3, 3.0)
    axon_snr: tuple[float, float] = (4.0, 15.0)
    soma_to_axon: tuple[float, float] = (3.0, 12.0)
    velocity_m_s: tuple[float, float] = (0.4, 2.0)
    turning_deg: float = 20.0
    axon_height_um: tuple[float, float] = (10.0, 30.0)
    soma_height_um: tuple[float, float] = (10.0, 30.0)
    soma_radius_um: tuple[float, float] = (5.0, 12.0)
    dendrite_radius_um: tuple[float, float] = (40.0, 90.0)
    return_fraction: tuple[float, float] = (0.6, 1.0)
    rise_ms: tuple[float, float] = (0.08, 0.2)
    decay_ms: tuple[float, float] = (0.25, 0.8)
    axon_delay_frames: tuple[float, float] = (-1.0, 0.5)
    rate_hz: tuple[float, float] = (2.0, 20.0)
    gain: tuple[float, float] = (0.7, 1.3)
    noise_exponent: tuple[float, float] = (0.5, 1.5)
    common_mode_fraction: tuple[float, float] = (0.05, 0.25)
    smooth_fraction: tuple[float, float] = (0.1, 0.4)
    onh_distance: tuple[float, float] = (33.0, 45.0)
    onh_angle_deg: tuple[float, float] = (0.0, 360.0)
    min_soma_gap: float = 5.0
    min_onh_gap: float = 10.0
    soma_margin: float = 6.0


HELD_OUT_SETS: dict[str, HeldOutSpec] = {
    "nominal": HeldOutSpec("nominal"),
    "low_snr": HeldOutSpec("low_snr", axon_snr=(1.5, 2.0)),
    "slow_axons": HeldOutSpec("slow_axons", velocity_m_s=(0.12, 0.25)),
    "fast_axons": HeldOutSpec("fast_axons", velocity_m_s=(2.5, 3.5)),
    "crowded": HeldOutSpec("crowded", n_units=60, n_spikes=(3, 15), noise_std=(2.0, 6.0), rate_hz=(10.0, 40.0),
                           min_soma_gap=2.5),
}


def heldout_scene(spec: HeldOutSpec, rng: np.random.Generator) -> Scene:
    """Eimages of ``spec.n_units`` units whose axons run toward one ONH, and the truth.

    Parameters
    ----------
    spec : HeldOutSpec
    rng : numpy.random.Generator
        The only source of randomness: the same state gives the same scene.

    Returns
    -------
    Scene
        ``direction_deg`` is the chord from the soma to where the axon leaves the array (or
        reaches the ONH), NaN for units without an axon; ``axon_frames`` counts frames
        t >= 10 in which the unit's noise-free axon component (with gain) is at least a noise
        std deep on some electrode outside the 11 x 11 square around the soma.
    """
    centre = np.full(2, (CHIP - 1) / 2)
    angle = np.radians(rng.uniform(*spec.onh_angle_deg))
    onh = centre + rng.uniform(*spec.onh_distance) * np.array([np.sin(angle), np.cos(angle)])  # (axis 1, axis 2)
    gain = rng.uniform(*spec.gain, size=(CHIP, CHIP)).astype(np.float32)
    somas = _place_somas(spec, onh, rng)
    ids = [f"unit_{i + 1:03d}" for i in range(spec.n_units)]
    without_axon = set(rng.choice(spec.n_units, size=round(spec.no_axon_fraction * spec.n_units), replace=False))

    templates, axons, axon_frames, directions, noise_stds, counts = [], [], {}, {}, [], []
    for i, (unit_id, soma) in enumerate(zip(ids, somas)):
        noise_std, n = _log_uniform(rng, *spec.noise_std), int(round(_log_uniform(rng, *spec.n_spikes)))
        template, axon, direction = _unit_template(spec, soma, onh, noise_std, i not in without_axon, rng)
        templates.append(template)
        axons.append(axon)
        noise_stds.append(noise_std)
        counts.append(n)
        directions[unit_id] = direction
        window = axon[-TEMPLATE_FRAMES[0]:-TEMPLATE_FRAMES[0] + N_FRAMES] * gain
        axon_frames[unit_id] = visible_axon_frames(window, noise_std, *np.round(soma).astype(int))

    rates = rng.uniform(*spec.rate_hz, size=spec.n_units)
    stack = np.concatenate(templates, axis=0, dtype=np.float32).reshape(-1, CHIP * CHIP)
    exponent = rng.uniform(*spec.noise_exponent)
    shares = rng.uniform(*spec.common_mode_fraction), rng.uniform(*spec.smooth_fraction)
    eimages, labels = {}, {}
    for i, unit_id in enumerate(ids):
        own = templates[i][-TEMPLATE_FRAMES[0]:-TEMPLATE_FRAMES[0] + N_FRAMES]
        foreign = _foreign(i, counts[i], rates, stack, rng) / counts[i]
        noise = _noise(rng, exponent, *shares) * noise_stds[i]
        eimages[unit_id] = ((own + foreign + noise) * gain).astype(np.float32)
        axon = axons[i][-TEMPLATE_FRAMES[0]:-TEMPLATE_FRAMES[0] + N_FRAMES]
        labels[unit_id] = trough_labels(axon * gain, (own - axon) * gain, noise_stds[i] * gain)
    return Scene(eimages, directions, axon_frames, float(onh[0]), float(onh[1]), labels)


def _place_somas(spec: HeldOutSpec, onh: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    somas = np.empty((0, 2))
    for _ in range(20_000):
        soma = rng.uniform(spec.soma_margin, CHIP - 1 - spec.soma_margin, size=2)
        if np.hypot(*(soma - onh)) >= spec.min_onh_gap and np.all(np.hypot(*(somas - soma).T) >= spec.min_soma_gap):
            somas = np.vstack([somas, soma])
            if len(somas) == spec.n_units:
                return list(somas)
    raise ValueError(f"held-out set '{spec.name}': cannot place {spec.n_units} somas {spec.min_soma_gap} "
                     "electrodes apart; lower n_units or min_soma_gap")


def _unit_template(spec, soma, onh, noise_std, with_axon, rng):
    """Noise-free high-passed template (frames TEMPLATE_FRAMES, before gain), its axon part, direction."""
    rise, decay = rng.uniform(*spec.rise_ms), rng.uniform(*spec.decay_ms)
    tau, first, second = _membrane_derivatives(rise, decay)
    # The soma's current follows -dV/dt with a touch of d2V/dt2; the axon's, d2V/dt2. Both scaled to a trough of -1.
    soma_wave = -first + rng.uniform(0.0, 0.3) * second * np.abs(first).max() / np.abs(second).max()
    soma_wave, axon_wave = soma_wave / -soma_wave.min(), second / -second.min()
    soma_mix = rng.uniform(*spec.soma_to_axon)
    axon_snr = rng.uniform(*spec.axon_snr)

    # Soma: sink disc minus dendritic return disc, the soma trough at frame 10.
    sink = _disc(soma, rng.uniform(*spec.soma_radius_um) / PITCH_UM, 19)
    ret = _disc(soma, rng.uniform(*spec.dendrite_radius_um) / PITCH_UM, 61)
    height = rng.uniform(*spec.soma_height_um) / PITCH_UM
    weights = np.concatenate([np.full(len(sink), 1 / len(sink)),
                              np.full(len(ret), -rng.uniform(*spec.return_fraction) / len(ret))])
    coupling = _kernel(np.vstack([sink, ret]), height) @ weights
    soma_course = _highpassed(np.interp(_LONG - SPIKE_FRAME + _trough_frame(tau, soma_wave),
                                        tau / FRAME_MS, soma_wave, left=0.0, right=0.0))[None]
    soma_part = (soma_course.T * coupling[None])            # (frames, electrodes)

    axon_part = np.zeros_like(soma_part)
    direction = float("nan")
    if with_axon:
        path, direction = _axon_path(soma, onh, rng.uniform(-1, 1) * np.radians(spec.turning_deg))
        speed = rng.uniform(*spec.velocity_m_s) * FRAME_S / (PITCH_UM * 1e-6)   # electrodes per frame
        start = SPIKE_FRAME + rng.uniform(*spec.axon_delay_frames) - _trough_frame(tau, axon_wave)
        arclength = np.arange(len(path)) * 0.5
        delays = _LONG[None, :] - start - arclength[:, None] / speed
        courses = np.interp(delays, tau / FRAME_MS, axon_wave, left=0.0, right=0.0)
        courses = _highpassed(courses)                   # (points, long frames)
        axon_part = (_kernel(path, rng.uniform(*spec.axon_height_um) / PITCH_UM) @ courses).T
    cut = slice(TEMPLATE_FRAMES[0] - _LONG[0], TEMPLATE_FRAMES[1] - _LONG[0])
    soma_part, axon_part = soma_part[cut], axon_part[cut]

    # Amplitudes: the axon's deepest trough outside the soma square = SNR x noise std; soma trough from it.
    window = slice(-TEMPLATE_FRAMES[0], -TEMPLATE_FRAMES[0] + N_FRAMES)
    outside = ~_soma_square(soma).ravel()
    axon_depth = -axon_part[window][:, outside].min() if with_axon else 0.0
    if axon_depth > 0:
        axon_part *= axon_snr * noise_std / axon_depth
    soma_part *= soma_mix * axon_snr * noise_std / -soma_part[window].min()
    taper = _end_taper(cut.stop - cut.start)[:, None]
    shape = (-1, CHIP, CHIP)
    return ((soma_part + axon_part) * taper).reshape(shape), axon_part.reshape(shape), direction


def _membrane_derivatives(rise_ms: float, decay_ms: float):
    """``tau`` (ms) and the first and second derivatives of the membrane AP, on a 5 us grid."""
    tau = np.arange(-12 * rise_ms, 12 * decay_ms, _FINE_STEP_MS)
    v = 1 / (np.exp(-tau / rise_ms) + np.exp(tau / decay_ms))
    first = np.gradient(v, _FINE_STEP_MS)
    return tau, first, np.gradient(first, _FINE_STEP_MS)


def _trough_frame(tau: np.ndarray, wave: np.ndarray) -> float:
    return float(tau[np.argmin(wave)]) / FRAME_MS


def _highpassed(courses: np.ndarray) -> np.ndarray:
    """load_recording's filter along the last axis (time, in frames)."""
    return signal.sosfiltfilt(_highpass_sos(), courses, axis=-1)


def _disc(centre: np.ndarray, radius: float, n: int) -> np.ndarray:
    """``n`` points spread evenly over a disc (a sunflower spiral), in electrodes."""
    k = np.arange(n) + 0.5
    r, phi = radius * np.sqrt(k / n), k * np.pi * (3 - np.sqrt(5))
    return centre + np.column_stack([r * np.sin(phi), r * np.cos(phi)])


def _kernel(points: np.ndarray, height: float) -> sparse.csr_matrix:
    """Electrodes x points coupling ``1/sqrt(d^2+h^2) - 1/sqrt(R^2+h^2)``, zero beyond R (electrodes)."""
    offsets = np.arange(-KERNEL_RADIUS, KERNEL_RADIUS + 1)
    base = np.round(points).astype(int)
    rows = base[:, 0, None, None] + offsets[None, :, None]
    cols = base[:, 1, None, None] + offsets[None, None, :]
    rows, cols = np.broadcast_arrays(rows, cols)
    distance = np.hypot(rows - points[:, 0, None, None], cols - points[:, 1, None, None])
    value = 1 / np.hypot(distance, height) - 1 / np.hypot(KERNEL_RADIUS, height)
    point = np.broadcast_to(np.arange(len(points))[:, None, None], rows.shape)
    keep = (value > 0) & (rows >= 0) & (rows < CHIP) & (cols >= 0) & (cols < CHIP)
    return sparse.csr_matrix((value[keep], (rows[keep] * CHIP + cols[keep], point[keep])),
                             shape=(CHIP * CHIP, len(points)))


def _axon_path(soma: np.ndarray, onh: np.ndarray, turning: float) -> tuple[np.ndarray, float]:
    """Points every 0.5 electrode from the soma toward the ONH (while within reach of the array), direction.

    A quadratic Bezier curve whose control point sits off the chord's middle by
    ``L/2 tan(turning/2)`` turns by ``turning`` in total. The direction (degrees, 0 = +axis 2,
    90 = +axis 1) is the chord from the soma to the last point on the array.
    """
    chord = onh - soma
    length = np.hypot(*chord)
    normal = np.array([-chord[1], chord[0]]) / length
    control = soma + chord / 2 + normal * length / 2 * np.tan(turning / 2)
    u = np.linspace(0.0, 1.0, 4000)[:, None]
    curve = (1 - u) ** 2 * soma + 2 * u * (1 - u) * control + u ** 2 * onh
    arclength = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(curve, axis=0).T))])
    even = np.arange(0.0, arclength[-1], 0.5)
    path = np.column_stack([np.interp(even, arclength, curve[:, k]) for k in (0, 1)])
    on_array = np.all((path >= 0) & (path <= CHIP - 1), axis=1)
    last = len(path) - 1 if on_array.all() else int(np.argmin(on_array)) - 1
    end = onh if on_array.all() else path[last]
    direction = float(np.degrees(np.arctan2(*(end - soma))) % 360.0)
    reach = np.all((path > -KERNEL_RADIUS) & (path < CHIP - 1 + KERNEL_RADIUS), axis=1)
    return path[:len(reach) if reach.all() else int(np.argmin(reach))], direction


def _soma_square(soma: np.ndarray) -> np.ndarray:
    mask = np.zeros((CHIP, CHIP), dtype=bool)
    row, col = np.round(soma).astype(int)
    mask[max(0, row - _SOMA_BOX):row + _SOMA_BOX + 1, max(0, col - _SOMA_BOX):col + _SOMA_BOX + 1] = True
    return mask


def _end_taper(n: int, ramp: int = 15) -> np.ndarray:
    """1 in the middle, cosine ramps to 0 at both ends: a foreign template has no step where it is cut."""
    taper = np.ones(n)
    edge = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
    taper[:ramp], taper[-ramp:] = edge, edge[::-1]
    return taper


def _foreign(unit: int, n_spikes: int, rates: np.ndarray, stack: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sum of the other units' templates at Poisson counts of lags over ``n_spikes`` windows (not yet / n)."""
    length = TEMPLATE_FRAMES[1] - TEMPLATE_FRAMES[0]
    lags = np.arange(-(TEMPLATE_FRAMES[1] - 1), N_FRAMES - TEMPLATE_FRAMES[0])   # foreign trough at frame 10 + lag
    expected = n_spikes * rates[:, None] * FRAME_S * np.ones(len(lags))
    expected[unit] = 0.0
    counts = rng.poisson(expected)
    other, lag_index = np.nonzero(counts)
    mixing = np.zeros((N_FRAMES, len(rates) * length), dtype=np.float32)
    t = np.arange(N_FRAMES)
    position = t[None, :] - lags[lag_index][:, None] - TEMPLATE_FRAMES[0]     # template frame index
    valid = (position >= 0) & (position < length)
    frame = np.broadcast_to(t, position.shape)[valid]
    column = (other[:, None] * length + position)[valid]
    np.add.at(mixing, (frame, column), np.broadcast_to(counts[other, lag_index][:, None], position.shape)[valid])
    used = np.flatnonzero(mixing.any(axis=0))
    if len(used) > len(stack) // 2:    # copying most of the stack costs more than multiplying zeros
        return (mixing @ stack).reshape(N_FRAMES, CHIP, CHIP)
    return (mixing[:, used] @ stack[used]).reshape(N_FRAMES, CHIP, CHIP)


def _noise(rng: np.random.Generator, exponent: float, common_share: float, smooth_share: float) -> np.ndarray:
    """Unit-std band-limited noise (N_FRAMES, CHIP, CHIP): local + smooth field + common mode."""
    local = _coloured(rng, exponent, (CHIP, CHIP))
    smooth = (_coloured(rng, exponent, (_COARSE, _COARSE)).reshape(N_FRAMES, -1) @ _spline_basis()).reshape(local.shape)
    common = _coloured(rng, exponent, (1, 1))
    parts = [(1 - common_share - smooth_share, local), (smooth_share, smooth), (common_share, common)]
    noise = sum(np.sqrt(share) * part / part.std() for share, part in parts)
    return noise / noise.std()


def _coloured(rng: np.random.Generator, exponent: float, shape: tuple[int, int]) -> np.ndarray:
    """Noise with a 1/f^exponent spectrum times the zero-phase high-pass's |H|^2 (256-frame circular draw)."""
    freqs, response = _highpass_power()
    amplitude = np.where(freqs > 0, response / np.maximum(freqs, 1.0) ** (exponent / 2), 0.0).astype(np.float32)
    white = rng.standard_normal((_NOISE_DRAW, *shape), dtype=np.float32)
    return np.fft.irfft(np.fft.rfft(white, axis=0) * amplitude[:, None, None], n=_NOISE_DRAW, axis=0)[:N_FRAMES]


@functools.cache
def _highpass_power() -> tuple[np.ndarray, np.ndarray]:
    """Frequencies of a ``_NOISE_DRAW``-frame draw and |H|^2 of load_recording's zero-phase high-pass there."""
    freqs = np.fft.rfftfreq(_NOISE_DRAW, FRAME_S)
    return freqs, np.abs(signal.sosfreqz(_highpass_sos(), worN=freqs, fs=1 / FRAME_S)[1]) ** 2


@functools.cache
def _highpass_sos() -> np.ndarray:
    return signal.butter(HIGHPASS_ORDER, HIGHPASS_HZ, "highpass", fs=1 / FRAME_S, output="sos")


@functools.cache
def _spline_basis() -> np.ndarray:
    """(coarse points, electrodes) matrix: a cubic spline from the coarse noise grid to the array."""
    impulses = np.eye(_COARSE * _COARSE).reshape(-1, _COARSE, _COARSE)
    return ndimage.zoom(impulses, (1, CHIP / _COARSE, CHIP / _COARSE), order=3).reshape(len(impulses), -1).astype(np.float32)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))

