"""Simulated cells: placement, receptive fields, direction tuning, axons and spike trains.

Firing follows a linear-nonlinear-Poisson model per display frame: the screen's 15 x 15
checker contrast (``2 * level - 1``) is weighted by a centre-surround Gaussian receptive field
(centre weights sum to 1, surround to ``SURROUND_WEIGHT`` with twice the centre sigma),
filtered in time by a biphasic kernel peaking ~4 frames after the stimulus, signed by the
cell's polarity (ON +1, OFF -1), scaled to unit variance under the dense noise and passed
through ``rate = base * exp(clip(drive, -4, 3))``. While the moving bar, sweeping in direction
theta, covers a tuned cell's receptive field (:func:`bar_over_rf`: its band comes within
``TUNING_RF_SIGMAS`` centre sigmas of the RF centre), the bar adds a burst of ``BAR_BURST`` times
the base rate to the cell's rate and the sum is multiplied by ``exp(KAPPA * (cos(theta -
preferred) - 1))``: a burst in the preferred direction, silence in the null one (null-direction
inhibition silences even the spontaneous firing). The burst is there because an OFF cell's rate
is suppressed while a bright bar covers its centre: a gain alone would tune nothing. Before the
bar arrives and after it has left, a tuned cell fires as an untuned one. Outside the playlist
cells fire at their base rate. Spikes closer than ``REFRACTORY_S`` are dropped.

Geometry: somas sit on electrodes (1-based row, column, 16 µm pitch); the receptive-field
centre is the point of the 15 x 15 noise grid over the soma (the spec's stimulus -> electrode
transform, :mod:`.stimulus_frame`; by default ``(pos - 1) * 14 / 64``) plus jitter. Ganglion cells have an axon running straight from the soma toward the recording's
optic-nerve-head (ONH) point until it leaves the array (at most ``MAX_AXON`` electrodes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from .bar_geometry import bar_offset
from .render import CHECKER_PX, GRID
from .spec import SynthSpec, unit_numbers
from .stimulus_frame import rf_center_of_soma
from .timeline import Timeline

CHIP = 65
PITCH_UM = 16.0
SURROUND_WEIGHT = 0.35
KAPPA = 2.0
TUNING_RF_SIGMAS = 2.0
BAR_BURST = 20.0
REFRACTORY_S = 0.002
MAX_AXON = 45.0
KERNEL_FRAMES = 30


@dataclass
class Cell:
    """Ground truth of one simulated unit (positions 1-based electrodes, RF in checkers)."""

    unit_number: int
    row: int
    column: int
    amplitude_adc: float
    is_rgc: bool
    silent: bool
    base_rate_hz: float
    rf_center: tuple[float, float]
    rf_sigma: float
    polarity: str
    tuned: bool
    preferred_direction_deg: float | None
    axon_velocity_m_s: float | None = None
    axon_amplitude_adc: float | None = None
    axon_path: np.ndarray | None = None   # (k, 2) float (row, column) from the soma outward
    spikes: np.ndarray | None = None
    excluded: np.ndarray | None = None


def _place_somas(n: int, rng: np.random.Generator) -> np.ndarray:
    """Soma electrodes at least ``min_gap`` apart, away from the edges (footprint stays on chip)."""
    somas, min_gap = [], 6.0
    while len(somas) < n:
        for _ in range(2000):
            candidate = rng.integers(6, CHIP - 5, size=2)
            if all(np.hypot(*(candidate - s)) >= min_gap for s in somas):
                somas.append(candidate)
                break
        else:
            min_gap *= 0.8  # crowded chip: accept closer neighbours rather than loop forever
    return np.asarray(somas, dtype=np.int64)


def _axon_path(soma: np.ndarray, onh: np.ndarray) -> np.ndarray:
    """Points every electrode from the soma toward the ONH, stopping at the ONH or the chip edge."""
    delta = onh - soma
    distance = float(np.hypot(*delta))
    unit = delta / distance
    limits = [((CHIP if u > 0 else 1) - s) / u for s, u in zip(soma, unit) if abs(u) > 1e-9]
    length = min([distance, MAX_AXON] + limits)
    steps = np.arange(0.0, length + 1e-9, 1.0)
    return soma[None, :] + steps[:, None] * unit[None, :]


def make_cells(spec: SynthSpec, rng: np.random.Generator) -> tuple[list[Cell], np.ndarray]:
    """Cells of one recording and its ONH point (row, column; usually off the chip)."""
    angle = rng.uniform(0, 2 * np.pi)
    centre = np.array([(CHIP + 1) / 2, (CHIP + 1) / 2])
    # Inside the lab's 50-electrode ONH constraint circle (ref-steps-6-11.md 5.9), sometimes on the chip.
    onh = centre + rng.uniform(30, 45) * np.array([np.sin(angle), np.cos(angle)])
    somas = _place_somas(spec.n_units, rng)
    rgcs = [i for i in range(spec.n_units) if (i + 1) % spec.rgc_every != 0]
    tuned_cells = set(rng.choice(rgcs, round(spec.tuned_fraction * len(rgcs)), replace=False).tolist())
    cells = []
    for index, (number, soma) in enumerate(zip(unit_numbers(spec.n_units, spec.unit_id_gaps), somas)):
        is_rgc, tuned = index in rgcs, index in tuned_cells
        rf = np.clip(rf_center_of_soma(spec, soma) + rng.normal(0, 0.3, 2), 0.5, GRID - 1.5)
        cell = Cell(
            unit_number=number, row=int(soma[0]), column=int(soma[1]),
            amplitude_adc=float(rng.uniform(*spec.spike_amplitude_adc)), is_rgc=is_rgc,
            silent=index >= spec.n_units - spec.n_silent_units,
            base_rate_hz=float(rng.uniform(*spec.base_rate_hz)),
            rf_center=(float(rf[0]), float(rf[1])), rf_sigma=float(rng.uniform(0.7, 1.2)),
            polarity="on" if rng.random() < 0.5 else "off", tuned=tuned,
            preferred_direction_deg=float(np.round(rng.uniform(0, 360), 1)) if tuned else None)
        if is_rgc:
            cell.axon_velocity_m_s = float(rng.uniform(*spec.axon_velocity_m_s))
            cell.axon_amplitude_adc = float(rng.uniform(*spec.axon_amplitude_adc))
            cell.axon_path = _axon_path(soma.astype(np.float64), onh)
        cells.append(cell)
    return cells, onh


def temporal_kernel() -> np.ndarray:
    """Biphasic kernel over ``KERNEL_FRAMES`` display frames (tap 0 = same frame, always 0)."""
    tau = np.arange(KERNEL_FRAMES, dtype=np.float64)

    def bump(peak):
        x = tau / peak
        return x ** 3 * np.exp(3 * (1 - x))

    fast, slow = bump(4.0), bump(9.0)
    # Weight the rebound so the kernel keeps a small sustained (positive) integral.
    return fast - 0.8 * fast.sum() / slow.sum() * slow


def _noise_drive_std(weights: np.ndarray, kernel: np.ndarray, hold: int = 4) -> np.ndarray:
    """Std of the filtered drive under binary ±1 noise held ``hold`` frames (averaged over phase)."""
    taps = np.arange(len(kernel))
    temporal = np.mean([np.sum(np.bincount((taps + phase) // hold, weights=kernel) ** 2) for phase in range(hold)])
    return np.sqrt((weights ** 2).sum(axis=0) * temporal)


def receptive_fields(cells: list[Cell]) -> np.ndarray:
    """(225, n_cells) centre-surround weights on the 15 x 15 grid (row-major)."""
    rows, cols = np.mgrid[0:GRID, 0:GRID]
    fields = []
    for cell in cells:
        d2 = (rows - cell.rf_center[0]) ** 2 + (cols - cell.rf_center[1]) ** 2
        centre = np.exp(-d2 / (2 * cell.rf_sigma ** 2))
        surround = np.exp(-d2 / (8 * cell.rf_sigma ** 2))
        fields.append((centre / centre.sum() - SURROUND_WEIGHT * surround / surround.sum()).ravel())
    return np.stack(fields, axis=1)


def firing_rates(cells: list[Cell], timeline: Timeline) -> np.ndarray:
    """(n_frames, n_cells) firing rate (Hz) during each display frame."""
    weights = receptive_fields(cells)
    kernel = temporal_kernel()
    contrast = 2.0 * timeline.images.reshape(len(timeline.images), -1).astype(np.float64) - 1.0
    drive = lfilter(kernel, [1.0], contrast @ weights, axis=0)
    sign = np.array([1.0 if c.polarity == "on" else -1.0 for c in cells])
    drive *= sign / _noise_drive_std(weights, kernel)
    base = np.array([0.0 if c.silent else c.base_rate_hz for c in cells])
    rate = base * np.exp(np.clip(drive, -4.0, 3.0))
    for i, cell in enumerate(cells):
        if cell.tuned:
            over = bar_over_rf(cell, timeline)
            theta = np.deg2rad(timeline.direction[over] - cell.preferred_direction_deg)
            rate[over, i] = (rate[over, i] + BAR_BURST * base[i]) * np.exp(KAPPA * (np.cos(theta) - 1.0))
    return rate


def rf_center_px(cell: Cell) -> tuple[float, float]:
    """RF centre (row, column) in stimulus pixels: checker k spans pixels [20 k, 20 k + 20)."""
    return tuple(c * CHECKER_PX + (CHECKER_PX - 1) / 2 for c in cell.rf_center)


def tuning_radius_px(cell: Cell) -> float:
    """How close (px) the bar's band must come to the RF centre for the direction tuning to act."""
    return TUNING_RF_SIGMAS * cell.rf_sigma * CHECKER_PX


def bar_over_rf(cell: Cell, timeline: Timeline) -> np.ndarray:
    """(n_frames,) bool: display frames in which the moving bar covers the cell's receptive field.

    The bar's band (``bar_height`` px along the motion) covers the RF when it comes within
    :func:`tuning_radius_px` of the RF centre.
    """
    if timeline.bar is None:
        return np.zeros(len(timeline.direction), dtype=bool)
    sweeping = np.isfinite(timeline.direction)
    row, col = rf_center_px(cell)
    offset = bar_offset(timeline.bar, row, col, timeline.direction[sweeping], timeline.bar_centre_px[sweeping])
    over = np.zeros(len(timeline.direction), dtype=bool)
    over[sweeping] = np.abs(offset) <= timeline.bar["bar_height"] / 2 + tuning_radius_px(cell)
    return over


def _drop_refractory(times: np.ndarray, gap: int) -> np.ndarray:
    while len(times) > 1:
        too_close = np.flatnonzero(np.diff(times) < gap) + 1
        if not len(too_close):
            break
        times = np.delete(times, too_close)
    return times


def simulate_spikes(cells: list[Cell], timeline: Timeline, spec: SynthSpec, rng: np.random.Generator) -> None:
    """Fill each cell's ``spikes`` (IncludePeak = 1) and ``excluded`` (IncludePeak = 0) samples."""
    fs = timeline.sampling_rate_hz
    rates = firing_rates(cells, timeline)
    last = int(timeline.frame_ends[-1])
    starts = np.concatenate([[0], timeline.frame_onsets, [last]])
    lengths = np.diff(np.concatenate([starts, [timeline.n_samples]]))
    for i, cell in enumerate(cells):
        base = 0.0 if cell.silent else cell.base_rate_hz
        segment_rates = np.concatenate([[base], rates[:, i], [base]])
        counts = rng.poisson(segment_rates * lengths / fs)
        offsets = np.floor(rng.random(counts.sum()) * np.repeat(lengths, counts)).astype(np.int64)
        times = np.sort(np.repeat(starts, counts) + offsets)
        cell.spikes = _drop_refractory(times, max(1, round(REFRACTORY_S * fs)))
        n_excluded = 20 if cell.silent else round(spec.excluded_peak_fraction * len(cell.spikes))
        candidates = np.unique(rng.integers(0, timeline.n_samples, n_excluded))
        cell.excluded = _far_from(candidates, cell.spikes, gap=2)


def _far_from(candidates: np.ndarray, spikes: np.ndarray, gap: int) -> np.ndarray:
    """Candidates more than ``gap`` samples from every spike (a sub-threshold peak is not a spike)."""
    if not len(spikes):
        return candidates
    i = np.searchsorted(spikes, candidates)
    left = spikes[np.clip(i - 1, 0, None)]
    right = spikes[np.clip(i, None, len(spikes) - 1)]
    return candidates[(np.abs(candidates - left) > gap) & (np.abs(right - candidates) > gap)]
