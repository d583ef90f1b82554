"""Frames at which the moving bar reaches (ON) and leaves (OFF) given pixels, found in the movie.

The lab's per-pixel rule (its "double refined" ON/OFF dictionary), evaluated only where it is
needed. In every sweep segment, for pixel (r, c):

* the pixel derivative is ``d(t) = s(t) - s(t - 1)`` with ``s(-1) = 0``, ``s`` the pixel's level;
* ON candidates are the peaks of ``d`` whose prominence is at least ``prominence_fraction`` times
  the segment's maximum of ``d`` (the segment's argmax when there is none or the maximum is not
  positive); ON is the candidate closest to the argmax of the derivative of the mean level over an
  ``area_box`` square around the pixel (the box shifted to stay inside the image), so an edge seen
  by the whole neighbourhood wins over a flicker of one pixel;
* OFF is the first frame after ON with ``d <= min(-off_fraction * |d(ON)|, off_floor)`` (lab:
  ``off_fraction`` 0.5, ``off_floor`` -50), else the frame after ON with the lowest ``d`` (ON
  itself when ON ends the segment).

Only the frames up to the last sweep's end are read, and of them only each pixel's own trace and
its box (one read per distinct box): for a few hundred pixels this is much less than the movie.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks

from ..errors import InputError
from .segments import DirectionLayout


def _box_origins(centres: np.ndarray, box: int, size: int) -> np.ndarray:
    """First index of a ``box``-long window centred on each of ``centres``, kept inside ``size``."""
    half = box // 2
    return np.clip(centres, half, size - (box - half)) - half


def _derivatives(movie, rows: np.ndarray, cols: np.ndarray, box: int, n_frames: int):
    """Pixel-level and box-sum derivatives, both (n_pixels, n_frames) int64, of the first frames.

    The derivative is ``x(t) - x(t - 1)`` with ``x(-1) = 0``, so index t is movie frame t. The box
    sum's derivative has the argmax of the box mean's (a positive multiple), in exact integers.
    """
    _, height, width = movie.shape
    box_rows, box_cols = min(box, height), min(box, width)
    origins = np.stack([_box_origins(rows, box_rows, height), _box_origins(cols, box_cols, width)], axis=1)
    # Pixels near an edge or corner share a clamped box: sum each distinct box once.
    boxes, which_box = np.unique(origins, axis=0, return_inverse=True)
    box_sums = np.empty((len(boxes), n_frames), dtype=np.int64)
    for b, (top, left) in enumerate(boxes):
        block = movie[:n_frames, top:top + box_rows, left:left + box_cols]
        box_sums[b] = block.sum(axis=(1, 2), dtype=np.int64)
    levels = np.empty((len(rows), n_frames), dtype=np.int64)
    for p, (r, c) in enumerate(zip(rows, cols)):
        levels[p] = movie[:n_frames, r, c]
    d_pixel = np.diff(levels, axis=1, prepend=0)
    d_area = np.diff(box_sums, axis=1, prepend=0)[which_box.ravel()]
    return d_pixel, d_area


def _on_index(d: np.ndarray, area_d: np.ndarray, prominence_fraction: float) -> int:
    """ON frame within one segment (index into the segment)."""
    peak = d.max()
    candidates = np.empty(0, dtype=np.intp)
    if peak > 0:
        candidates, _ = find_peaks(d, prominence=prominence_fraction * peak)
    if len(candidates) == 0:
        return int(np.argmax(d))
    reference = int(np.argmax(area_d))
    return int(candidates[np.argmin(np.abs(candidates - reference))])


def _off_index(d: np.ndarray, on: int, off_fraction: float, off_floor: float) -> int:
    """OFF frame within one segment (index into the segment), after ``on``."""
    after = d[on + 1:]
    if len(after) == 0:
        return on
    threshold = min(-off_fraction * abs(float(d[on])), off_floor)
    below = np.flatnonzero(after <= threshold)
    return on + 1 + int(below[0] if len(below) else np.argmin(after))


def crossing_table(movie, pixels, layout: DirectionLayout, *, area_box: int,
                   prominence_fraction: float, off_fraction: float, off_floor: float
                   ) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    """ON and OFF frames of every sweep at each of ``pixels``.

    Parameters
    ----------
    movie : array-like
        (frames, H, W) movie, typically a read-only ``np.load(..., mmap_mode="r")`` of the uint8
        ``.npy``; only the pixels' traces and boxes are read, up to the last sweep's end.
    pixels : iterable of (int, int)
        ``(row, col)`` pixels of the movie image (row = axis 1, col = axis 2).
    layout : DirectionLayout
        Sweep segments (movie-relative frames), from :func:`.segments.direction_segments`.
    area_box : int
        Side of the square whose mean level guides the choice among ON candidates (lab: 50).
    prominence_fraction : float
        ON candidates need a prominence of at least this fraction of the segment's maximum (lab: 0.3).
    off_fraction, off_floor : float
        OFF needs a derivative at most ``min(-off_fraction * |d(ON)|, off_floor)`` (lab: 0.5, -50).

    Returns
    -------
    dict
        ``(row, col) -> (on, off)``, each (n_trials,) int64 movie-relative frames in the layout's
        trial order.

    Raises
    ------
    InputError
        The movie is not (frames, H, W), a sweep runs past its last frame, or a pixel is outside it.
    """
    shape = getattr(movie, "shape", ())
    if len(shape) != 3:
        raise InputError(f"moving-bar movie has shape {shape}; expected (frames, H, W)")
    n_frames = int(layout.segments[:, 1].max())
    if n_frames > shape[0]:
        raise InputError(
            f"moving-bar movie has {shape[0]} frames but the JSON layout's last sweep ends at frame "
            f"{n_frames}; check section_kwargs (start_frame, trial_length_frame, repeat) and "
            "generate_kwargs.pre_pad_frame against the movie")
    keys = [(int(r), int(c)) for r, c in pixels]
    if not keys:
        return {}
    rows, cols = (np.asarray(axis, dtype=np.int64) for axis in zip(*keys))
    if rows.min() < 0 or cols.min() < 0 or rows.max() >= shape[1] or cols.max() >= shape[2]:
        raise InputError(f"pixels must lie in the {shape[1]} x {shape[2]} movie image")

    d_pixel, d_area = _derivatives(movie, rows, cols, area_box, n_frames)
    table = {}
    for p, key in enumerate(keys):
        on = np.empty(layout.n_trials, dtype=np.int64)
        off = np.empty(layout.n_trials, dtype=np.int64)
        for i, (start, end) in enumerate(layout.segments):
            d = d_pixel[p, start:end]
            first = _on_index(d, d_area[p, start:end], prominence_fraction)
            on[i] = start + first
            off[i] = start + _off_index(d, first, off_fraction, off_floor)
        table[key] = (on, off)
    return table
