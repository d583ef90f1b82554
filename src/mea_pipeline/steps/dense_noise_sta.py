"""dense_noise_sta: spike-triggered average of every dense-noise movie (``frames_before`` display frames
before the spike).

For each playlist movie whose name contains ``movie_pattern`` the movie's ``.npy`` is read from
the stimulus library; a missing movie fails the step naming the file it expected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..stimulus_library import StimulusLibrary
from ..frames import STIMULUS
from ..schema import LAB, OURS, Out, outs
from . import load_recording, section_spike_times, section_time
from .registry import Step, StepContext, reader


@dataclass(frozen=True)
class DenseNoiseStaParams:
    """Which movies get an STA, and its length.

    Attributes
    ----------
    movie_pattern : str
        Every sectioned playlist movie whose name contains this text is a dense-noise movie and
        gets an STA.
    frames_before : int
        Movie frames averaged before each spike's frame: the STA's length (rf_geometry's
        ``frame_range`` counts in these frames); a spike with fewer frames before it is not used.
    """

    movie_pattern: str = "dense_noise"
    frames_before: int = 60


def spike_frames(spikes: np.ndarray, frame_samples: np.ndarray, movie_frame0: int) -> np.ndarray:
    """Movie frame on screen at each spike (the last frame that started at or before it)."""
    return np.searchsorted(frame_samples, spikes, side="right") - 1 - movie_frame0


def dense_noise_sta(frames_per_unit: list[np.ndarray], movie: np.ndarray, frames_before: int):
    """STA of each unit over the ``frames_before`` movie frames preceding its spikes' frames.

    A spike at movie frame ``f`` uses frames ``f - frames_before .. f - 1`` and counts only when
    all of them exist (``frames_before <= f <= n_frames``). Returns ``(sta, n_used)``:
    ``sta`` float32 (n_units, frames_before, rows, cols), NaN for a unit with no valid spike.
    """
    n_frames = movie.shape[0]
    flat = np.asarray(movie, dtype=np.float32).reshape(n_frames, -1)
    counts = np.zeros((len(frames_per_unit), n_frames + 1), dtype=np.float32)
    for row, frames in zip(counts, frames_per_unit):
        valid = frames[(frames >= frames_before) & (frames <= n_frames)]
        np.add.at(row, valid, 1.0)
    n_used = counts.sum(axis=1).astype(np.int64)
    # sta[:, k] = sum_f counts[:, f] * movie[f - frames_before + k]: one matrix product per lag,
    # exact in float32 for integer movie values and the spike counts of a recording.
    weights = counts[:, frames_before:]
    span = n_frames + 1 - frames_before
    sta = np.stack([weights @ flat[k:k + span] for k in range(frames_before)], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sta /= n_used[:, None, None]
    return sta.reshape((len(frames_per_unit), frames_before) + movie.shape[1:]).astype(np.float32), n_used


# The outputs, each declared once: the writer and the readers name paths through these.
_NOISE_ONLY = " (absent when no sectioned playlist movie contains movie_pattern)"
STA = Out("units/{unit}/features/sta_{movie}/data", "f", 3,
          "float32 (frames_before, rows, cols) mean movie frames before the spike's frame (index -1 = the frame just "
          "before it; the spike's own frame excluded), in the movie's pixel values, not mean-subtracted; NaN if no "
          "spike" + _NOISE_ONLY, required=False, origin=LAB, units="movie pixel value (0-255)", frame=STIMULUS)
N_SPIKES_USED, N_SPIKES_EXCLUDED = outs(
    "units/{unit}/features/sta_{movie}/metadata", ("n_spikes_used", "n_spikes_excluded"), "i", 0,
    "trial-0 spikes {name} (used: all frames_before frames inside the movie)" + _NOISE_ONLY, required=False,
    origin=LAB, units="spikes")
COVER_RANGE = Out("units/{unit}/features/sta_{movie}/metadata/cover_range", "i", 1,
                  "[-frames_before, 0]" + _NOISE_ONLY, required=False, origin=LAB, units="frames")
MOVIE_NAME = Out("units/{unit}/features/sta_{movie}/metadata/movie_name", "str", 0, "the noise movie" + _NOISE_ONLY,
                 required=False, origin=LAB)
MOVIES = Out("metadata/dense_noise_sta/movies", "str", 1, "movies an STA was computed for", origin=OURS)


@reader("dense_noise_sta")
def sta_movies(h5) -> list[str]:
    """Movies this step computed an STA for."""
    path = MOVIES.at()
    return list(h5[path].asstr()[()]) if path in h5 else []


@reader("dense_noise_sta")
def sta(h5, unit: str, movie: str) -> np.ndarray | None:
    """The unit's STA of ``movie`` (frames_before, rows, cols) float32, None if absent."""
    path = STA.at(unit=unit, movie=movie)
    return h5[path][()] if path in h5 else None


def check_noise_movies(check, pattern: str) -> None:
    """Pre-flight: the ``.npy`` of every playlist movie whose name contains ``pattern``, read as :func:`run` reads it.

    rf_geometry's LN fitting reads the same movies: its check calls this with
    ``check.params_of("dense_noise_sta").movie_pattern``.
    """
    for movie in (m for m in check.movies if pattern in m):
        check.attempt(check.library.movie_array, movie)


def _check_library(check) -> None:
    check_noise_movies(check, check.params.movie_pattern)


def run(ctx: StepContext, p: DenseNoiseStaParams) -> dict:
    library = StimulusLibrary(ctx.config.stimuli)
    frame_samples = section_time.frame_timestamps(ctx)
    movies = [m for m in section_time.sectioned_movies(ctx) if p.movie_pattern in m]
    if not movies:
        ctx.warn(f"no playlist movie name contains '{p.movie_pattern}'; no dense-noise STA computed")
    unit_names = load_recording.unit_ids(ctx)
    for movie_name in movies:
        movie = library.movie_array(movie_name)
        movie_frame0 = section_time.movie_frame0(ctx, movie_name)
        spikes = [section_spike_times.trial_spikes(ctx, u, movie_name, 0) for u in unit_names]
        frames = [spike_frames(s, frame_samples, movie_frame0) for s in spikes]
        sta, n_used = dense_noise_sta(frames, movie, p.frames_before)
        for index, unit in enumerate(unit_names):
            for out, value in {
                STA: sta[index], N_SPIKES_USED: int(n_used[index]),
                N_SPIKES_EXCLUDED: int(len(spikes[index]) - n_used[index]),
                COVER_RANGE: np.asarray([-p.frames_before, 0], dtype=np.int64), MOVIE_NAME: movie_name,
            }.items():
                ctx.tx.write(out.at(unit=unit, movie=movie_name), value)
    ctx.tx.write(MOVIES.at(), movies)
    return {"movies": movies, "n_units": len(unit_names)}


STEP = Step(
    name="dense_noise_sta", position=4, upstream=("load_recording", "section_time", "section_spike_times"),
    reads=frozenset({"stimuli"}), params=DenseNoiseStaParams, version="2", run=run,
    outputs=(STA, N_SPIKES_USED, N_SPIKES_EXCLUDED, COVER_RANGE, MOVIE_NAME, MOVIES),
    description="Dense-noise spike-triggered average (float32, frames_before x rows x cols) per unit",
    library_check=_check_library,
)
