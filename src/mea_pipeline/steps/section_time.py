"""section_time: display-frame timestamps and the section of every playlist movie.

Frame timestamps are the rising edges of the frame-sync channel; the rig's start-up pulses
before the playlist's first frame are dropped. Sections follow the playlist and movie-length
tables of the stimulus library; a movie missing from the movie-length table is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..schema import LAB, OURS, Out, outs
from ..stimulus_library import StimulusLibrary, expected_frame_count, section_frames
from .registry import Step, StepContext, reader


@dataclass(frozen=True)
class SectionTimeParams:
    """Where the frame timestamps are read and how the playlist's movies are sectioned.

    Attributes
    ----------
    startup_pulses : int
        Frame-sync pulses the rig sends before the playlist's first frame, dropped (the lab's 4).
    frame_sync_channel : int
        Index of the analog channel carrying the frame-sync pulses (one per display frame).
    light_channel : int
        Index of the analog channel carrying the light reference (``light_reference`` ch1,
        ``light_template``).
    edge_threshold : float
        A frame-sync edge is where the signal rises past this fraction of the way from its
        baseline (median) to the pulse top.
    sync_top_percentile : float
        Percentile of the frame-sync signal taken as the pulse top (the lab's normalisation level).
    pad_frame : int
        Grey display frames the player shows on each side of every movie (which also takes one
        extra frame); sets the expected frame count and where each movie starts.
    pre_margin_frame : int
        Display frames a movie's section starts before its first frame; movie frame 0 = section
        start + this, for every step downstream.
    post_margin_frame : int
        Display frames a movie's section runs on past its last frame.
    playlist_repeats : int
        Times the playlist was played in a row (the lab's ``repeats``); at least 1.
    """

    startup_pulses: int = 4
    frame_sync_channel: int = 1
    light_channel: int = 0
    edge_threshold: float = 0.5
    sync_top_percentile: float = 99.9
    pad_frame: int = 180
    pre_margin_frame: int = 60
    post_margin_frame: int = 120
    playlist_repeats: int = 1


def rising_edges(signal: np.ndarray, fraction: float, top_percentile: float) -> np.ndarray:
    """Sample index of each pulse's rising edge: the last sample before the signal crosses its mid level.

    That is the lab's frame timestamp: the index ``i`` of the first difference
    ``signal[i + 1] - signal[i]`` that makes the rise. The level is ``fraction`` of the way
    from the median (the idle level between pulses) to the ``top_percentile`` percentile (the
    pulse top), so it holds for any ADC gain and offset.
    """
    x = np.asarray(signal, dtype=np.float64)
    low, high = np.median(x), np.percentile(x, top_percentile)
    if high <= low:
        return np.zeros(0, dtype=np.int64)
    above = x > low + fraction * (high - low)
    return np.flatnonzero(above[1:] & ~above[:-1]).astype(np.int64)


def block_mean(signal: np.ndarray, factor: int) -> np.ndarray:
    """Mean of consecutive blocks of ``factor`` samples (a trailing partial block is dropped)."""
    n = len(signal) // factor
    return signal[: n * factor].reshape(n, factor).mean(axis=1, dtype=np.float64).astype(np.float32)


def light_template(light: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Position-wise mean of the light trace over a movie's occurrences ``[start, end)`` (NaN-padded).

    The lab's ``light_template``: the raw light channel at the acquisition rate, float32.
    """
    pieces = [np.asarray(light[start:end], dtype=np.float32) for start, end in bounds]
    stacked = np.full((len(pieces), max(len(piece) for piece in pieces)), np.nan, dtype=np.float32)
    for row, piece in zip(stacked, pieces):
        row[: len(piece)] = piece
    return np.nanmean(stacked, axis=0, dtype=np.float64).astype(np.float32)


# The outputs, each declared once: the writer and the readers name paths through these.
FRAME_TIMESTAMPS = Out("metadata/frame_timestamps", "u", 1,
                       "sample of each display frame: the last sample before its frame-sync pulse rises (the lab's "
                       "convention), start-up pulses dropped", origin=LAB, units="samples")
FRAME_TIME = Out("metadata/frame_time", "f", 1, "frame_timestamps / acquisition_rate", origin=LAB, units="s")
FRAME_TIMES_DEFAULT = Out("stimulus/frame_times/default", "u", 1, "same as metadata/frame_timestamps", origin=LAB,
                          units="samples")
DETECTED_FRAMES, EXPECTED_FRAMES, FRAME_DIFFERENCE = outs(
    "metadata/frame_qc", ("detected_frames", "expected_frames", "difference"), "i", 0,
    "display frames: {name} (expected from the playlist)", origin=OURS, units="frames")
STARTUP_PULSES_DROPPED = Out("metadata/frame_qc/startup_pulses_dropped", "i", 0,
                             "frame-sync pulses dropped before frame 0", origin=OURS, units="pulses")
PAD_FRAME, PRE_MARGIN_FRAME, POST_MARGIN_FRAME = outs(
    "metadata/section_margins", ("pad_frame", "pre_margin_frame", "post_margin_frame"), "i", 0,
    "{name} used (movie frame 0 = section start + pre_margin_frame)", origin=OURS, units="frames")
PLAYLIST = Out("metadata/section_time_playlist", "str", 0, "playlist used", origin=LAB)
REPEATS = Out("metadata/section_time_repeats", "i", 0, "times the playlist was played (playlist_repeats)",
              origin=LAB)
MOVIES = Out("metadata/section_time_movies", "str", 1, "playlist movies in order", origin=OURS)
LIGHT_1KHZ, LIGHT_10HZ = outs("stimulus/light_reference", ("1khz_ch1", "10hz_ch1"), "f", 1,
                              "light channel as block means of the raw samples ({name})", origin=LAB,
                              units="ADC counts")
SYNC_1KHZ, SYNC_10HZ = outs("stimulus/light_reference", ("1khz_ch2", "10hz_ch2"), "f", 1,
                            "frame-sync channel as block means of the raw samples ({name})", origin=LAB,
                            units="ADC counts")
SECTION_FRAMES = Out("stimulus/section_frames/{movie}", "i", 2,
                     "(occurrences, 2) section [start, end] in display frames", origin=OURS, units="frames")
SECTION_TIME = Out("stimulus/section_time/{movie}", "i", 2, "(occurrences, 2) section [start, end] in samples",
                   origin=LAB, units="samples")
LIGHT_TEMPLATE = Out("stimulus/light_template/{movie}", "f", 1,
                     "mean raw light channel over the occurrences, at the acquisition rate, float32", origin=LAB,
                     units="ADC counts")


def run(ctx: StepContext, p: SectionTimeParams) -> dict:
    # Imported when the step runs: reading the registry (status, schema) stays fast.
    from ..mcs_io import CmcrFile

    if p.playlist_repeats < 1:
        raise InputError(f"playlist_repeats must be at least 1, got {p.playlist_repeats}")
    library = StimulusLibrary(ctx.config.stimuli)
    movies = library.playlist(ctx.config.playlist)
    lengths = library.movie_lengths(movies)
    played = movies * p.playlist_repeats
    with CmcrFile(ctx.recording.cmcr_path) as cmcr:
        analog = cmcr.analog()
        rate = cmcr.sampling_rate_hz
    frame_sync = analog[p.frame_sync_channel]
    light = analog[p.light_channel]

    edges = rising_edges(frame_sync, p.edge_threshold, p.sync_top_percentile)
    frames = edges[p.startup_pulses:]
    expected = expected_frame_count(played, lengths, p.pad_frame)
    if len(frames) != expected:
        ctx.warn(f"frame count QC: detected {len(frames)} display frames, playlist "
                 f"'{ctx.config.playlist}' expects {expected}")

    tx = ctx.tx
    tx.write(FRAME_TIMESTAMPS.at(), frames.astype(np.uint64))
    tx.write(FRAME_TIME.at(), frames / rate)
    tx.write(FRAME_TIMES_DEFAULT.at(), frames.astype(np.uint64))
    for out, value in {
        DETECTED_FRAMES: len(frames), EXPECTED_FRAMES: expected, FRAME_DIFFERENCE: len(frames) - expected,
        STARTUP_PULSES_DROPPED: min(p.startup_pulses, len(edges)),
        PAD_FRAME: p.pad_frame, PRE_MARGIN_FRAME: p.pre_margin_frame, POST_MARGIN_FRAME: p.post_margin_frame,
        PLAYLIST: ctx.config.playlist, REPEATS: int(p.playlist_repeats), MOVIES: movies,
    }.items():
        tx.write(out.at(), value)

    factor_1khz = max(1, int(round(rate / 1000)))
    tx.write(LIGHT_1KHZ.at(), block_mean(light, factor_1khz))
    tx.write(SYNC_1KHZ.at(), block_mean(frame_sync, factor_1khz))
    tx.write(LIGHT_10HZ.at(), block_mean(light, factor_1khz * 100))
    tx.write(SYNC_10HZ.at(), block_mean(frame_sync, factor_1khz * 100))

    sectioned = []
    for movie, occurrences in section_frames(played, lengths, p.pad_frame, p.pre_margin_frame,
                                             p.post_margin_frame).items():
        if occurrences.max() >= len(frames):
            ctx.warn(f"{movie}: section ends at display frame {int(occurrences.max())} but only "
                     f"{len(frames)} frames were detected; movie not sectioned")
            continue
        samples = frames[occurrences]
        tx.write(SECTION_FRAMES.at(movie=movie), occurrences)
        tx.write(SECTION_TIME.at(movie=movie), samples.astype(np.int64))
        tx.write(LIGHT_TEMPLATE.at(movie=movie), light_template(light, samples))
        sectioned.append(movie)
    return {"n_frames": int(len(frames)), "expected_frames": int(expected), "movies": sectioned}


@reader("section_time")
def frame_timestamps(h5) -> np.ndarray:
    """Sample index of every display frame (int64)."""
    return h5[FRAME_TIMESTAMPS.at()][()].astype(np.int64)


@reader("section_time")
def sectioned_movies(h5) -> list[str]:
    """Movies this step sectioned, in playlist order."""
    return [m for m in h5[MOVIES.at()].asstr()[()] if SECTION_FRAMES.at(movie=m) in h5]


@reader("section_time")
def movie_frame0(h5, movie: str) -> int:
    """Display frame of the first movie frame of ``movie``'s first occurrence.

    The section starts ``pre_margin_frame`` frames before the movie; the margin used is read
    back from this step's output, so downstream steps never re-declare it.
    """
    pre_margin = int(h5[PRE_MARGIN_FRAME.at()][()])
    return int(h5[SECTION_FRAMES.at(movie=movie)][0, 0]) + pre_margin


STEP = Step(
    name="section_time", position=2, upstream=(), reads=frozenset({"cmcr", "stimuli"}),
    params=SectionTimeParams, version="3", run=run,
    outputs=(
        FRAME_TIMESTAMPS, FRAME_TIME, FRAME_TIMES_DEFAULT, DETECTED_FRAMES, EXPECTED_FRAMES, FRAME_DIFFERENCE,
        STARTUP_PULSES_DROPPED, PAD_FRAME, PRE_MARGIN_FRAME, POST_MARGIN_FRAME, PLAYLIST, REPEATS, MOVIES,
        LIGHT_1KHZ, LIGHT_10HZ, SYNC_1KHZ, SYNC_10HZ, SECTION_FRAMES, SECTION_TIME, LIGHT_TEMPLATE,
    ),
    description="Frame timestamps from the frame-sync channel, QC against the playlist, movie sections",
)
