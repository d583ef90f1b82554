"""A unit's moving-bar spikes cut into one window per sweep around the bar crossing its RF centre."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .segments import DirectionLayout


@dataclass(frozen=True)
class DirectionSection:
    """One direction's sweep windows, repetition by repetition.

    ``trials``: int64 movie-relative spike frames inside each window; ``bounds``: (n_repetitions,
    2) int64 ``[start, end]`` window frames, both ends included; ``trial_samples``: the same spikes
    as int64 acquisition samples (None when the spikes' samples were not given).
    """

    trials: list[np.ndarray]
    bounds: np.ndarray
    trial_samples: list[np.ndarray] | None


def spike_movie_frames(spike_samples: np.ndarray, frame_timestamps: np.ndarray,
                       movie_frame0: int) -> np.ndarray:
    """Movie frame on screen at each spike.

    Parameters
    ----------
    spike_samples : np.ndarray
        (n_spikes,) acquisition sample indices.
    frame_timestamps : np.ndarray
        (n_frames,) sorted sample index of each display frame's onset.
    movie_frame0 : int
        Index into ``frame_timestamps`` of the movie's frame 0.

    Returns
    -------
    np.ndarray
        (n_spikes,) int64 movie-relative frames: the last frame that started at or before the spike,
        minus ``movie_frame0`` (negative before the movie; not clipped).
    """
    on_screen = np.searchsorted(frame_timestamps, spike_samples, side="right") - 1
    return (on_screen - movie_frame0).astype(np.int64)


def direction_name(angle_deg: float) -> str:
    """Group name of a direction: ``0``, ``45``, ... (``22.5`` for a fractional angle)."""
    return f"{angle_deg:g}"


def section_by_direction(spike_frames: np.ndarray, on: np.ndarray, off: np.ndarray, layout: DirectionLayout,
                         padding: int, spike_samples: np.ndarray | None = None) -> dict[str, DirectionSection]:
    """Spikes of each sweep, from ``padding`` frames before the bar reaches the RF to after it leaves.

    Parameters
    ----------
    spike_frames : np.ndarray
        (n_spikes,) movie-relative frame of each spike (:func:`spike_movie_frames`).
    on, off : np.ndarray
        (n_trials,) movie-relative ON and OFF frames of the bar at the unit's pixel, trial order of
        ``layout``.
    layout : DirectionLayout
        Which direction and repetition each trial is.
    padding : int
        Frames added on both sides of ``[on, off]`` (lab: 40).
    spike_samples : np.ndarray, optional
        (n_spikes,) acquisition sample index of each spike, same order as ``spike_frames``; when
        given, each trial also lists its spikes as samples.

    Returns
    -------
    dict
        One :class:`DirectionSection` per direction, keyed by :func:`direction_name`; its windows
        are ``[on - padding, off + padding]``.
    """
    spike_frames = np.asarray(spike_frames, dtype=np.int64)
    if len(on) != layout.n_trials or len(off) != layout.n_trials:
        raise ValueError(f"on/off have {len(on)}/{len(off)} sweeps, the layout {layout.n_trials}")
    if spike_samples is not None and len(spike_samples) != len(spike_frames):
        raise ValueError("spike_samples and spike_frames must have the same length")
    order = np.argsort(spike_frames, kind="stable")
    frames = spike_frames[order]
    samples = None if spike_samples is None else np.asarray(spike_samples, dtype=np.int64)[order]
    bounds = np.stack([np.asarray(on, dtype=np.int64) - padding, np.asarray(off, dtype=np.int64) + padding],
                      axis=1)
    first = np.searchsorted(frames, bounds[:, 0], side="left")
    stop = np.searchsorted(frames, bounds[:, 1], side="right")

    result = {}
    for d, angle in enumerate(layout.directions):
        trials = np.flatnonzero(layout.trial_direction == d)
        trials = trials[np.argsort(layout.trial_rep[trials], kind="stable")]
        result[direction_name(angle)] = DirectionSection(
            trials=[frames[first[i]:stop[i]] for i in trials], bounds=bounds[trials],
            trial_samples=None if samples is None else [samples[first[i]:stop[i]] for i in trials])
    return result


def trial_spike_counts(sections: dict[str, DirectionSection], layout: DirectionLayout) -> np.ndarray:
    """(n_directions, n_repetitions) spike count of each sweep window, in ``layout.directions`` order."""
    return np.array([[len(t) for t in sections[direction_name(a)].trials] for a in layout.directions],
                    dtype=np.int64)
