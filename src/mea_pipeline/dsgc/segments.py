"""Where each direction's sweep sits in the moving-bar movie, from the movie's JSON config.

The moving bar shows ``repeat`` trials; each trial is ``pre_pad_frame`` frames of background and
then one sweep of ``frames_per_direction`` frames per direction. Sweep (trial) ``i`` is direction
``i % n_directions`` of repetition ``i // n_directions`` (repetition-major, the lab's order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

@dataclass(frozen=True)
class DirectionLayout:
    """Sweep segments of the moving-bar movie.

    Attributes
    ----------
    directions : np.ndarray
        (n_directions,) float64 motion directions in degrees (0 = toward +column, 90 = toward +row).
    n_repetitions : int
        Repetitions of the full set of directions.
    lead_in : int
        Frames before the first trial in the movie file (``start_frame`` or 0).
    segments : np.ndarray
        (n_trials, 2) int64 ``[start, end)`` movie-relative frames of each sweep.
    trial_direction : np.ndarray
        (n_trials,) int64 index into ``directions`` of each sweep.
    trial_rep : np.ndarray
        (n_trials,) int64 repetition of each sweep.
    """

    directions: np.ndarray
    n_repetitions: int
    lead_in: int
    segments: np.ndarray
    trial_direction: np.ndarray
    trial_rep: np.ndarray

    @property
    def n_trials(self) -> int:
        return len(self.segments)


def _int_field(section: dict, key: str, where: str, source: str, minimum: int) -> int:
    if key not in section:
        raise InputError(f"{source}: {where}.{key} is missing; add it (an integer >= {minimum})")
    value = section[key]
    # bool is an int subclass; a JSON true/false in a frame count is a typo, not a number.
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{source}: {where}.{key} = {value!r} must be an integer >= {minimum}")
    return value


def direction_segments(config: dict, n_directions: int, movie_frames: int) -> DirectionLayout:
    """Sweep segments of every direction and repetition, in movie-relative frames.

    Parameters
    ----------
    config : dict
        The movie's JSON content. Read: ``section_kwargs.start_frame``, ``trial_length_frame``,
        ``repeat``; ``generate_kwargs.pre_pad_frame``, and when present
        ``generate_kwargs.frames_per_direction`` (else ``(trial_length_frame - pre_pad_frame) /
        n_directions``, which must be a whole number) and ``generate_kwargs.directions_deg``
        (else 0, 45, ..., 315).
    n_directions : int
        Directions per repetition; spaced evenly from 0 deg when the JSON does not list them.
    movie_frames : int
        Frames of the movie file the sweeps are located in (of its ``.npy``, or the
        ``movie_length.csv`` entry when a crossing table replaces the ``.npy``); decides the
        lead-in (see Notes).

    Returns
    -------
    DirectionLayout
        Sweep ``i = rep * n_directions + d`` starts at ``lead_in + rep * trial_length_frame +
        pre_pad_frame + d * frames_per_direction`` and lasts ``frames_per_direction`` frames.

    Notes
    -----
    ``start_frame`` counts from movie frame 0, as in section_spike_times (movie frame 0 = section
    start + 60).
    The lab's JSON gives ``start_frame`` 60, ``trial_length_frame`` 4520 = 120 + 8 x 550 and
    ``repeat`` 3, but the lab's moving-bar ``.npy`` holds 13 560 = 3 x 4520 frames, its ON/OFF
    dictionary generator cuts its sweeps at 4520 rep + 120 + 550 d of that file, and its dsgc step
    compares those frames with spikes counted from movie frame 0: the file holds no lead-in, its
    trials start at its frame 0, and ``start_frame`` is section_spike_times' offset, not part of
    the sweeps
    (ref-steps-6-11 6.1, 6.2, 6.4). The synthetic library's movies do hold their ``start_frame``
    lead-in. So the lead-in is decided by the file: ``start_frame`` when the file has room for it
    and every trial (``movie_frames >= start_frame + repeat * trial_length_frame``), 0 when it
    holds the trials' frames but not the lead-in, and a movie shorter than its trials is an
    error. Frames stay movie-relative either way: file frame k is shown at movie frame k.

    Raises
    ------
    InputError
        A field is missing or not a non-negative integer, the sweeps do not fit in a trial, the
        sweep length is not a whole number, or ``directions_deg`` does not list the directions.
    """
    source = f"{config.get('name', 'moving bar')}.json"
    section = config.get("section_kwargs")
    generate = config.get("generate_kwargs")
    if not isinstance(section, dict) or not isinstance(generate, dict):
        raise InputError(f"{source}: needs the objects section_kwargs and generate_kwargs")
    start = _int_field(section, "start_frame", "section_kwargs", source, 0)
    trial = _int_field(section, "trial_length_frame", "section_kwargs", source, 1)
    repeat = _int_field(section, "repeat", "section_kwargs", source, 1)
    pre_pad = _int_field(generate, "pre_pad_frame", "generate_kwargs", source, 0)

    directions = generate.get("directions_deg", list(360.0 * np.arange(n_directions) / n_directions))
    if (not isinstance(directions, list) or len(directions) != n_directions
            or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in directions)):
        raise InputError(f"{source}: generate_kwargs.directions_deg = {directions!r} must list "
                         f"{n_directions} angles in degrees")

    if "frames_per_direction" in generate:
        per_direction = _int_field(generate, "frames_per_direction", "generate_kwargs", source, 1)
    else:
        sweep_frames = trial - pre_pad
        if sweep_frames <= 0 or sweep_frames % n_directions:
            raise InputError(
                f"{source}: section_kwargs.trial_length_frame - generate_kwargs.pre_pad_frame = "
                f"{sweep_frames} is not a positive multiple of {n_directions} directions; fix the "
                "fields or add generate_kwargs.frames_per_direction")
        per_direction = sweep_frames // n_directions
    if pre_pad + n_directions * per_direction > trial:
        raise InputError(
            f"{source}: generate_kwargs.pre_pad_frame + {n_directions} x frames_per_direction = "
            f"{pre_pad + n_directions * per_direction} exceeds section_kwargs.trial_length_frame = {trial}")

    lead_in = start
    if movie_frames < start + repeat * trial:
        if movie_frames < repeat * trial:
            raise InputError(f"{source}: the movie has {movie_frames} frames, fewer than its {repeat} trials of "
                             f"{trial} frames (section_kwargs); use the movie made for this JSON")
        lead_in = 0
    trial_rep, trial_direction = np.divmod(np.arange(repeat * n_directions, dtype=np.int64), n_directions)
    starts = lead_in + trial_rep * trial + pre_pad + trial_direction * per_direction
    return DirectionLayout(
        directions=np.asarray(directions, dtype=np.float64),
        n_repetitions=repeat,
        lead_in=lead_in,
        segments=np.stack([starts, starts + per_direction], axis=1).astype(np.int64),
        trial_direction=trial_direction,
        trial_rep=trial_rep,
    )
