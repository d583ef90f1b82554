"""The synthetic moving-bar movie follows the crossing rule of the ground truth (bar_geometry.bar_crossings)."""

import numpy as np
import pytest

from mea_pipeline.synth.bar_geometry import bar_centres, bar_crossings, sweep_start
from mea_pipeline.synth.bar_movie import render_bar_movie
from mea_pipeline.synth.library import write_stimulus_library
from mea_pipeline.synth.movies import movie_configs, movie_length
from mea_pipeline.synth.spec import MOVING_BAR


@pytest.fixture(scope="module")
def tiny():
    config = movie_configs("tiny")[MOVING_BAR]
    return config, render_bar_movie(config)


def test_shape_levels_and_background_frames(tiny):
    config, movie = tiny
    g, k = config["generate_kwargs"], config["section_kwargs"]
    assert movie.dtype == np.uint8 and movie.shape == (movie_length(config), g["H"], g["W"])
    assert set(np.unique(movie)) == {g["background"], g["bar_color"]}
    assert np.all(movie[:k["start_frame"]] == g["background"])
    for rep in range(k["repeat"]):
        pre_pad = sweep_start(config, rep, 0) - np.arange(g["pre_pad_frame"], 0, -1)
        assert np.all(movie[pre_pad] == g["background"])


def test_each_pixel_is_bright_exactly_between_its_crossings(tiny):
    config, movie = tiny
    for row, col in [(0, 0), (0, 299), (299, 0), (299, 299), (150, 150), (13, 287), (201, 44)]:
        on, off = bar_crossings(config, row, col)
        expected = np.zeros(len(movie), dtype=bool)
        for a, b in zip(on, off):
            expected[a:b] = True
        np.testing.assert_array_equal(movie[:, row, col] == config["generate_kwargs"]["bar_color"], expected)


def test_each_sweep_moves_the_bar_in_its_named_direction(tiny):
    """Read off the pixels with plain numpy: sweep d of each repeat is the d-th run of lit frames,
    its bar moves toward ``directions_deg[d]`` (0 = +column, 90 = +row) and passes the canvas
    centre where ``bar_centres`` (which the simulated tuning uses) says its centre is at 0."""
    config, movie = tiny
    g = config["generate_kwargs"]
    lit = np.flatnonzero((movie != g["background"]).any(axis=(1, 2)))
    runs = np.split(lit, np.flatnonzero(np.diff(lit) > 1) + 1)
    assert len(runs) == 3 * 8
    centres = bar_centres(config)
    assert np.all(np.isfinite(centres[lit]))        # the bar is on screen only during sweeps

    def centroid(frame):
        rows, cols = np.nonzero(movie[frame] != g["background"])
        return np.array([rows.mean(), cols.mean()])

    for i, run in enumerate(runs):
        angle = g["directions_deg"][i % 8]
        middle = run[np.nanargmin(np.abs(centres[run]))]     # bar centre nearest the canvas centre
        motion = centroid(middle + 1) - centroid(middle - 1)
        assert np.hypot(*motion) > g["speed"], i          # moving (clipped by the canvas on diagonals)
        seen = np.degrees(np.arctan2(motion[0], motion[1])) % 360
        assert abs((seen - angle + 180) % 360 - 180) < 2, (i, seen)
        np.testing.assert_allclose(centroid(middle), [149.5, 149.5], atol=g["speed"])


def test_writing_through_a_memmap_gives_the_same_movie(tiny, tmp_path):
    config, movie = tiny
    written = render_bar_movie(config, tmp_path / "bar.npy")
    assert isinstance(written, np.memmap)
    np.testing.assert_array_equal(np.load(tmp_path / "bar.npy", mmap_mode="r"), movie)


def test_the_library_holds_the_bar_movie(tiny, tmp_path):
    config, movie = tiny
    folder = write_stimulus_library(tmp_path / "stimuli", profile="tiny")
    np.testing.assert_array_equal(np.load(folder / f"{MOVING_BAR}.npy", mmap_mode="r"), movie)
