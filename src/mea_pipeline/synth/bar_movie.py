"""The synthetic moving-bar movie as the projector shows it: (frames, H, W) uint8 pixels.

Rendered from the moving-bar JSON with the crossing rule the simulated retina sees
(:func:`.bar_geometry.bar_crossings`, the JSON's ``crossing_rule``): pixel (r, c) is at ``bar_color`` in
sweep frame j iff ``b - bar_height/2 <= s < b + bar_height/2``, ``s`` its projection on the motion
direction and ``b = -start_distance_px + speed * j`` the bar centre; every other frame (lead-in,
pre-pad, pixels off the bar) is at ``background``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .bar_geometry import bar_projection, sweep_start
from .movies import movie_length


def _sweep(g: dict, angle_deg: float) -> np.ndarray:
    """(frames_per_direction, H, W) uint8 frames of one sweep."""
    rows, cols = np.mgrid[0:g["H"], 0:g["W"]].astype(np.float64)
    along, across = bar_projection(g, rows, cols, angle_deg)
    lengthwise = np.abs(across) <= g["bar_width"] / 2
    frames = np.full((g["frames_per_direction"], g["H"], g["W"]), g["background"], dtype=np.uint8)
    centres = -g["start_distance_px"] + g["speed"] * np.arange(g["frames_per_direction"])
    for j, centre in enumerate(centres):
        covered = (along >= centre - g["bar_height"] / 2) & (along < centre + g["bar_height"] / 2)
        frames[j][covered & lengthwise] = g["bar_color"]
    return frames


def render_bar_movie(config: dict, path: str | Path | None = None) -> np.ndarray:
    """Render the moving-bar movie of a synthetic JSON config.

    Parameters
    ----------
    config : dict
        The moving-bar JSON content written by :func:`.library.write_stimulus_library`.
    path : str or Path, optional
        Write the movie straight into this ``.npy`` file (a memory map, so the movie is never held
        twice in memory) instead of returning an in-memory array.

    Returns
    -------
    np.ndarray
        (movie_length, H, W) uint8; an ``np.memmap`` onto ``path`` when given.
    """
    g, k = config["generate_kwargs"], config["section_kwargs"]
    shape = (movie_length(config), g["H"], g["W"])
    if path is None:
        movie = np.empty(shape, dtype=np.uint8)
    else:
        movie = np.lib.format.open_memmap(Path(path), mode="w+", dtype=np.uint8, shape=shape)
    background = np.ones(shape[0], dtype=bool)
    for d, angle in enumerate(g["directions_deg"]):
        sweep = _sweep(g, angle)
        for rep in range(k["repeat"]):
            first = sweep_start(config, rep, d)
            movie[first:first + len(sweep)] = sweep
            background[first:first + len(sweep)] = False
    for first, stop in _runs(background):
        movie[first:stop] = g["background"]
    if path is not None:
        movie.flush()
    return movie


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of True in ``mask``."""
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))
