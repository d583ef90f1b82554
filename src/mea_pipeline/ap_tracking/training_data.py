"""Synthetic electrical images with known axon voxels, for training and checking the CNN.

Each unit is a :class:`~mea_pipeline.synth.cells.Cell` (soma spike on a 7 x 7 footprint, a
straight axon carrying a travelling negative deflection) rendered by
:func:`~mea_pipeline.synth.templates.unit_template` at 20 kHz, the same images the synthetic
recordings contain. As step 1 does, the spike's contribution is high-passed (Butterworth order
2, 100 Hz, zero-phase; the template sits on zeros, so filtering it alone equals filtering the
recording and averaging) and cut to the window -10..+40 samples. The mean over ``n`` spikes
carries sensor noise of std ``noise / sqrt(n)``, added as white Gaussian noise (the high-pass
removes well under 1 % of white-noise power at 20 kHz), and the spikes of other units that fell
into the unit's windows: each such "foreign" spike adds the other cell's template at a random
lag, divided by ``n`` (with 3-12 spikes, as in short synthetic recordings, a foreign soma is a
blob of tens of ADC counts).

Labels come from the noise-free axon component rendered on its own: a voxel is positive when
it is a clear negative deflection (at most ``-positive_depth`` x the axon amplitude and at
least ``min_positive_snr`` noise stds deep), negative when it is nearly silent (above
``-negative_depth`` x the amplitude) and ignored in between, where a foreign axon is visible
(locally an axon is an axon) and on the 2-voxel border where no cube is centred. The soma's
own trough is a negative (post-processing masks it anyway, and a broad blob is what a foreign
spike looks like too) except where the axon leaves it. Values stay raw ADC counts, as the
lab's network expects.

Template layout: axis 1 = column - 1, axis 2 = row - 1 (:func:`mea_pipeline.mcs_io.sensor_frame_index`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import signal

from ..eimage import EimageParams
from ..synth.cells import CHIP, MAX_AXON, PITCH_UM, Cell
from ..synth.templates import FOOTPRINT, unit_template, window
from .cnn import CUBE, HALF

SAMPLING_RATE_HZ = 20_000.0
POSITIVE, NEGATIVE, IGNORED = 1, 0, -1
_FILTER_PAD = 400  # zero samples either side: the 100 Hz high-pass response decays within ~300
MAX_FOREIGN = 12   # foreign spikes rendered per unit (more, each divided by n, only add a faint haze)


@dataclass(frozen=True)
class UnitDataSpec:
    """Ranges the synthetic units are drawn from (recorded in the validation JSON).

    Log-uniform draws for spike counts and axon amplitudes, uniform otherwise.
    """

    n_spikes: tuple[int, int] = (2, 3000)
    sensor_noise_adc: tuple[float, float] = (8.0, 16.0)
    soma_amplitude_adc: tuple[float, float] = (40.0, 300.0)
    axon_amplitude_adc: tuple[float, float] = (4.0, 60.0)
    min_axon_snr: float = 3.0          # axon amplitude >= this x the eimage noise std
    axon_velocity_m_s: tuple[float, float] = (0.3, 2.0)
    axon_length_electrodes: tuple[float, float] = (12.0, MAX_AXON)
    no_axon_fraction: float = 0.15     # units without an axon (displaced cells, amacrines)
    foreign_rate_hz: tuple[float, float] = (0.0, 300.0)  # summed rate of the other units' spikes
    positive_depth: float = 0.3
    min_positive_snr: float = 1.5
    negative_depth: float = 0.1

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SyntheticUnit:
    """One unit's eimage (T, A1, A2) float32, its labels (int8) and how it was drawn.

    ``distractor`` marks voxels where the unit's own soma or other units' spikes dip at least
    2 noise stds.
    """

    eimage: np.ndarray
    labels: np.ndarray
    distractor: np.ndarray
    cell: Cell
    n_spikes: int
    noise_std: float


@dataclass
class Template:
    """A cell's high-passed spike contribution over ``synth.templates.window`` (spike at sample ``pre``)."""

    soma: np.ndarray
    axon: np.ndarray


def make_units(n_units: int, rng: np.random.Generator, spec: UnitDataSpec = UnitDataSpec(),
               n_foreign_cells: int = 24) -> list[SyntheticUnit]:
    """``n_units`` random units drawn from ``spec`` (deterministic for the generator's state).

    Their foreign spikes come from a shared set of ``n_foreign_cells`` random cells.
    """
    foreign = [cell_template(random_cell(rng, spec, noise_std=1.0)) for _ in range(n_foreign_cells)]
    return [random_unit(rng, spec, foreign) for _ in range(n_units)]


def random_cell(rng: np.random.Generator, spec: UnitDataSpec, noise_std: float) -> Cell:
    """A cell at a random electrode, with an axon (random direction) unless drawn axon-free."""
    soma = rng.integers(4, CHIP - 2, size=2).astype(np.float64)    # 1-based (row, column)
    cell = _cell(soma, float(rng.uniform(*spec.soma_amplitude_adc)))
    if rng.random() >= spec.no_axon_fraction:
        low = max(spec.axon_amplitude_adc[0], spec.min_axon_snr * noise_std)
        cell.axon_amplitude_adc = _log_uniform(rng, low, max(low, spec.axon_amplitude_adc[1]))
        cell.axon_velocity_m_s = float(rng.uniform(*spec.axon_velocity_m_s))
        cell.axon_path = straight_axon(soma, rng.uniform(0, 2 * np.pi), rng.uniform(*spec.axon_length_electrodes))
    return cell


def random_unit(rng: np.random.Generator, spec: UnitDataSpec, foreign: list[Template]) -> SyntheticUnit:
    """One random unit (see :func:`random_cell`) with a random spike count and foreign spikes."""
    n_spikes = int(round(_log_uniform(rng, *spec.n_spikes)))
    noise_std = float(rng.uniform(*spec.sensor_noise_adc)) / np.sqrt(n_spikes)
    cell = random_cell(rng, spec, noise_std)
    rate = float(rng.uniform(*spec.foreign_rate_hz))
    n_foreign = min(MAX_FOREIGN, rng.poisson(n_spikes * rate * _foreign_window_s()))
    events = [(foreign[i], int(lag)) for i, lag in zip(rng.integers(0, len(foreign), n_foreign),
                                                       _foreign_lags(rng, n_foreign))]
    return render_unit(cell, n_spikes, noise_std, rng, spec, events)


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
                spec: UnitDataSpec = UnitDataSpec(), foreign: list[tuple[Template, int]] = (),
                template: Template | None = None) -> SyntheticUnit:
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
    labels = voxel_labels(axon, cell, noise_std, spec)
    labels[crowd_axon / n_spikes <= -noise_std] = IGNORED
    distractor = (crowd / n_spikes <= -2 * noise_std) | (soma <= -2 * noise_std)
    return SyntheticUnit(eimage=eimage.astype(np.float32), labels=labels, distractor=distractor, cell=cell,
                         n_spikes=n_spikes, noise_std=noise_std)


def voxel_labels(axon: np.ndarray, cell: Cell, noise_std: float, spec: UnitDataSpec = UnitDataSpec()) -> np.ndarray:
    """int8 labels: POSITIVE where the axon component is a clear trough, NEGATIVE where silent."""
    labels = np.full(axon.shape, IGNORED, dtype=np.int8)
    depth = cell.axon_amplitude_adc or 0.0
    if depth > 0:
        labels[axon > -spec.negative_depth * depth] = NEGATIVE
        labels[axon <= -max(spec.positive_depth * depth, spec.min_positive_snr * noise_std)] = POSITIVE
    else:
        labels[:] = NEGATIVE
    # Where the axon leaves the soma, soma and axon troughs overlap: neither label is clean there.
    # Template layout: axis 1 = column - 1, axis 2 = row - 1 (see mcs_io.sensor_frame_index).
    c, r = cell.column - 1, cell.row - 1
    footprint = labels[:, max(c - FOOTPRINT, 0):c + FOOTPRINT + 1, max(r - FOOTPRINT, 0):r + FOOTPRINT + 1]
    footprint[footprint == POSITIVE] = IGNORED
    border = np.ones(axon.shape, dtype=bool)
    border[HALF:-HALF, HALF:-HALF, HALF:-HALF] = False
    labels[border] = IGNORED
    return labels


def training_cubes(n_units: int, rng: np.random.Generator, spec: UnitDataSpec = UnitDataSpec(),
                   per_unit: int = 200, negatives_per_positive: float = 3.0, n_foreign_cells: int = 24):
    """Cubes of ``n_units`` random units, each unit rendered, sampled (:func:`sample_cubes`) and dropped."""
    foreign = [cell_template(random_cell(rng, spec, noise_std=1.0)) for _ in range(n_foreign_cells)]
    parts = [sample_cubes(random_unit(rng, spec, foreign), rng, per_unit, negatives_per_positive)
             for _ in range(n_units)]
    return np.concatenate([c for c, _ in parts]), np.concatenate([t for _, t in parts])


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
    axon_frames: dict[str, float]        # frames the axon signal takes to cross the array
    onh_axis1: float
    onh_axis2: float


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
        unit = render_unit(cell, n_spikes, spec.sensor_noise_adc / np.sqrt(n_spikes), rng, foreign=events,
                           template=templates[i])
        path = cell.axon_path
        d_row, d_column = path[-1] - path[0]
        scene.eimages[unit_id] = unit.eimage
        scene.direction_deg[unit_id] = float(np.degrees(np.arctan2(d_column, d_row)) % 360)
        length_um = np.hypot(d_row, d_column) * PITCH_UM
        scene.axon_frames[unit_id] = length_um / (cell.axon_velocity_m_s * 1e6 / SAMPLING_RATE_HZ)
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
    """Step 1's high-pass applied to a spike template (zero-padded, so it equals filtering the recording)."""
    params = EimageParams()
    sos = signal.butter(params.filter_order, params.cutoff_hz, "high", fs=SAMPLING_RATE_HZ, output="sos")
    active = np.flatnonzero(np.any(template != 0, axis=0).ravel())   # electrodes the spike touches
    traces = template.reshape(len(template), -1)[:, active].astype(np.float64)
    padded = np.pad(traces, ((_FILTER_PAD, _FILTER_PAD), (0, 0)))
    out = np.zeros((len(template), template.shape[1] * template.shape[2]))
    out[:, active] = signal.sosfiltfilt(sos, padded, axis=0)[_FILTER_PAD:-_FILTER_PAD]
    return out.reshape(template.shape)


def _eimage_window(template: np.ndarray) -> np.ndarray:
    """Cut step 1's eimage window (-10..+40 samples around the spike) out of a high-passed template."""
    pre, _ = window(SAMPLING_RATE_HZ)
    start, stop = EimageParams().window
    return template[pre + start:pre + stop].astype(np.float64)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))
