"""The stimulus library: playlists, movie lengths, per-movie trial layouts and movie arrays.

A library is a folder holding ``playlist.csv`` (``playlist_name``, ``movie_names``),
``movie_length.csv`` (``movie_name``, ``movie_length``), one ``<movie>.json`` per movie whose
``section_kwargs`` give the trial layout, and optional ``<movie>.npy`` movies.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError


@dataclass(frozen=True)
class TrialLayout:
    """Trial layout of one movie, in display frames relative to the movie's frame 0."""

    start_frame: int
    trial_length_frame: int
    repeat: int
    group_count: int = 1
    group_gap: int = 0

    @property
    def n_trials(self) -> int:
        return self.group_count * self.repeat

    def trial_frames(self) -> np.ndarray:
        """(n_trials, 2) start/end frames, movie-relative; groups are separated by ``group_gap``."""
        n = np.arange(self.n_trials)
        start = self.start_frame + n * self.trial_length_frame + (n // self.repeat) * self.group_gap
        return np.stack([start, start + self.trial_length_frame], axis=1).astype(np.int64)


def parse_movie_names(text: str, playlist: str) -> list[str]:
    """Movie names of a playlist cell: a Python list literal of file names, parsed safely.

    Extensions are stripped (``'baseline_127.mov'`` -> ``'baseline_127'``); the cell is read with
    ``ast.literal_eval``, never evaluated as code.
    """
    try:
        names = ast.literal_eval(str(text))
    except (ValueError, SyntaxError) as exc:
        raise InputError(
            f"playlist '{playlist}': movie_names is not a list literal ({text!r}); "
            "write it as ['movie_a.mov', 'movie_b.mov']"
        ) from exc
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise InputError(f"playlist '{playlist}': movie_names must be a list of file names, got {text!r}")
    return [n.split(".", 1)[0] for n in names]


def _require_int(value, name: str, minimum: int, source: Path) -> int:
    # bool is an int subclass in Python; a JSON true/false here is a typo, not a count.
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{source}: section_kwargs.{name} must be an integer >= {minimum}, got {value!r}")
    return value


class StimulusLibrary:
    """Read-only view of a stimulus library folder."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(
                f"stimulus library folder not found: {self.folder}; pass --stimuli DIR "
                "(a folder with playlist.csv, movie_length.csv and <movie>.json files)"
            )

    def _table(self, name: str, columns: tuple[str, str]) -> pd.DataFrame:
        path = self.folder / name
        if not path.is_file():
            raise InputError(f"{path} is missing; the stimulus library needs it (columns {', '.join(columns)})")
        try:
            table = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise InputError(f"{path} is not a readable CSV ({' '.join(str(exc).split())}); "
                             f"write it with the columns {', '.join(columns)}") from None
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(columns)}")
        return table

    def playlist_names(self) -> list[str]:
        return list(self._table("playlist.csv", ("playlist_name", "movie_names"))["playlist_name"])

    def playlist(self, name: str) -> list[str]:
        """Movie names of playlist ``name`` in display order."""
        table = self._table("playlist.csv", ("playlist_name", "movie_names"))
        rows = table[table["playlist_name"] == name]
        if rows.empty:
            known = ", ".join(map(str, table["playlist_name"])) or "none"
            raise InputError(
                f"unknown playlist '{name}' in {self.folder / 'playlist.csv'}; known playlists: {known}"
            )
        return parse_movie_names(rows.iloc[0]["movie_names"], name)

    def movie_lengths(self, movies: list[str]) -> dict[str, int]:
        """Length in display frames of each movie; a movie missing from the table is an error."""
        table = self._table("movie_length.csv", ("movie_name", "movie_length"))
        lengths = dict(zip(table["movie_name"].astype(str), table["movie_length"]))
        missing = [m for m in movies if m not in lengths]
        if missing:
            raise InputError(
                f"{self.folder / 'movie_length.csv'} has no length for movie(s) {', '.join(missing)}; "
                "add a row per movie (skipping one would shift every later movie)"
            )
        counts = {m: pd.to_numeric(lengths[m], errors="coerce") for m in movies}
        bad = [m for m, n in counts.items() if not (n >= 1 and n == int(n))]
        if bad:
            raise InputError(f"{self.folder / 'movie_length.csv'}: movie_length of {bad[0]} is {lengths[bad[0]]!r}; "
                             "give the number of display frames (an integer >= 1)")
        return {m: int(n) for m, n in counts.items()}

    def movie_config_path(self, movie: str) -> Path:
        return self.folder / f"{movie}.json"

    def movie_config(self, movie: str) -> dict:
        """The content of ``<movie>.json`` (an object)."""
        path = self.movie_config_path(movie)
        if not path.is_file():
            raise InputError(f"{path} is missing: movie '{movie}' needs a JSON with section_kwargs")
        try:
            config = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(config, dict):
            raise InputError(f"{path}: expected a JSON object with section_kwargs")
        return config

    def trial_layout(self, movie: str) -> TrialLayout:
        """Validated ``section_kwargs`` of ``<movie>.json``."""
        path = self.movie_config_path(movie)
        kwargs = self.movie_config(movie).get("section_kwargs")
        if not isinstance(kwargs, dict):
            raise InputError(f"{path}: no 'section_kwargs' object")
        for key in ("start_frame", "trial_length_frame", "repeat"):
            if key not in kwargs:
                raise InputError(f"{path}: section_kwargs.{key} is required")
        return TrialLayout(
            start_frame=_require_int(kwargs["start_frame"], "start_frame", 0, path),
            trial_length_frame=_require_int(kwargs["trial_length_frame"], "trial_length_frame", 1, path),
            repeat=_require_int(kwargs["repeat"], "repeat", 1, path),
            group_count=_require_int(kwargs.get("group_count", 1), "group_count", 1, path),
            group_gap=_require_int(kwargs.get("group_gap", 0), "group_gap", 0, path),
        )

    def movie_array_path(self, movie: str) -> Path:
        return self.folder / f"{movie}.npy"

    def movie_array(self, movie: str) -> np.ndarray:
        """The movie's frames, memory-mapped (frames, rows, cols), checked before any frame is read.

        A movie of the wrong shape would give a complete-looking wrong result (an STA from part
        of the spikes, or of the wrong shape), so it must be 3-D, of a numeric dtype, with the
        frame count ``movie_length.csv`` gives, or that count less the lead-in its JSON declares
        (``start_frame``): the lab's moving-bar file starts at its first trial.
        """
        path = self.movie_array_path(movie)
        if not path.is_file():
            raise InputError(f"stimulus movie {path} is missing; put {movie}.npy in the stimulus library")
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise InputError(f"stimulus movie {path} is not a readable .npy file ({' '.join(str(exc).split())}); "
                             "write it again with numpy.save") from None
        if array.ndim != 3 or array.dtype.kind not in "uif":
            raise InputError(f"stimulus movie {path} holds a {array.dtype} array of shape {array.shape}; expected "
                             "numbers of shape (frames, rows, cols)")
        n_frames, expected = array.shape[0], self.movie_lengths([movie])[movie]
        if n_frames != expected and n_frames != expected - self.trial_layout(movie).start_frame:
            raise InputError(f"stimulus movie {path} has {n_frames} frames, {self.folder / 'movie_length.csv'} "
                             f"says {expected}; use the movie that was shown (or correct its length)")
        return array

    def fingerprint(self) -> str:
        """Content hash of the tables and JSONs, plus size/mtime of the movie arrays."""
        digest = hashlib.sha256()
        for path in sorted(self.folder.iterdir()):
            if path.suffix in (".csv", ".json"):
                digest.update(path.name.encode() + b"\0" + path.read_bytes())
            elif path.suffix == ".npy":
                stat = path.stat()
                digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        return digest.hexdigest()


def section_frames(movies: list[str], lengths: dict[str, int], pad_frame: int, pre_margin: int,
                   post_margin: int) -> dict[str, np.ndarray]:
    """Section [start, end] in display frames of every playlist occurrence of each movie.

    Each movie is framed by ``pad_frame`` grey frames on both sides plus one; its section starts
    ``pre_margin`` frames before its first frame and ends ``post_margin`` frames after its last
    (+1), as in the lab's playlist player. Returns movie -> (n_occurrences, 2) int64.
    """
    sections: dict[str, list[list[int]]] = {}
    count = 0
    for movie in movies:
        length = lengths[movie]
        start = count + pad_frame - pre_margin
        end = count + pad_frame + post_margin + length + 1
        sections.setdefault(movie, []).append([start, end])
        count += 2 * pad_frame + length + 1
    return {m: np.asarray(v, dtype=np.int64) for m, v in sections.items()}


def expected_frame_count(movies: list[str], lengths: dict[str, int], pad_frame: int) -> int:
    """Display frames the playlist emits after the start-up pulses (``pad_frame`` as in :func:`section_frames`)."""
    return sum(2 * pad_frame + lengths[m] + 1 for m in movies)
