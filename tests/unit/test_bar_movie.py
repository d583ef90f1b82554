"""The synthetic moving-bar movie follows the crossing rule of the ground truth (render.bar_crossings)."""

import numpy as np
import pytest

from mea_pipeline.synth.bar_movie import render_bar_movie
from mea_pipeline.synth.library import movie_configs, movie_length, write_stimulus_library
from mea_pipeline.synth.render import _sweep_start, bar_crossings
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
        pre_pad = _sweep_start(config, rep, 0) - np.arange(g["pre_pad_frame"], 0, -1)
        assert np.all(movie[pre_pad] == g["background"])


def test_each_pixel_is_bright_exactly_between_its_crossings(tiny):
    config, movie = tiny
    for row, col in [(0, 0), (0, 299), (299, 0), (299, 299), (150, 150), (13, 287), (201, 44)]:
        on, off = bar_crossings(config, row, col)
        expected = np.zeros(len(movie), dtype=bool)
        for a, b in zip(on, off):
            expected[a:b] = True
        np.testing.assert_array_equal(movie[:, row, col] == config["generate_kwargs"]["bar_color"], expected)


def test_writing_through_a_memmap_gives_the_same_movie(tiny, tmp_path):
    config, movie = tiny
    written = render_bar_movie(config, tmp_path / "bar.npy")
    assert isinstance(written, np.memmap)
    np.testing.assert_array_equal(np.load(tmp_path / "bar.npy", mmap_mode="r"), movie)


def test_the_library_holds_the_bar_movie(tiny, tmp_path):
    config, movie = tiny
    folder = write_stimulus_library(tmp_path / "stimuli", profile="tiny")
    np.testing.assert_array_equal(np.load(folder / f"{MOVING_BAR}.npy", mmap_mode="r"), movie)
