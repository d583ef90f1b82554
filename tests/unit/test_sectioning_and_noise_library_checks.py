"""The library checks section_spike_times and dense_noise_sta declare, run on a stand-in of pre-flight's check."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np

from mea_pipeline.errors import InputError
from mea_pipeline.steps import REGISTRY, dense_noise_sta, section_spike_times
from mea_pipeline.stimulus_library import StimulusLibrary

MOVIES = ["baseline", "dense_noise_a", "dense_noise_b", "chirp"]


class StandInCheck:
    """What pre-flight's LibraryCheck offers a step's check: the library, the movies, params, attempt."""

    def __init__(self, library, movies, params):
        self.library, self.movies, self.params = library, movies, params
        self.errors: list[str] = []
        self.calls: list[tuple] = []

    def params_of(self, step: str):
        return REGISTRY[step].params()

    def attempt(self, fn, *args, **kwargs):
        self.calls.append((fn.__name__, *args))
        try:
            return fn(*args, **kwargs)
        except (InputError, OSError) as exc:
            self.errors.append(str(exc))
            return None


def make_library(folder) -> StimulusLibrary:
    folder.mkdir()
    (folder / "playlist.csv").write_text(
        f'playlist_name,movie_names\nset,"{[m + ".mov" for m in MOVIES]}"\n')
    (folder / "movie_length.csv").write_text(
        "movie_name,movie_length\n" + "".join(f"{m},20\n" for m in MOVIES))
    for movie in MOVIES:
        (folder / f"{movie}.json").write_text(json.dumps(
            {"section_kwargs": {"start_frame": 0, "trial_length_frame": 10, "repeat": 2}}))
    for movie in ("dense_noise_a", "dense_noise_b"):
        np.save(folder / f"{movie}.npy", np.zeros((20, 3, 3), dtype=np.uint8))
    return StimulusLibrary(folder)


def test_the_trial_layout_check_reads_every_movie_json_and_names_a_bad_one(tmp_path):
    library = make_library(tmp_path / "lib")
    (tmp_path / "lib" / "chirp.json").write_text('{"section_kwargs": {"repeat": 2}}')
    check = StandInCheck(library, MOVIES, section_spike_times.SectionSpikeTimesParams())
    REGISTRY["section_spike_times"].library_check(check)
    assert [c[1] for c in check.calls] == MOVIES
    assert len(check.errors) == 1 and "chirp.json" in check.errors[0] and "start_frame" in check.errors[0]


def test_the_noise_check_reads_the_movies_matching_the_pattern_with_movie_array(tmp_path):
    library = make_library(tmp_path / "lib")
    check = StandInCheck(library, MOVIES, dense_noise_sta.DenseNoiseStaParams())
    REGISTRY["dense_noise_sta"].library_check(check)
    assert check.calls == [("movie_array", "dense_noise_a"), ("movie_array", "dense_noise_b")]
    assert check.errors == []

    np.save(tmp_path / "lib" / "dense_noise_b.npy", np.zeros((7, 3, 3), dtype=np.uint8))
    check = StandInCheck(library, MOVIES, dense_noise_sta.DenseNoiseStaParams(movie_pattern="noise_b"))
    REGISTRY["dense_noise_sta"].library_check(check)
    assert [c[1] for c in check.calls] == ["dense_noise_b"]
    assert len(check.errors) == 1 and "has 7 frames" in check.errors[0]


def test_another_step_checks_the_noise_movies_with_dense_noise_sta_s_pattern(tmp_path):
    library = make_library(tmp_path / "lib")
    (tmp_path / "lib" / "dense_noise_a.npy").unlink()
    check = StandInCheck(library, MOVIES, SimpleNamespace())  # e.g. rf_geometry's params
    dense_noise_sta.check_noise_movies(check, check.params_of("dense_noise_sta").movie_pattern)
    assert [c[1] for c in check.calls] == ["dense_noise_a", "dense_noise_b"]
    assert len(check.errors) == 1 and "dense_noise_a.npy is missing" in check.errors[0]
