"""Matrix rows R28-R42 and R81: the stimulus library and every movie the steps read (docs/reliability.md).

The library is shared by every recording, so bad content stops ``batch`` before step 1 of any
recording (exit code 2, one line): no silent result, no recording half done.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import matrix
from cli_run import cli
from mea_pipeline.store import OutputFile
from output_copy import copy_output

NOISE = "perfect_dense_noise_15x15_15hz_r42_3min"
BAR = "moving_h_bar_s5_d8_3x"


def rewrite_json(library, movie: str, edit) -> None:
    path = library / f"{movie}.json"
    content = json.loads(path.read_text())
    edit(content)
    path.write_text(json.dumps(content))


def replace_movie(library, movie: str, array) -> None:
    path = library / f"{movie}.npy"
    path.unlink()  # a symlink to the session's library: never write through it
    np.save(path, array)


def noise(library) -> np.ndarray:
    return np.load(library / f"{NOISE}.npy")


DAMAGES = {
    "R28": (lambda lib: lib.rename(lib.with_name("gone")), ("stimulus library folder not found", "--stimuli")),
    "R30": (lambda lib: (lib / "playlist.csv").write_text('playlist_name,movie_names\ndemo_set6_tiny,"os.system(1)"\n'),
            ("movie_names is not a list literal", "['movie_a.mov', 'movie_b.mov']")),
    "R31": (lambda lib: pd.read_csv(lib / "movie_length.csv").iloc[1:].to_csv(lib / "movie_length.csv", index=False),
            ("movie_length.csv has no length for movie(s) baseline_127",)),
    "R32": (lambda lib: (lib / "movie_length.csv").write_text(
        (lib / "movie_length.csv").read_text().replace("baseline_127,60", "baseline_127,sixty")),
            ("movie_length of baseline_127 is 'sixty'", "integer >= 1")),
    "R33": (lambda lib: (lib / "green_blue_3s_3i_3x.json").write_text('{"section_kwargs": {"repeat": 3,}'),
            ("green_blue_3s_3i_3x.json is not valid JSON",)),
    "R34": (lambda lib: rewrite_json(lib, "freq_step_5st_3x", lambda c: c["section_kwargs"].pop("repeat")),
            ("freq_step_5st_3x.json", "section_kwargs.repeat is required")),
    "R35": (lambda lib: (lib / "baseline_127.json").unlink(), ("baseline_127.json is missing", "section_kwargs")),
    "R36": (lambda lib: (lib / f"{NOISE}.npy").unlink(), (f"{NOISE}.npy is missing", "stimulus library")),
    "R37": (lambda lib: replace_movie(lib, NOISE, noise(lib)[:300]),
            ("has 300 frames", "movie_length.csv says 600")),
    "R38": (lambda lib: replace_movie(lib, NOISE, noise(lib).reshape(600, 225)),
            ("shape (600, 225)", "(frames, rows, cols)")),
    "R39": (lambda lib: ((lib / f"{NOISE}.npy").unlink(), (lib / f"{NOISE}.npy").write_bytes(b"not numpy")),
            (f"{NOISE}.npy is not a readable .npy file",)),
    "R40": (lambda lib: replace_movie(lib, BAR, np.zeros((650, 100, 100), np.uint8)),
            (f"{BAR}.npy: frames are (100, 100)", "300 x 300 pixels")),
    "R41": (lambda lib: rewrite_json(lib, BAR, lambda c: c["generate_kwargs"].pop("pre_pad_frame")),
            ("generate_kwargs.pre_pad_frame is missing",)),
}


@pytest.mark.parametrize("row", sorted(DAMAGES))
def test_bad_stimulus_content_stops_the_batch_before_step_1(row, tiny, library, tmp_path, capsys):
    damage, names = DAMAGES[row]
    damage(library)
    code, out, err = cli(capsys, "batch", "--config", tiny["config_file"], "--stimuli", library,
                         "--csv", tiny["mapping_csv"], "--output", tmp_path / "out")
    assert code == 2 and out == ""
    matrix.record(row, err, out + err, names=names)
    assert not list((tmp_path / "out").glob("*.h5"))


def test_unknown_playlist_lists_the_known_ones(tiny, tmp_path, capsys):
    code, out, err = cli(capsys, "batch", "--config", tiny["config_file"], "--playlist", "set7",
                         "--csv", tiny["mapping_csv"], "--output", tmp_path / "out")
    assert code == 2
    matrix.record("R29", err, out + err, names=("unknown playlist 'set7'", f"known playlists: {tiny['playlist']}"))


def test_moving_bar_missing_from_the_playlist_is_a_warning(tiny, library, tmp_path, capsys):
    table = pd.read_csv(library / "playlist.csv")
    movies = table.loc[0, "movie_names"].replace(f"'{BAR}.mov', ", "")
    pd.concat([table, pd.DataFrame({"playlist_name": ["no_bar"], "movie_names": [movies]})]).to_csv(
        library / "playlist.csv", index=False)
    code, out, err = cli(capsys, "check", "--config", tiny["config_file"], "--stimuli", library,
                         "--playlist", "no_bar", "--csv", tiny["mapping_csv"], "--output", tmp_path / "out")
    assert code == 0  # step 11 completes with the reason (tests/steps/test_dsgc_step.py)
    line = next(line for line in out.splitlines() if line.startswith("warning: playlist"))
    matrix.record("R42", line, out + err, names=(f"no '{BAR}'", "no_moving_bar"))


def test_recheck_with_a_malformed_movie_json_keeps_the_earlier_sectioning(tiny, tiny_output, library, tmp_path, capsys):
    recording = copy_output(tiny_output, tmp_path / "out")
    before = OutputFile(recording.output_path).verified_records()
    (library / "green_blue_3s_3i_3x.json").write_text('{"section_kwargs": {"repeat": 3,}')
    code, out, err = cli(capsys, "batch", "--config", tiny["config_file"], "--stimuli", library, "--recheck",
                         "--steps", "1-5", "--csv", tiny["mapping_csv"], "--output", recording.output_path.parent)
    assert code == 2 and out == ""
    after = OutputFile(recording.output_path).verified_records()
    lost = sum(after.get(name) != record for name, record in before.items())
    matrix.record("R81", err, out + err, names=("green_blue_3s_3i_3x.json is not valid JSON",), lost=lost)
    assert "section_spike_times" in after
