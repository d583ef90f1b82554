"""dsgc's reading of the stimulus library, shared by the step and its pre-flight library check.

The moving bar's sweeps come from its JSON and the frame count of its ``.npy`` (or of
``movie_length.csv``); the crossings from the ``.npy`` (its frames must be ``stimulus_px``
square) or from the lab's pickle (``--on-off-dict``), checked against those sweeps.
"""

from __future__ import annotations

import numpy as np

from ..dsgc.params import DsgcParams
from ..dsgc.pickle_table import load_on_off_table
from ..dsgc.segments import DirectionLayout, direction_segments
from ..errors import InputError
from ..stimulus_library import StimulusLibrary


def check_frame_size(movie: np.ndarray, path, p: DsgcParams) -> None:
    """Refuse a bar movie whose frames are not ``stimulus_px`` square (the crossings are read at its pixels).

    Raises
    ------
    InputError
        Naming the file, its frame size and the parameter.
    """
    if movie.shape[1:] != (p.stimulus_px, p.stimulus_px):
        raise InputError(f"{path}: frames are {movie.shape[1:]}, dsgc expects "
                         f"{p.stimulus_px} x {p.stimulus_px} pixels (parameter stimulus_px)")


def check_library(check) -> None:
    """What the step reads of the stimulus library, read as the step reads it (pre-flight).

    The bar's JSON and either its ``.npy`` (frame size checked) or, with ``--on-off-dict``, the
    lab's crossing pickle against the JSON's sweeps. A playlist without the bar is a warning: the
    step then completes with ``no_moving_bar``.
    """
    p = check.params
    if p.movie not in check.movies:
        check.warning(f"playlist '{check.config.playlist}' has no '{p.movie}': dsgc completes with "
                      "'no_moving_bar' and sections nothing (set [steps.dsgc] movie if the bar has another name)")
        return
    table_path = check.config.on_off_dict
    found = check.attempt(sweep_layout, check.library, p, need_movie=table_path is None)
    if found is not None and table_path is not None:
        layout, _, layout_source = found
        check.attempt(load_on_off_table, table_path, segments=layout.segments, size=p.stimulus_px,
                      layout_note=f" ({layout_source})")


def sweep_layout(library: StimulusLibrary, p: DsgcParams, *, need_movie: bool
                 ) -> tuple[DirectionLayout, np.ndarray | None, str]:
    """The moving bar's sweeps, its movie (when needed or present) and where its frame count came from.

    Both crossing sources get the same sweeps for the same stimulus. Where the sweeps start
    depends on whether the movie file holds the JSON's ``start_frame`` lead-in, which only its
    frame count tells (:func:`~mea_pipeline.dsgc.segments.direction_segments`): the lab's file
    has 13 560 = 3 x 4520 frames and no lead-in, so its sweeps start at 4520 rep + 120 + 550 d,
    exactly where the lab's pickle generator cut them (ref-steps-6-11 6.1-6.2), while a synthetic
    file holds its lead-in. The count is the ``.npy``'s when the library has it, else
    ``movie_length.csv``'s (the frames of the movie's content, the ones the ``.npy`` holds), never
    an assumed lead-in, which would put the lab's sweeps 60 frames late.

    Raises
    ------
    InputError
        The movie is needed but missing or not ``stimulus_px`` square, the JSON layout is invalid
        or does not fit the movie, or a direction is not a whole degree (the lab's
        ``direction_list`` is int64).
    """
    path = library.movie_array_path(p.movie)
    movie = library.movie_array(p.movie) if need_movie or path.is_file() else None
    if movie is not None:
        n_frames, counted = movie.shape[0], f"{path.name} has {movie.shape[0]} frames"
        if need_movie:
            check_frame_size(movie, path, p)
    else:
        n_frames = library.movie_lengths([p.movie])[p.movie]
        counted = f"movie_length.csv gives {n_frames} frames (no {path.name})"
    layout = direction_segments(library.movie_config(p.movie), p.n_directions, movie_frames=n_frames)
    if not np.array_equal(layout.directions, np.round(layout.directions)):
        raise InputError(f"{library.movie_config_path(p.movie)}: directions {layout.directions.tolist()} must be "
                         "whole degrees (the lab's direction_section/_attrs/direction_list is int64)")
    source = (f"{p.movie}.json sweeps, {counted}: the first trial starts at movie frame {layout.lead_in}; "
              f"trial i = repetition i // {len(layout.directions)}, direction i % {len(layout.directions)}")
    return layout, movie, source
