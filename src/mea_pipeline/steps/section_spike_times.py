"""section_spike_times: each unit's spikes cut by movie and trial, from the movies' ``section_kwargs``.

Movies are sectioned independently: a movie whose JSON is missing or malformed is recorded as
failed (a warning and ``metadata/spike_sectioning/failed_movies``) and the others go on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..stimulus_library import StimulusLibrary
from ..schema import LAB, OURS, Out, outs
from . import load_recording, section_time
from .registry import Step, StepContext, reader


@dataclass(frozen=True)
class SectionSpikeTimesParams:
    """How far each trial's spike window reaches past the trial.

    Attributes
    ----------
    pad_margin_s : tuple[float, float]
        Time (s) added before a trial's start and after its end when its spikes are cut; the
        lab's (0, 0) keeps exactly the trial.
    """

    pad_margin_s: tuple[float, float] = (0.0, 0.0)


def trial_bounds(movie_frame0: int, layout, frame_samples: np.ndarray) -> np.ndarray:
    """(n_trials, 2) trial [start, end) samples of a movie's first occurrence."""
    frames = layout.trial_frames() + movie_frame0
    if frames.max() >= len(frame_samples):
        raise InputError(f"trials reach display frame {int(frames.max())}, beyond the "
                         f"{len(frame_samples)} detected frames")
    return frame_samples[frames].astype(np.int64)


def cut_trials(spikes: np.ndarray, bounds: np.ndarray, pre: int, post: int) -> list[np.ndarray]:
    """Spikes with ``start - pre <= t < end + post`` for each trial (absolute sample indices)."""
    lo = np.searchsorted(spikes, np.maximum(bounds[:, 0] - pre, 0), side="left")
    hi = np.searchsorted(spikes, bounds[:, 1] + post, side="left")
    return [spikes[a:b].astype(np.int64) for a, b in zip(lo, hi)]


# The outputs, each declared once: the writer and the readers name paths through these.
_SECTIONED = "units/{unit}/spike_times_sectioned/{movie}"
FULL_SPIKE_TIMES = Out(f"{_SECTIONED}/full_spike_times", "i", 1,
                       "sorted union of the trial spikes (absolute sample indices)", origin=LAB, units="samples")
TRIAL_SPIKE_TIMES = Out(f"{_SECTIONED}/trials_spike_times/{{trial}}", "i", 1,
                        "spikes of one trial, start - pre_samples <= t < end + post_samples (absolute sample "
                        "indices)", origin=LAB, units="samples")
TRIALS_START_END = Out(f"{_SECTIONED}/trials_start_end", "i", 2,
                       "(n_trials, 2) trial [start, end) samples, without padding", origin=LAB, units="samples")
N_TRIALS = Out(f"{_SECTIONED}/_attrs/n_trials", "i", 0,
               "trials (group_count x repeat of the movie's section_kwargs)", origin=LAB)
PAD_MARGIN = Out(f"{_SECTIONED}/_attrs/pad_margin", "f", 1, "[before, after] padding of each trial (pad_margin_s)",
                 origin=LAB, units="s")
PRE_SAMPLES, POST_SAMPLES = outs(f"{_SECTIONED}/_attrs", ("pre_samples", "post_samples"), "i", 0,
                                 "padding {name} = int(pad_margin * acquisition_rate)", origin=LAB, units="samples")
SECTIONED_MOVIES = Out("metadata/spike_sectioning/sectioned_movies", "str", 1, "movies sectioned", origin=OURS)
FAILED_MOVIES = Out("metadata/spike_sectioning/failed_movies", "str", 1, "movies whose JSON was missing or invalid",
                    origin=OURS)


@reader("section_spike_times")
def trial_spikes(h5, unit: str, movie: str, trial: int) -> np.ndarray:
    """Spike samples of one trial (empty when the movie was not sectioned for the unit)."""
    path = TRIAL_SPIKE_TIMES.at(unit=unit, movie=movie, trial=trial)
    return h5[path][()].astype(np.int64) if path in h5 else np.zeros(0, np.int64)


@reader("section_spike_times")
def full_spike_times(h5, unit: str, movie: str) -> np.ndarray | None:
    """Spike samples of all of a movie's trials (None when the movie was not sectioned for the unit)."""
    path = FULL_SPIKE_TIMES.at(unit=unit, movie=movie)
    return h5[path][()].astype(np.int64) if path in h5 else None


def check_trial_layouts(check) -> None:
    """Pre-flight: every playlist movie's ``section_kwargs``, read as :func:`run` reads them."""
    for movie in check.movies:
        check.attempt(check.library.trial_layout, movie)


def run(ctx: StepContext, p: SectionSpikeTimesParams) -> dict:
    library = StimulusLibrary(ctx.config.stimuli)
    rate = load_recording.sampling_rate(ctx)
    frame_samples = section_time.frame_timestamps(ctx)
    pre, post = (int(m * rate) for m in p.pad_margin_s)
    units = {name: load_recording.spike_times(ctx, name) for name in load_recording.unit_ids(ctx)}

    sectioned, failed = [], []
    for movie in section_time.sectioned_movies(ctx):
        try:
            layout = library.trial_layout(movie)
            bounds = trial_bounds(section_time.movie_frame0(ctx, movie), layout, frame_samples)
        except InputError as exc:
            ctx.warn(f"{movie}: not sectioned: {exc}")
            failed.append(movie)
            continue
        for name, spikes in units.items():
            trials = cut_trials(spikes, bounds, pre, post)
            where = {"unit": name, "movie": movie}
            full = np.unique(np.concatenate(trials)) if trials else np.zeros(0, np.int64)
            ctx.tx.write(FULL_SPIKE_TIMES.at(**where), full.astype(np.int64))
            for trial, spikes_of_trial in enumerate(trials):
                ctx.tx.write(TRIAL_SPIKE_TIMES.at(**where, trial=trial), spikes_of_trial)
            ctx.tx.write(TRIALS_START_END.at(**where), bounds)
            for out, value in {N_TRIALS: len(bounds), PAD_MARGIN: np.asarray(p.pad_margin_s, dtype=np.float64),
                               PRE_SAMPLES: pre, POST_SAMPLES: post}.items():
                ctx.tx.write(out.at(**where), value)
        sectioned.append(movie)
    ctx.tx.write(SECTIONED_MOVIES.at(), sectioned)
    ctx.tx.write(FAILED_MOVIES.at(), failed)
    return {"movies": sectioned, "failed_movies": failed}


STEP = Step(
    name="section_spike_times", position=3, upstream=("load_recording", "section_time"),
    reads=frozenset({"stimuli"}), params=SectionSpikeTimesParams, version="2", run=run,
    outputs=(FULL_SPIKE_TIMES, TRIAL_SPIKE_TIMES, TRIALS_START_END, N_TRIALS, PAD_MARGIN, PRE_SAMPLES, POST_SAMPLES,
             SECTIONED_MOVIES, FAILED_MOVIES),
    description="Spike times per movie and trial (absolute sample indices)",
    library_check=check_trial_layouts,
)
