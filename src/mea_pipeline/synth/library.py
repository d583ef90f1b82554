"""The synthetic stimulus library folder: ``playlist.csv``, ``movie_length.csv``, one JSON per movie
and the dense-noise and moving-bar ``.npy`` movies (the movies themselves: :mod:`.movies`)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .bar_movie import render_bar_movie
from .movies import dense_noise_movie, movie_configs, movie_length
from .spec import DENSE_NOISE, MOVIES, MOVING_BAR, PLAYLISTS


def write_stimulus_library(folder: str | Path, profile: str = "demo") -> Path:
    """Write the stimulus library of ``profile`` into ``folder``; returns the folder.

    Files: ``playlist.csv`` (one playlist, ``PLAYLISTS[profile]``), ``movie_length.csv``, one
    ``<movie>.json`` per movie, and the dense-noise and moving-bar ``<movie>.npy``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    configs = movie_configs(profile)
    names = str([f"{name}.mov" for name in MOVIES])
    pd.DataFrame({"playlist_name": [PLAYLISTS[profile]], "movie_names": [names]}).to_csv(
        folder / "playlist.csv", index=False)
    pd.DataFrame({"movie_name": list(configs), "movie_length": [movie_length(c) for c in configs.values()]}
                 ).to_csv(folder / "movie_length.csv", index=False)
    for name, config in configs.items():
        (folder / f"{name}.json").write_text(json.dumps(config, indent=4) + "\n")
    np.save(folder / f"{DENSE_NOISE}.npy", dense_noise_movie(configs[DENSE_NOISE]))
    # Written through a memory map: the demo's bar movie is ~230 MB.
    render_bar_movie(configs[MOVING_BAR], folder / f"{MOVING_BAR}.npy")
    return folder


def read_playlist(folder: str | Path, playlist: str) -> tuple[list[str], dict[str, int], dict[str, dict]]:
    """Movies of ``playlist`` (extensions stripped), their lengths and their JSON configs."""
    folder = Path(folder)
    table = pd.read_csv(folder / "playlist.csv")
    rows = table[table["playlist_name"] == playlist]
    if rows.empty:
        raise ValueError(f"playlist '{playlist}' not in {folder / 'playlist.csv'}; write the library "
                         "with the same profile as the recording")
    movies = [n.split(".", 1)[0] for n in ast.literal_eval(rows.iloc[0]["movie_names"])]
    lengths_table = pd.read_csv(folder / "movie_length.csv")
    lengths = dict(zip(lengths_table["movie_name"], lengths_table["movie_length"].astype(int)))
    configs = {m: json.loads((folder / f"{m}.json").read_text()) for m in movies}
    return movies, {m: int(lengths[m]) for m in movies}, configs
