"""Each unit's electrical image: what one of its spikes adds to the raw sensor data.

The soma spike is biphasic (trough at the spike sample, slower positive rebound) on a 7 x 7
electrode footprint whose amplitude falls off as a Gaussian (sigma 1 electrode), so the most
negative value of the image is at the soma electrode. A ganglion cell's axon carries a smaller,
narrower negative deflection that starts at the soma and travels along the axon path at the
cell's conduction velocity, so later samples show it farther along the path. Templates use the
file's frame layout (``[t, column - 1, row - 1]``, see :mod:`mea_pipeline.mcs_io`).
"""

from __future__ import annotations

import numpy as np

from ..mcs_io import sensor_frame_index
from .cells import CHIP, PITCH_UM, Cell

FOOTPRINT = 3          # electrodes either side of the soma
AIS_DELAY_MS = 0.05    # axon signal leaves the soma this long after the soma trough
CUTOUT_PRE, CUTOUT_POST = 20, 40   # sorter cutout / RoiSTA window in samples


def window(sampling_rate_hz: float) -> tuple[int, int]:
    """Samples before and after the spike covered by a template (>= the cutout window)."""
    return max(CUTOUT_PRE, round(1e-3 * sampling_rate_hz)), max(CUTOUT_POST, round(2e-3 * sampling_rate_hz))


def soma_waveform(t_ms: np.ndarray) -> np.ndarray:
    """Unit-depth biphasic spike: trough -1 at t = 0, rebound ~ +0.3 at 0.4 ms."""
    return -(np.exp(-t_ms ** 2 / (2 * 0.1 ** 2)) - 0.3 * np.exp(-(t_ms - 0.4) ** 2 / (2 * 0.2 ** 2)))


def _axon_waveform(t_ms: np.ndarray) -> np.ndarray:
    return -(np.exp(-t_ms ** 2 / (2 * 0.08 ** 2)) - 0.25 * np.exp(-(t_ms - 0.25) ** 2 / (2 * 0.15 ** 2)))


def unit_template(cell: Cell, sampling_rate_hz: float) -> np.ndarray:
    """(pre + post, 65, 65) float32 sensor contribution of one spike, in file layout."""
    pre, post = window(sampling_rate_hz)
    t_ms = (np.arange(pre + post) - pre) * 1e3 / sampling_rate_hz
    template = np.zeros((pre + post, CHIP, CHIP), dtype=np.float32)
    spike = cell.amplitude_adc * soma_waveform(t_ms)
    for dr in range(-FOOTPRINT, FOOTPRINT + 1):
        for dc in range(-FOOTPRINT, FOOTPRINT + 1):
            row, column = cell.row + dr, cell.column + dc
            if 1 <= row <= CHIP and 1 <= column <= CHIP:
                template[(slice(None),) + sensor_frame_index(row, column)] += np.exp(-(dr * dr + dc * dc) / 2.0) * spike
    if cell.axon_path is not None and len(cell.axon_path) > 1:
        _add_axon(template, cell, t_ms)
    return template


def _add_axon(template: np.ndarray, cell: Cell, t_ms: np.ndarray) -> None:
    """Travelling axon signal, sampled every half electrode and spread bilinearly."""
    path = cell.axon_path
    direction = (path[-1] - path[0]) / np.hypot(*(path[-1] - path[0]))
    length = float(np.hypot(*(path[-1] - path[0])))
    distance = np.arange(1.0, length + 1e-9, 0.5)
    points = path[0][None, :] + distance[:, None] * direction[None, :]
    delay_ms = AIS_DELAY_MS + distance * PITCH_UM / (cell.axon_velocity_m_s * 1e3)
    # Two points per electrode spacing: halve each so the summed depth is about the axon amplitude.
    waves = 0.5 * cell.axon_amplitude_adc * _axon_waveform(t_ms[:, None] - delay_ms[None, :])  # (T, P)
    base = np.floor(points).astype(np.int64)
    frac = points - base
    for d_row in (0, 1):
        for d_col in (0, 1):
            row, column = base[:, 0] + d_row, base[:, 1] + d_col
            weight = (frac[:, 0] if d_row else 1 - frac[:, 0]) * (frac[:, 1] if d_col else 1 - frac[:, 1])
            ok = (row >= 1) & (row <= CHIP) & (column >= 1) & (column <= CHIP) & (weight > 0)
            axis1, axis2 = sensor_frame_index(row[ok], column[ok])
            np.add.at(template, (slice(None), axis1, axis2), (waves[:, ok] * weight[ok]).astype(np.float32))


def roi_stas(cell: Cell, template: np.ndarray, sampling_rate_hz: float) -> np.ndarray:
    """(roi electrodes, 60) STA of the 5 x 5 electrodes around the soma over the cutout window."""
    pre, _ = window(sampling_rate_hz)
    rows = [r for r in range(cell.row - 2, cell.row + 3) if 1 <= r <= CHIP]
    columns = [c for c in range(cell.column - 2, cell.column + 3) if 1 <= c <= CHIP]
    traces = [template[pre - CUTOUT_PRE:pre + CUTOUT_POST][(slice(None),) + sensor_frame_index(r, c)]
              for c in columns for r in rows]
    return np.stack(traces).astype(np.float32)
