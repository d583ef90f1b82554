"""Render each movie as the 15 x 15 checker intensities the simulated retina sees.

A movie becomes ``images`` (frames, 15, 15) float32 in [0, 1] (screen level / 255, averaged over
each checker's 20 x 20 px) and ``direction`` (frames,) float32: the moving bar's direction in
degrees while it sweeps, NaN otherwise.
"""

from __future__ import annotations

import numpy as np

from .bar_geometry import bar_projection, sweep_start
from .movies import movie_length

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


def _moving_bar(config: dict) -> tuple[np.ndarray, np.ndarray]:
    g, k = config["generate_kwargs"], config["section_kwargs"]
    n = movie_length(config)
    images = np.full((n, GRID, GRID), g["background"] / 255.0, dtype=np.float32)
    direction = np.full(n, np.nan, dtype=np.float32)
    rows, cols = _checker_subsamples()
    centres = -g["start_distance_px"] + g["speed"] * np.arange(g["frames_per_direction"])
    for d, angle in enumerate(g["directions_deg"]):
        along, across = bar_projection(g, rows, cols, angle)
        lengthwise = np.abs(across) <= g["bar_width"] / 2
        covered = ((along[None] >= centres[:, None, None, None, None] - g["bar_height"] / 2)
                   & (along[None] < centres[:, None, None, None, None] + g["bar_height"] / 2) & lengthwise[None])
        level = (g["background"] + covered.mean(axis=(3, 4)) * (g["bar_color"] - g["background"])) / 255.0
        for rep in range(k["repeat"]):
            first = sweep_start(config, rep, d)
            images[first:first + g["frames_per_direction"]] = level
            direction[first:first + g["frames_per_direction"]] = angle
    return images, direction


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

