"""The stimulus library as the selected steps will read it: tables, playlist, JSONs, movies.

What each step reads of the library: step 2 the playlist and ``movie_length.csv``; step 3 every
playlist movie's JSON; step 4 (and step 7's LN model) the dense-noise ``.npy`` movies; step 11
the moving bar's JSON and either its ``.npy`` or the lab's crossing pickle. Each is read with the
reader the step uses, so bad content stops the batch here instead of becoming a silent result
(a movie dropped with a warning, an STA from half the frames).
"""

from __future__ import annotations

from ..config import PipelineConfig
from ..dsgc.pickle_table import load_on_off_table
from ..steps.dsgc import sweep_layout
from ..steps.registry import Registry
from ..stimulus_library import StimulusLibrary
from .report import Report


def check_stimuli(report: Report, config: PipelineConfig, names: set[str], registry: Registry) -> None:
    """Check what the steps ``names`` read of the library (see the module docstring)."""
    if config.stimuli is None:
        report.error("the selected steps read the stimulus library; pass --stimuli DIR (or stimuli = ... in --config)")
        return
    library = report.attempt(StimulusLibrary, config.stimuli)
    movies = report.attempt(library.playlist, config.playlist) if library else None
    if not movies or report.attempt(library.movie_lengths, movies) is None:
        return
    unique = list(dict.fromkeys(movies))
    if "section_spike_times" in names:
        for movie in unique:
            report.attempt(library.trial_layout, movie)
    reads_noise = "dense_noise_sta" in names or (
        "rf_geometry" in names and config.params_for(registry["rf_geometry"]).lnl_fitting)
    if reads_noise:
        pattern = config.params_for(registry["dense_noise_sta"]).movie_pattern
        for movie in (m for m in unique if pattern in m):
            report.attempt(library.movie_array, movie)
    if "dsgc" in names:
        _check_moving_bar(report, config, library, unique, config.params_for(registry["dsgc"]))


def _check_moving_bar(report: Report, config: PipelineConfig, library: StimulusLibrary, movies: list[str],
                      params) -> None:
    if params.movie not in movies:
        report.warning(f"playlist '{config.playlist}' has no '{params.movie}': step 11 completes with "
                       "'no_moving_bar' and sections nothing (set [steps.dsgc] movie if the bar has another name)")
        return
    found = report.attempt(sweep_layout, library, params, need_movie=config.on_off_dict is None)
    if found is not None and config.on_off_dict is not None:
        layout, _, layout_source = found
        report.attempt(load_on_off_table, config.on_off_dict, segments=layout.segments, size=params.stimulus_px,
                       layout_note=f" ({layout_source})")
