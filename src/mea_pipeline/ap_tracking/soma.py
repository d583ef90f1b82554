"""Soma and axon initial segment (AIS) of one unit from its electrical image.

All functions take the eimage ``S`` as a (t, row, col) array (row = axis 1, col = axis 2) with
finite values and return integer electrode/frame indices.
"""

from __future__ import annotations

import numpy as np


def coarse_soma(eimage: np.ndarray, std_threshold: float, temporal_range: tuple[int, int]) -> tuple[int, int]:
    """Centre of the electrodes that vary most around the spike.

    Within frames ``[start, stop)`` an electrode is responsive when its temporal std exceeds
    ``std_threshold`` times the std of all values in the window; the soma is the mean
    (row, col) of the responsive electrodes, rounded, or the electrode with the largest
    temporal std when none is responsive.

    Returns
    -------
    (row, col) : tuple of int
    """
    window = eimage[temporal_range[0]:temporal_range[1]]
    spread = window.std(axis=0)
    responsive = np.argwhere(spread > std_threshold * window.std())
    if len(responsive):
        row, col = np.round(responsive.mean(axis=0)).astype(int)
        return int(row), int(col)
    row, col = np.unravel_index(np.argmax(spread), spread.shape)
    return int(row), int(col)


def refined_soma(eimage: np.ndarray, coarse: tuple[int, int], radius: int) -> tuple[int, int, int]:
    """Most negative voxel near the coarse soma, over all frames.

    The search covers rows ``[row - radius, row + radius)`` and the same for columns, clipped
    to the array: the lab's window excludes its upper end, so it is 2r x 2r and not centred.
    Kept as is because the lab's soma positions (and everything measured from them) depend
    on it.

    Returns
    -------
    (t, row, col) : tuple of int
    """
    row, col = coarse
    r0, c0 = max(0, row - radius), max(0, col - radius)
    box = eimage[:, r0:min(eimage.shape[1], row + radius), c0:min(eimage.shape[2], col + radius)]
    t, dr, dc = np.unravel_index(np.argmin(box), box.shape)
    return int(t), int(r0 + dr), int(c0 + dc)


def axon_initial_segment(eimage: np.ndarray, soma: tuple[int, int, int], xy_radius: int,
                         t_radius: int, fraction: float) -> tuple[int, int, int] | None:
    """Electrode near the soma whose trough comes earliest.

    The soma trough ``m0`` is the minimum over all frames at the soma electrode. In the box of
    frames ``[t - t_radius, t + t_radius]`` and electrodes within ``xy_radius`` (both ends
    included, clipped), an electrode qualifies when its minimum inside the frame window is
    below ``fraction * m0``; the AIS is the qualifying electrode whose minimum comes first
    (ties: first in row-major order).

    Returns
    -------
    (t, row, col) : tuple of int, or None when no electrode qualifies
    """
    t, row, col = soma
    reference = eimage[:, row, col].min()
    t0, r0, c0 = max(0, t - t_radius), max(0, row - xy_radius), max(0, col - xy_radius)
    box = eimage[t0:t + t_radius + 1, r0:row + xy_radius + 1, c0:col + xy_radius + 1]
    qualifies = box.min(axis=0) < fraction * reference
    if not qualifies.any():
        return None
    trough_frame = np.where(qualifies, box.argmin(axis=0), np.iinfo(np.int64).max)
    dr, dc = np.unravel_index(np.argmin(trough_frame), trough_frame.shape)  # first minimum = row-major tie rule
    return int(t0 + trough_frame[dr, dc]), int(r0 + dr), int(c0 + dc)
