"""The visual stimulus: movie sections, one trial table per movie, moving-bar sweeps, display frames.

Every time is in seconds from the recording's start (sample index / sampling rate). Interval
tables hold ``[start_time, stop_time)``: start included, stop excluded, as the pipeline cuts spikes.
"""

from __future__ import annotations

import numpy as np
from pynwb import H5DataIO, NWBFile, TimeSeries
from pynwb.epoch import TimeIntervals

from ..steps import dsgc, dsgc_outputs as ds, section_spike_times as sst, section_time
from .source import Source

HALF_OPEN = "start_time included, stop_time excluded (the pipeline's [start, end) in samples / rate)"


def add_sections(nwbfile: NWBFile, source: Source, rate: float) -> list[str]:
    """One ``stimulus_sections`` table: every occurrence of every playlist movie, margins included."""
    movies = section_time.sectioned_movies(source.h5)
    table = TimeIntervals(name="stimulus_sections", description="each playlist movie's sections (occurrences), "
                          f"including the grey margins around the movie; {HALF_OPEN}")
    table.add_column("movie", "playlist movie shown")
    table.add_column("start_frame", "display frame of the section's start")
    table.add_column("stop_frame", "display frame of the section's end")
    rows = []
    for movie in movies:
        samples = source.array(section_time.SECTION_TIME, movie=movie)
        frames = source.array(section_time.SECTION_FRAMES, movie=movie)
        rows += [(int(s[0]), int(s[1]), movie, int(f[0]), int(f[1])) for s, f in zip(samples, frames)]
    for start, stop, movie, start_frame, stop_frame in sorted(rows):
        table.add_interval(start_time=start / rate, stop_time=stop / rate, movie=movie, start_frame=start_frame,
                           stop_frame=stop_frame)
    if rows:
        nwbfile.add_time_intervals(table)
    return movies


def movie_trials(source: Source, units: list[str], movie: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(trials_start_end, [pre, post] padding)`` in samples of ``movie``, None when it was not sectioned.

    section_spike_times stores the trials under every unit; they are the same for all, so the
    first unit holding them gives them.
    """
    for unit in units:
        bounds = source.array(sst.TRIALS_START_END, unit=unit, movie=movie)
        if bounds is not None:
            pad = np.array([source.number(sst.PRE_SAMPLES, unit=unit, movie=movie),
                            source.number(sst.POST_SAMPLES, unit=unit, movie=movie)])
            return bounds.astype(np.int64), np.nan_to_num(pad).astype(np.int64)
    return None


def add_movie_trials(nwbfile: NWBFile, source: Source, units: list[str], movies: list[str], rate: float,
                     notes: list[str]) -> None:
    """One TimeIntervals table per sectioned movie, named ``trials_<movie>``.

    ``start_time``/``stop_time`` bound the window section_spike_times cut each trial's spikes from
    (the trial padded by pad_margin_s), so spikes counted in it are the output's sectioned spikes.
    """
    for movie in movies:
        found = movie_trials(source, units, movie)
        if found is None:
            notes.append(f"trials of {movie}: not sectioned by section_spike_times; table left out")
            continue
        bounds, (pre, post) = found
        table = TimeIntervals(name=f"trials_{movie}", description=f"trials of movie {movie}: each the spike window "
                              f"section_spike_times used ({pre} samples before, {post} after the trial); {HALF_OPEN}")
        table.add_column("trial", "trial index within the movie")
        table.add_column("start_sample", "trial start (sample, without padding)")
        table.add_column("end_sample", "trial end (sample, excluded, without padding)")
        for trial, (start, end) in enumerate(bounds):
            table.add_interval(start_time=(start - pre) / rate, stop_time=(end + post) / rate, trial=trial,
                               start_sample=int(start), end_sample=int(end))
        nwbfile.add_time_intervals(table)


def add_sweeps(nwbfile: NWBFile, source: Source, rate: float, notes: list[str]) -> None:
    """The moving-bar sweeps (first occurrence of the movie), each with its direction."""
    movie = dsgc.bar_movie(source.h5) if source.has("dsgc") else None
    segments = source.array(ds.SWEEP_SEGMENTS) if movie else None
    if segments is None:
        notes.append("moving-bar sweeps: no dsgc sweep layout in the file; table left out")
        return
    directions = source.array(ds.META_DIRECTION_LIST)
    frames = section_time.frame_timestamps(source.h5)
    frame0 = section_time.movie_frame0(source.h5, movie)
    table = TimeIntervals(name="moving_bar_sweeps", description=f"sweeps of the moving bar {movie}, first "
                          f"occurrence: the bar's frames from its first to past its last; {HALF_OPEN}")
    table.add_column("direction_deg", "bar motion direction, degrees, stimulus frame (0 = toward +column, "
                     "90 = toward +row, screen down)")
    table.add_column("repetition", "repetition of the set of directions")
    table.add_column("start_movie_frame", "movie-relative frame of the sweep's start")
    table.add_column("stop_movie_frame", "movie-relative frame of the sweep's end (excluded)")
    last = len(frames) - 1  # a sweep ending with the recording ends at the last frame onset
    for index, (start, stop) in enumerate(segments):
        rep, direction = divmod(index, len(directions))
        table.add_interval(start_time=frames[min(frame0 + start, last)] / rate,
                           stop_time=frames[min(frame0 + stop, last)] / rate,
                           direction_deg=float(directions[direction]), repetition=rep,
                           start_movie_frame=int(start), stop_movie_frame=int(stop))
    nwbfile.add_time_intervals(table)


def add_frames(nwbfile: NWBFile, source: Source, rate: float) -> None:
    """Display frame onsets as a TimeSeries of frame indices with their timestamps (no extension needed)."""
    frames = section_time.frame_timestamps(source.h5)
    nwbfile.add_stimulus(TimeSeries(
        name="display_frames", data=H5DataIO(np.arange(len(frames), dtype=np.int64), compression="gzip"),
        unit="frame index", timestamps=H5DataIO(frames / rate, compression="gzip"),
        description="onset of every display frame of the projector (from the frame-sync channel), "
                    "data = display frame index; movie frame 0 of a movie = its section start + the "
                    "section's pre-margin"))


def add_stimulus(nwbfile: NWBFile, source: Source, units: list[str], rate: float, notes: list[str]) -> None:
    """Every stimulus table the file's steps allow, with a note for each one left out."""
    if not source.has("section_time"):
        notes.append("stimulus: no section_time result; sections, trials, sweeps and frames left out")
        return
    movies = add_sections(nwbfile, source, rate)
    add_frames(nwbfile, source, rate)
    if source.has("section_spike_times"):
        add_movie_trials(nwbfile, source, units, movies, rate, notes)
    else:
        notes.append("trials: no section_spike_times result; trial tables left out")
    add_sweeps(nwbfile, source, rate, notes)
