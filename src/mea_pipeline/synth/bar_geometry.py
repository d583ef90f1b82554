"""The moving bar's geometry and schedule: where a pixel lies relative to the bar, when each sweep
starts and when the bar covers a pixel (the JSON ``crossing_rule``, described in :mod:`.movies`).

Shared by the checker rendering the simulated retina sees (:mod:`.render`), the projector's pixel
movie (:mod:`.bar_movie`) and the cells' bar responses (:mod:`.cells`).
"""

from __future__ import annotations

import numpy as np

from .movies import movie_length


def sweep_start(config: dict, repeat: int, direction_index: int) -> int:
    """Movie frame at which sweep ``direction_index`` of repeat ``repeat`` begins."""
    g, k = config["generate_kwargs"], config["section_kwargs"]
    return (k["start_frame"] + repeat * k["trial_length_frame"] + g["pre_pad_frame"]
            + direction_index * g["frames_per_direction"])


def bar_projection(g: dict, rows: np.ndarray, cols: np.ndarray, angle_deg: float):
    """Distance of pixels along the motion and across it, from the canvas centre."""
    a = np.deg2rad(angle_deg)
    dr, dc = rows - (g["H"] - 1) / 2, cols - (g["W"] - 1) / 2
    return dr * np.sin(a) + dc * np.cos(a), -dr * np.cos(a) + dc * np.sin(a)


def bar_centres(config: dict) -> np.ndarray:
    """(movie_length,) float32 position of the bar's centre along its motion, NaN outside the sweeps.

    The position is the signed distance (px) from the canvas centre along the sweep's direction,
    ``b = -start_distance_px + speed * j`` in sweep frame j (the JSON ``crossing_rule``).
    """
    g, k = config["generate_kwargs"], config["section_kwargs"]
    centres = np.full(movie_length(config), np.nan, dtype=np.float32)
    sweep = -g["start_distance_px"] + g["speed"] * np.arange(g["frames_per_direction"], dtype=np.float64)
    for d in range(len(g["directions_deg"])):
        for rep in range(k["repeat"]):
            first = sweep_start(config, rep, d)
            centres[first:first + len(sweep)] = sweep
    return centres


def bar_offset(generate_kwargs: dict, row_px, col_px, angle_deg, centre_px):
    """Signed distance (px) along the motion from the bar's centre to pixel (row_px, col_px).

    Positive ahead of the bar; the bar covers the pixel where ``-bar_height/2 <= offset < bar_height/2``.
    """
    along, _ = bar_projection(generate_kwargs, np.asarray(row_px, dtype=np.float64),
                               np.asarray(col_px, dtype=np.float64), np.asarray(angle_deg, dtype=np.float64))
    return along - centre_px


def bar_crossings(config: dict, row_px: float, col_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Movie frames at which the bar starts (ON) and stops (OFF) covering pixel (row_px, col_px).

    One value per sweep, in trial order (repeat-major, directions in ``directions_deg`` order);
    OFF is the first frame no longer covered. Follows the JSON ``crossing_rule``.
    """
    g, k = config["generate_kwargs"], config["section_kwargs"]
    on, off = [], []
    for rep in range(k["repeat"]):
        for d, angle in enumerate(g["directions_deg"]):
            along, _ = bar_projection(g, np.float64(row_px), np.float64(col_px), angle)
            first = sweep_start(config, rep, d)
            shift = along + g["start_distance_px"]
            on.append(first + int(np.floor((shift - g["bar_height"] / 2) / g["speed"])) + 1)
            off.append(first + int(np.floor((shift + g["bar_height"] / 2) / g["speed"])) + 1)
    return np.asarray(on, dtype=np.int64), np.asarray(off, dtype=np.int64)
