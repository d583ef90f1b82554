"""Render each movie as the 15 x 15 checker intensities the simulated retina sees.

A movie becomes ``images`` (frames, 15, 15) float32 in [0, 1] (screen level / 255, averaged over
each checker's 20 x 20 px) and ``direction`` (frames,) float32: the moving bar's direction in
degrees while it sweeps, NaN otherwise.
"""

from __future__ import annotations

import numpy as np

from .library import movie_length

GRID = 15
CHECKER_PX = 20
_SUBSAMPLES = 4  # per checker side, for the bar's partial coverage of a checker


def _uniform(levels: np.ndarray) -> np.ndarray:
    return np.broadcast_to((levels / 255.0).astype(np.float32)[:, None, None], (len(levels), GRID, GRID)).copy()


def _trial_levels(config: dict, trial: np.ndarray, lead_level: float) -> np.ndarray:
    """Per-frame screen level: ``lead_level`` for the lead-in, then the trial pattern repeated."""
    k = config["section_kwargs"]
    return np.concatenate([np.full(k["start_frame"], lead_level), np.tile(trial, k["repeat"])])


def _step_levels(config: dict) -> np.ndarray:
    g = config["generate_kwargs"]
    trial = np.r_[np.full(g["frames"], g["intensity"]), np.full(g["gap_frame"], g["baseline"])]
    return _trial_levels(config, trial, g["baseline"])


def _green_blue_levels(config: dict) -> np.ndarray:
    g = config["generate_kwargs"]
    gap = np.full(g["gap_frame"], g["background"])
    green, blue = np.full(g["stim_frame"], g["green_intensity"]), np.full(g["stim_frame"], g["blue_intensity"])
    trial = np.r_[green, gap, blue, gap]
    return _trial_levels(config, trial, g["background"])


def _freq_levels(config: dict) -> np.ndarray:
    g = config["generate_kwargs"]
    step = round(g["frame_duration"] * g["display_rate_hz"])
    pause = np.full(round(g["break_duration"] * g["display_rate_hz"]), g["break_intensity"])
    t = np.arange(step) / g["display_rate_hz"]
    trial = np.concatenate([np.r_[127.5 + 127.5 * np.sin(2 * np.pi * f * t), pause] for f in g["freq_list"]])
    return _trial_levels(config, trial, g["break_intensity"])


def _checker_subsamples() -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (rows, cols) of the subsample points, shape (15, 15, n, n)."""
    offsets = (np.arange(_SUBSAMPLES) + 0.5) * CHECKER_PX / _SUBSAMPLES - 0.5
    axis = np.arange(GRID)[:, None] * CHECKER_PX + offsets[None, :]  # (15, n)
    rows = np.broadcast_to(axis[:, None, :, None], (GRID, GRID, _SUBSAMPLES, _SUBSAMPLES))
    cols = np.broadcast_to(axis[None, :, None, :], (GRID, GRID, _SUBSAMPLES, _SUBSAMPLES))
    return rows, cols


def _sweep_start(config: dict, repeat: int, direction_index: int) -> int:
    """Movie frame at which sweep ``direction_index`` of repeat ``repeat`` begins."""
    g, k = config["generate_kwargs"], config["section_kwargs"]
    return (k["start_frame"] + repeat * k["trial_length_frame"] + g["pre_pad_frame"]
            + direction_index * g["frames_per_direction"])


def _bar_projection(g: dict, rows: np.ndarray, cols: np.ndarray, angle_deg: float):
    """Distance of pixels along the motion and across it, from the canvas centre."""
    a = np.deg2rad(angle_deg)
    dr, dc = rows - (g["H"] - 1) / 2, cols - (g["W"] - 1) / 2
    return dr * np.sin(a) + dc * np.cos(a), -dr * np.cos(a) + dc * np.sin(a)


def _moving_bar(config: dict) -> tuple[np.ndarray, np.ndarray]:
    g, k = config["generate_kwargs"], config["section_kwargs"]
    n = movie_length(config)
    images = np.full((n, GRID, GRID), g["background"] / 255.0, dtype=np.float32)
    direction = np.full(n, np.nan, dtype=np.float32)
    rows, cols = _checker_subsamples()
    centres = -g["start_distance_px"] + g["speed"] * np.arange(g["frames_per_direction"])
    for d, angle in enumerate(g["directions_deg"]):
        along, across = _bar_projection(g, rows, cols, angle)
        lengthwise = np.abs(across) <= g["bar_width"] / 2
        covered = ((along[None] >= centres[:, None, None, None, None] - g["bar_height"] / 2)
                   & (along[None] < centres[:, None, None, None, None] + g["bar_height"] / 2) & lengthwise[None])
        level = (g["background"] + covered.mean(axis=(3, 4)) * (g["bar_color"] - g["background"])) / 255.0
        for rep in range(k["repeat"]):
            first = _sweep_start(config, rep, d)
            images[first:first + g["frames_per_direction"]] = level
            direction[first:first + g["frames_per_direction"]] = angle
    return images, direction


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
            first = _sweep_start(config, rep, d)
            centres[first:first + len(sweep)] = sweep
    return centres


def bar_offset(generate_kwargs: dict, row_px, col_px, angle_deg, centre_px):
    """Signed distance (px) along the motion from the bar's centre to pixel (row_px, col_px).

    Positive ahead of the bar; the bar covers the pixel where ``-bar_height/2 <= offset < bar_height/2``.
    """
    along, _ = _bar_projection(generate_kwargs, np.asarray(row_px, dtype=np.float64),
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
            along, _ = _bar_projection(g, np.float64(row_px), np.float64(col_px), angle)
            first = _sweep_start(config, rep, d)
            shift = along + g["start_distance_px"]
            on.append(first + int(np.floor((shift - g["bar_height"] / 2) / g["speed"])) + 1)
            off.append(first + int(np.floor((shift + g["bar_height"] / 2) / g["speed"])) + 1)
    return np.asarray(on, dtype=np.int64), np.asarray(off, dtype=np.int64)


def render_movie(name: str, config: dict, noise: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(images, direction)`` of one movie; ``noise`` is the dense-noise ``.npy`` content."""
    n = movie_length(config)
    direction = np.full(n, np.nan, dtype=np.float32)
    if name.startswith("moving_h_bar"):
        return _moving_bar(config)
    if "dense_noise" in name:
        if noise is None or len(noise) != n:
            raise ValueError(f"{name}: the .npy movie must have {n} frames")
        return np.asarray(noise, dtype=np.float32) / 255.0, direction
    if name.startswith("baseline"):
        levels = np.full(n, config["generate_kwargs"]["intensity"], dtype=np.float64)
    elif name.startswith("step_up"):
        levels = _step_levels(config)
    elif name.startswith("green_blue"):
        levels = _green_blue_levels(config)
    elif name.startswith("freq_step"):
        levels = _freq_levels(config)
    else:
        raise ValueError(f"no renderer for movie '{name}'")
    assert len(levels) == n, f"{name}: rendered {len(levels)} frames, movie_length says {n}"
    return _uniform(levels), direction

