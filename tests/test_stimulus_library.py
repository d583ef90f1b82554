"""Stimulus library: safe playlist parsing, strict tables and JSONs, section arithmetic."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mea_pipeline.errors import InputError
from mea_pipeline.stimulus_library import (StimulusLibrary, TrialLayout, expected_frame_count,
                                           parse_movie_names, section_frames)

LAB_STIMULI = Path(__file__).resolve().parents[2] / "shared" / "reference" / "stimuli"


def make_library(folder: Path) -> StimulusLibrary:
    (folder / "playlist.csv").write_text(
        'playlist_name,movie_names\n'
        'test_playlist,"[\'movie_a.mov\', \'movie_b.mov\', \'movie_c.mov\']"\n'
        'single_movie,"[\'movie_a.mov\']"\n')
    (folder / "movie_length.csv").write_text("movie_name,movie_length\nmovie_a,600\nmovie_b,1200\nmovie_c,900\n")
    for name in ("movie_a", "movie_b", "movie_c"):
        (folder / f"{name}.json").write_text(json.dumps(
            {"section_kwargs": {"start_frame": 0, "trial_length_frame": 100, "repeat": 2}}))
    return StimulusLibrary(folder)


def test_section_frames_match_the_lab_worked_example(tmp_path):
    library = make_library(tmp_path)
    movies = library.playlist("test_playlist")
    # The lab's player: 180 grey frames around each movie, sections 60 frames before and 120 after.
    sections = section_frames(movies, library.movie_lengths(movies), pad_frame=180, pre_margin=60, post_margin=120)
    assert {m: s.tolist() for m, s in sections.items()} == {
        "movie_a": [[120, 901]], "movie_b": [[1081, 2462]], "movie_c": [[2642, 3723]]}
    assert expected_frame_count(movies, library.movie_lengths(movies), pad_frame=180) == 3 * 361 + 2700


def test_playlist_is_parsed_not_evaluated():
    assert parse_movie_names("['a.mov', 'b.x.y']", "p") == ["a", "b"]
    with pytest.raises(InputError, match="list literal"):
        parse_movie_names("__import__('os').system('true')", "p")


def test_unknown_playlist_and_missing_length_are_errors(tmp_path):
    library = make_library(tmp_path)
    with pytest.raises(InputError, match="unknown playlist 'nope'.*test_playlist"):
        library.playlist("nope")
    with pytest.raises(InputError, match="movie_d"):
        library.movie_lengths(["movie_a", "movie_d"])


def test_trial_layout_with_groups():
    layout = TrialLayout(start_frame=120, trial_length_frame=720, repeat=3, group_count=3, group_gap=180)
    frames = layout.trial_frames()
    assert frames.shape == (9, 2)
    assert frames[:4, 0].tolist() == [120, 840, 1560, 2460]  # the gap follows each group of 3


@pytest.mark.skipif(not LAB_STIMULI.is_dir(), reason="shared/ reference data not present")
def test_lab_json_configs_validate(tmp_path):
    for path in LAB_STIMULI.glob("*.json"):
        shutil.copy(path, tmp_path)
    library = StimulusLibrary(tmp_path)
    layouts = {p.stem: library.trial_layout(p.stem) for p in LAB_STIMULI.glob("*.json")}
    assert layouts["moving_h_bar_s5_d8_3x"].n_trials == 3
    assert layouts["green_blue_3s_3i_3x_64_128_255"].n_trials == 9
    assert layouts["step_up_5s_5i_b0_30x"].n_trials == 30


def test_bad_json_names_file_and_field(tmp_path):
    library = make_library(tmp_path)
    (tmp_path / "movie_b.json").write_text(json.dumps({"section_kwargs": {"start_frame": 0, "repeat": True,
                                                                        "trial_length_frame": 10}}))
    with pytest.raises(InputError, match=r"movie_b.json: section_kwargs.repeat"):
        library.trial_layout("movie_b")
    with pytest.raises(InputError, match="movie_x.json is missing"):
        library.trial_layout("movie_x")


def test_missing_movie_array_names_expected_file(tmp_path):
    library = make_library(tmp_path)
    with pytest.raises(InputError, match="movie_a.npy"):
        library.movie_array("movie_a")
    np.save(tmp_path / "movie_a.npy", np.zeros((600, 2, 2), np.uint8))  # movie_length.csv: 600 frames
    assert library.movie_array("movie_a").shape == (600, 2, 2)
