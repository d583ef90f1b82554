"""Synthetic electrical images with known axon voxels: the labels, the training cubes, the synth scene.

Labels (:func:`trough_labels`) come from a unit's own noise-free axon component rendered on its
own: a voxel is positive when it is a clear negative deflection (at most ``-positive_depth`` x
that electrode's axon trough and at least ``min_positive_snr`` local noise stds deep), negative
when it is nearly silent and ignored in between, where the unit's soma outweighs its axon (the
soma's own trough is not axon; post-processing masks the soma anyway), where another unit's axon
is visible (locally an axon is an axon, set by the generator) and on the 2-voxel border where no
cube is centred. Values stay raw ADC counts, as the lab's network expects. The training units
themselves come from :mod:`~mea_pipeline.ap_training.broad_units`.

:func:`onh_scene` is a recording as ``mea-pipeline synth`` makes them: each
:class:`~mea_pipeline.synth.cells.Cell` rendered by :func:`~mea_pipeline.synth.templates.unit_template`
at 20 kHz, high-passed as load_recording does (Butterworth order 2, 100 Hz, zero-phase; the template sits
on zeros, so filtering it alone equals filtering the recording and averaging), cut to the window
-10..+40 samples, with white noise of std ``noise / sqrt(n)`` and the other units' spikes that fell
into the unit's windows, each divided by ``n``. Template layout: axis 1 = column - 1, axis 2 =
row - 1 (:func:`mea_pipeline.mcs_io.sensor_frame_index`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import signal

from ..ap_tracking.cnn import CUBE, HALF
from ..ap_tracking.params import APTrackingParams
from ..eimage import EimageParams
from ..synth.cells import CHIP, MAX_AXON, Cell
from ..synth.templates import unit_template, window

TRACKING = APTrackingParams()  # the centroid frames and soma square step ap_tracking uses by default

SAMPLING_RATE_HZ = 20_000.0
POSITIVE, NEGATIVE, IGNORED = 1, 0, -1
_FILTER_PAD = 400  # zero samples either side: the 100 Hz high-pass response decays within ~300


@dataclass
class SyntheticUnit:
    """One unit's eimage (T, A1, A2) float32, its labels (int8) and how it was drawn.

    ``distractor`` marks voxels where the unit's own soma or other units' spikes dip at least
    2 noise stds; ``axon`` is the unit's own noise-free axon component as the eimage shows it.
    """

    eimage: np.ndarray
    labels: np.ndarray
    distractor: np.ndarray
    axon: np.ndarray
    n_spikes: int
    noise_std: float


@dataclass
class Template:
    """A cell's high-passed spike contribution over ``synth.templates.window`` (spike at sample ``pre``)."""

    soma: np.ndarray
    axon: np.ndarray


def straight_axon(soma: np.ndarray, angle_rad: float, length: float) -> np.ndarray:
    """(k, 2) points every electrode from the soma (row, column) along ``angle_rad``, clipped at the chip edge.

    ``angle_rad`` is measured from +row toward +column (eimage: from +axis 2 toward +axis 1).
    """
    unit = np.array([np.cos(angle_rad), np.sin(angle_rad)])
    limits = [((CHIP if u > 0 else 1) - s) / u for s, u in zip(soma, unit) if abs(u) > 1e-9]
    steps = np.arange(0.0, min([length] + limits) + 1e-9, 1.0)
    return soma[None, :] + steps[:, None] * unit[None, :]


def cell_template(cell: Cell) -> Template:
    """High-passed soma and axon parts of one spike of ``cell`` over the template window."""
    soma = _highpass(unit_template(replace(cell, axon_path=None), SAMPLING_RATE_HZ))
    has_axon = cell.axon_path is not None and len(cell.axon_path) > 1
    axon = (_highpass(unit_template(replace(cell, amplitude_adc=0.0), SAMPLING_RATE_HZ)) if has_axon
            else np.zeros_like(soma))
    return Template(soma.astype(np.float32), axon.astype(np.float32))


def render_unit(cell: Cell, n_spikes: int, noise_std: float, rng: np.random.Generator,
                foreign: list[tuple[Template, int]] = (), template: Template | None = None) -> SyntheticUnit:
    """Eimage (own spike + foreign spikes / n + noise) and per-voxel labels of ``cell``.

    ``foreign`` lists (template, lag in samples of the other spike after this unit's spike);
    ``template`` is ``cell``'s own when already rendered.
    """
    own = cell_template(cell) if template is None else template
    soma, axon = _eimage_window(own.soma), _eimage_window(own.axon)
    crowd = np.zeros_like(soma)
    crowd_axon = np.zeros_like(soma)
    for other, lag in foreign:
        _add_lagged(crowd, other.soma + other.axon, lag)
        _add_lagged(crowd_axon, other.axon, lag)
    eimage = soma + axon + crowd / n_spikes + rng.normal(0.0, noise_std, soma.shape)
    labels = trough_labels(axon, soma, noise_std)
    labels[crowd_axon / n_spikes <= -noise_std] = IGNORED
    distractor = (crowd / n_spikes <= -2 * noise_std) | (soma <= -2 * noise_std)
    return SyntheticUnit(eimage=eimage.astype(np.float32), labels=labels, distractor=distractor, axon=axon,
                         n_spikes=n_spikes, noise_std=noise_std)


def trough_labels(axon: np.ndarray, soma: np.ndarray, noise, positive_depth: float = 0.3,
                  min_positive_snr: float = 1.5, negative_depth: float = 0.1) -> np.ndarray:
    """int8 labels of one unit's voxels from its noise-free axon and soma components.

    Parameters
    ----------
    axon, soma : numpy.ndarray
        (T, A1, A2) noise-free components as the eimage shows them.
    noise : float or numpy.ndarray
        Noise std, scalar or broadcastable per electrode.
    positive_depth, min_positive_snr : float
        POSITIVE where ``axon <= -max(positive_depth * trough, min_positive_snr * noise)``,
        ``trough`` being that electrode's deepest axon value.
    negative_depth : float
        NEGATIVE where ``axon > -max(negative_depth * trough, noise / 2)`` (nearly silent).

    Returns
    -------
    numpy.ndarray
        int8 POSITIVE / NEGATIVE / IGNORED; ignored where the soma outweighs a positive
        voxel's axon signal and on the 2-voxel border.
    """
    trough = np.maximum(-axon.min(axis=0, keepdims=True), 0.0)
    labels = np.full(axon.shape, IGNORED, dtype=np.int8)
    labels[axon > -np.maximum(negative_depth * trough, 0.5 * noise)] = NEGATIVE
    positive = axon <= -np.maximum(positive_depth * trough, min_positive_snr * noise)
    labels[positive] = POSITIVE
    labels[positive & (np.abs(soma) > np.abs(axon))] = IGNORED
    border = np.ones(axon.shape, dtype=bool)
    border[HALF:-HALF, HALF:-HALF, HALF:-HALF] = False
    labels[border] = IGNORED
    return labels


def visible_axon_frames(axon: np.ndarray, noise_std: float, soma_axis1: int, soma_axis2: int) -> int:
    """Frames from the first centroid frame on where the noise-free axon is a noise std deep outside the soma's square.

    The frames and the square are the ones ap_tracking's centroids use and ignore (its default
    ``centroid_start_frame`` and ``exclude_radius``); a unit whose axon is visible in fewer
    frames than a pathway needs centroids cannot be tracked by any network.
    """
    exclude_radius = TRACKING.exclude_radius
    visible = axon[TRACKING.centroid_start_frame:] <= -noise_std
    visible[:, max(soma_axis1 - exclude_radius, 0):soma_axis1 + exclude_radius + 1,
            max(soma_axis2 - exclude_radius, 0):soma_axis2 + exclude_radius + 1] = False
    return int(np.count_nonzero(visible.any(axis=(1, 2))))


def sample_cubes(unit: SyntheticUnit, rng: np.random.Generator, per_unit: int = 200,
                 negatives_per_positive: float = 3.0):
    """Training cubes of one unit: up to ``per_unit`` positives and ``negatives_per_positive`` x as many negatives.

    A third of the negatives lie within 2 voxels of a positive (the axon's fading edges and
    rebound), a third on a distractor (the soma or another unit's spike dipping 2 noise stds)
    or a dip of 3 noise stds, the rest anywhere outside the ignored voxels; a short pool is made up from the
    last. Axon-free units contribute ``per_unit // 4`` negatives.

    Returns
    -------
    cubes : numpy.ndarray
        (N, 1, 5, 5, 5) float32.
    targets : numpy.ndarray
        (N,) float32, 1 = axon.
    """
    positives = np.flatnonzero(unit.labels.ravel() == POSITIVE)
    negatives = unit.labels == NEGATIVE
    n_pos = min(per_unit, len(positives))
    n_neg = max(int(round(negatives_per_positive * n_pos)), per_unit // 4)
    chosen = [_pick(positives, n_pos, rng)]
    for pool in (_dilate(unit.labels == POSITIVE, HALF), unit.distractor | (unit.eimage <= -3.0 * unit.noise_std)):
        chosen.append(_pick(np.flatnonzero((negatives & pool).ravel()), n_neg // 3, rng))
    # The rest anywhere; it may repeat a hard one, and a duplicate cube is harmless.
    chosen.append(_pick(np.flatnonzero(negatives.ravel()), n_neg - len(chosen[1]) - len(chosen[2]), rng))
    cubes = _cubes_at(unit.eimage, np.concatenate(chosen))
    return cubes, np.repeat([1.0, 0.0], [len(chosen[0]), len(cubes) - len(chosen[0])]).astype(np.float32)


@dataclass(frozen=True)
class SceneSpec:
    """A short synthetic recording's units, as the pipeline's tests make them (``synth.spec.SynthSpec``)."""

    n_units: int = 30
    onh_distance_electrodes: tuple[float, float] = (30.0, 45.0)   # from the chip centre
    n_spikes: tuple[int, int] = (3, 12)
    sensor_noise_adc: float = 12.0
    soma_amplitude_adc: tuple[float, float] = (80.0, 220.0)
    axon_amplitude_adc: tuple[float, float] = (20.0, 40.0)
    axon_velocity_m_s: tuple[float, float] = (0.5, 1.0)
    rate_hz: tuple[float, float] = (5.0, 12.0)
    min_soma_gap: float = 6.0


@dataclass
class Scene:
    """Eimages of units whose axons run toward one optic-nerve head, with the truth in eimage axes."""

    eimages: dict[str, np.ndarray]
    direction_deg: dict[str, float]      # 0 = +axis 2, 90 = +axis 1 (the tracker's convention)
    axon_frames: dict[str, int]          # frames the axon is visible in (:func:`visible_axon_frames`)
    onh_axis1: float
    onh_axis2: float
    labels: dict[str, np.ndarray] = field(default_factory=dict)   # per-voxel truth (:func:`trough_labels`)


def onh_scene(rng: np.random.Generator, spec: SceneSpec = SceneSpec()) -> Scene:
    """Units with straight axons toward a common ONH point, each seeing the others' spikes."""
    angle = rng.uniform(0, 2 * np.pi)
    centre = np.full(2, (CHIP + 1) / 2)
    onh = centre + rng.uniform(*spec.onh_distance_electrodes) * np.array([np.cos(angle), np.sin(angle)])
    cells, somas = [], []
    while len(cells) < spec.n_units:
        soma = rng.integers(6, CHIP - 5, size=2).astype(np.float64)
        if any(np.hypot(*(soma - s)) < spec.min_soma_gap for s in somas) or np.hypot(*(onh - soma)) < 2:
            continue
        somas.append(soma)
        cell = _cell(soma, float(rng.uniform(*spec.soma_amplitude_adc)))
        cell.axon_amplitude_adc = float(rng.uniform(*spec.axon_amplitude_adc))
        cell.axon_velocity_m_s = float(rng.uniform(*spec.axon_velocity_m_s))
        delta = onh - soma
        cell.axon_path = straight_axon(soma, np.arctan2(delta[1], delta[0]), min(np.hypot(*delta), MAX_AXON))
        cells.append(cell)
    templates = [cell_template(c) for c in cells]
    rates = rng.uniform(*spec.rate_hz, size=len(cells))
    scene = Scene({}, {}, {}, onh_axis1=float(onh[1] - 1), onh_axis2=float(onh[0] - 1))
    for i, cell in enumerate(cells):
        unit_id = f"unit_{i + 1:03d}"
        n_spikes = int(rng.integers(spec.n_spikes[0], spec.n_spikes[1] + 1))
        events = []
        for j in np.flatnonzero(np.arange(len(cells)) != i):
            count = rng.poisson(n_spikes * rates[j] * _foreign_window_s())
            events += [(templates[j], int(lag)) for lag in _foreign_lags(rng, count)]
        noise_std = spec.sensor_noise_adc / np.sqrt(n_spikes)
        unit = render_unit(cell, n_spikes, noise_std, rng, foreign=events, template=templates[i])
        path = cell.axon_path
        d_row, d_column = path[-1] - path[0]
        scene.eimages[unit_id] = unit.eimage
        scene.labels[unit_id] = unit.labels
        scene.direction_deg[unit_id] = float(np.degrees(np.arctan2(d_column, d_row)) % 360)
        # Template layout: axis 1 = column - 1, axis 2 = row - 1.
        scene.axon_frames[unit_id] = visible_axon_frames(unit.axon, noise_std, cell.column - 1, cell.row - 1)
    return scene


def _cell(soma: np.ndarray, amplitude: float) -> Cell:
    return Cell(unit_number=1, row=int(soma[0]), column=int(soma[1]), amplitude_adc=amplitude, is_rgc=True,
                silent=False, base_rate_hz=0.0, rf_center=(0.0, 0.0), rf_sigma=1.0, polarity="on", tuned=False,
                preferred_direction_deg=None)


def _foreign_window_s() -> float:
    """Lags (s) at which another unit's template overlaps this unit's eimage window."""
    pre, post = window(SAMPLING_RATE_HZ)
    start, stop = EimageParams().window
    return (stop - start + pre + post) / SAMPLING_RATE_HZ


def _foreign_lags(rng: np.random.Generator, n: int) -> np.ndarray:
    """Uniform lags (samples) of foreign spikes whose template overlaps the eimage window."""
    pre, post = window(SAMPLING_RATE_HZ)
    start, stop = EimageParams().window
    return rng.integers(start - post + 1, stop + pre, size=n)


def _add_lagged(out: np.ndarray, template: np.ndarray, lag: int) -> None:
    """Add a template (spike at sample ``pre``) whose spike lies ``lag`` samples after the eimage's."""
    pre, _ = window(SAMPLING_RATE_HZ)
    start, _ = EimageParams().window
    # eimage frame f is sample f + start after this unit's spike, i.e. template sample f + start - lag + pre
    first = start - lag + pre
    frames = np.arange(len(out))
    ok = (frames + first >= 0) & (frames + first < len(template))
    out[frames[ok]] += template[frames[ok] + first]


def _pick(indices: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(indices, size=min(n, len(indices)), replace=False)) if n > 0 else indices[:0]


def _cubes_at(eimage: np.ndarray, flat_centres: np.ndarray) -> np.ndarray:
    t, a, b = np.unravel_index(flat_centres, eimage.shape)
    offsets = np.arange(-HALF, HALF + 1)
    index = (t[:, None, None, None] + offsets[None, :, None, None],
             a[:, None, None, None] + offsets[None, None, :, None],
             b[:, None, None, None] + offsets[None, None, None, :])
    return eimage[index][:, None].astype(np.float32).reshape(-1, 1, CUBE, CUBE, CUBE)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Box dilation of a 3-D mask by ``radius`` voxels along each axis."""
    out = mask.copy()
    for axis in range(3):
        grown = out.copy()
        for shift in range(1, radius + 1):
            grown[(slice(None),) * axis + (slice(shift, None),)] |= out[(slice(None),) * axis + (slice(None, -shift),)]
            grown[(slice(None),) * axis + (slice(None, -shift),)] |= out[(slice(None),) * axis + (slice(shift, None),)]
        out = grown
    return out


def _highpass(template: np.ndarray) -> np.ndarray:
    """load_recording's high-pass applied to a spike template (zero-padded, so it equals filtering the recording)."""
    params = EimageParams()
    sos = signal.butter(params.filter_order, params.cutoff_hz, "high", fs=SAMPLING_RATE_HZ, output="sos")
    active = np.flatnonzero(np.any(template != 0, axis=0).ravel())   # electrodes the spike touches
    traces = template.reshape(len(template), -1)[:, active].astype(np.float64)
    padded = np.pad(traces, ((_FILTER_PAD, _FILTER_PAD), (0, 0)))
    out = np.zeros((len(template), template.shape[1] * template.shape[2]))
    out[:, active] = signal.sosfiltfilt(sos, padded, axis=0)[_FILTER_PAD:-_FILTER_PAD]
    return out.reshape(template.shape)


def _eimage_window(template: np.ndarray) -> np.ndarray:
    """Cut load_recording's eimage window (-10..+40 samples around the spike) out of a high-passed template."""
    pre, _ = window(SAMPLING_RATE_HZ)
    start, stop = EimageParams().window
    return template[pre + start:pre + stop].astype(np.float64)
