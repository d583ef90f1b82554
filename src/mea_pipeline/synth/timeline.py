"""Display-frame schedule of a playlist, its section/trial times and the analog channels.

Frame numbering follows the lab's playlist player (ref-steps-1-5 sections 5 and 6): the rig emits
4 start-up pulses, then one frame-sync pulse per display frame. Display frame 0 is the first
frame after the start-up pulses. For each playlist movie of length L, with ``count`` starting
at 0: 180 padding frames, the movie (movie frame 0 = ``count + 180``), 181 padding frames; its
section is frames ``[count + 120, count + 301 + L]``; then ``count += 361 + L``. Trial ``n`` of a
movie starts at ``movie_frame0 + start_frame + n * trial_length_frame + (n // repeat) *
group_gap`` and lasts ``trial_length_frame`` frames. A frame's sample is its onset: the first
sample at which its frame-sync pulse is high.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bar_geometry import bar_centres
from .movies import IDLE_INTENSITY, PADDING_INTENSITY
from .render import GRID, render_movie
from .spec import SynthSpec

PAD_FRAMES = 180
PRE_MARGIN = 60
POST_MARGIN = 120
STARTUP_PULSES = 4
PULSE_S = 0.002
LIGHT_BASE, LIGHT_GAIN, SYNC_HIGH, ANALOG_NOISE = 100_000, 400_000, 300_000, 300.0


@dataclass
class Timeline:
    """Everything the screen did, frame by frame, and where each frame sits in samples."""

    sampling_rate_hz: float
    n_samples: int
    startup_pulses: np.ndarray      # (4,) int64 pulse onsets before display frame 0
    frame_onsets: np.ndarray        # (n_frames,) int64
    frame_ends: np.ndarray          # (n_frames,) int64, onset of the next frame
    images: np.ndarray              # (n_frames, 15, 15) float32 screen level in [0, 1]
    direction: np.ndarray           # (n_frames,) float32 moving-bar direction (deg) or NaN
    bar_centre_px: np.ndarray       # (n_frames,) float32 bar centre along its motion (bar_geometry.bar_centres) or NaN
    bar: dict | None                # the moving bar's generate_kwargs (geometry), None without a bar
    movies: list[str]
    section_frames: dict[str, list[int]]
    movie_frame0: dict[str, int]
    trial_frames: dict[str, np.ndarray]

    def frame_samples(self, frames) -> np.ndarray:
        return self.frame_onsets[np.asarray(frames, dtype=np.int64)]

    @property
    def light_level(self) -> np.ndarray:
        """Mean screen level of each display frame, in [0, 1]."""
        return self.images.mean(axis=(1, 2))


def trial_frames(config: dict, movie_frame0: int) -> np.ndarray:
    """(n_trials, 2) [start, end] display frames of a movie's trials.

    Written independently of ``stimulus_library.TrialLayout`` / ``section_frames`` on purpose:
    the ground truth must not share code with the pipeline steps it checks.
    """
    k = config["section_kwargs"]
    repeat, length = k["repeat"], k["trial_length_frame"]
    n = np.arange(k.get("group_count", 1) * repeat)
    start = movie_frame0 + k["start_frame"] + n * length + (n // repeat) * k.get("group_gap", 0)
    return np.stack([start, start + length], axis=1).astype(np.int64)


def build_timeline(movies: list[str], lengths: dict[str, int], configs: dict[str, dict],
                   noise: np.ndarray, spec: SynthSpec) -> Timeline:
    """Frame schedule of ``movies`` played once each, with frame onsets in samples."""
    pad = np.full((PAD_FRAMES, GRID, GRID), PADDING_INTENSITY / 255.0, dtype=np.float32)
    images, direction, centres, bar = [], [], [], None
    sections, frame0, trials, count = {}, {}, {}, 0
    for movie in movies:
        length = lengths[movie]
        movie_images, movie_direction = render_movie(movie, configs[movie], noise)
        if len(movie_images) != length:
            raise ValueError(f"{movie}: movie_length.csv says {length} frames, its JSON gives {len(movie_images)}")
        images += [pad, movie_images, pad, pad[:1]]
        direction += [np.full(PAD_FRAMES, np.nan, np.float32), movie_direction,
                      np.full(PAD_FRAMES + 1, np.nan, np.float32)]
        is_bar = movie.startswith("moving_h_bar")
        bar = configs[movie]["generate_kwargs"] if is_bar else bar
        centres += [np.full(PAD_FRAMES, np.nan, np.float32),
                    bar_centres(configs[movie]) if is_bar else np.full(length, np.nan, np.float32),
                    np.full(PAD_FRAMES + 1, np.nan, np.float32)]
        sections[movie] = [count + PAD_FRAMES - PRE_MARGIN, count + PAD_FRAMES + POST_MARGIN + length + 1]
        frame0[movie] = count + PAD_FRAMES
        trials[movie] = trial_frames(configs[movie], frame0[movie])
        count += 2 * PAD_FRAMES + length + 1

    fs = spec.sampling_rate_hz
    period = fs / spec.frame_rate_hz
    first = round(spec.lead_in_s * fs)
    onsets = first + np.round(np.arange(count + 1) * period).astype(np.int64)
    startup = round(spec.lead_in_s * fs / 4) + np.round(np.arange(STARTUP_PULSES) * period).astype(np.int64)
    if startup[-1] + round(PULSE_S * fs) >= first:
        raise ValueError("lead_in_s is too short for the start-up pulses")
    return Timeline(sampling_rate_hz=fs, n_samples=int(onsets[-1] + round(spec.tail_s * fs)),
                    startup_pulses=startup, frame_onsets=onsets[:-1], frame_ends=onsets[1:],
                    images=np.concatenate(images), direction=np.concatenate(direction),
                    bar_centre_px=np.concatenate(centres), bar=bar, movies=list(movies),
                    section_frames=sections, movie_frame0=frame0, trial_frames=trials)


def analog_channels(timeline: Timeline, rng: np.random.Generator) -> np.ndarray:
    """(2, n_samples) int32: row 0 light reference, row 1 frame-sync pulses (raw ADC-like values)."""
    n = timeline.n_samples
    level = np.full(n, IDLE_INTENSITY / 255.0)
    first, last = timeline.frame_onsets[0], timeline.frame_ends[-1]
    level[first:last] = np.repeat(timeline.light_level, timeline.frame_ends - timeline.frame_onsets)
    sync = np.zeros(n)
    width = max(1, round(PULSE_S * timeline.sampling_rate_hz))
    onsets = np.concatenate([timeline.startup_pulses, timeline.frame_onsets])
    sync[(onsets[:, None] + np.arange(width)).ravel()] = SYNC_HIGH
    analog = np.stack([LIGHT_BASE + LIGHT_GAIN * level, sync])
    analog += rng.normal(0.0, ANALOG_NOISE, analog.shape)
    return np.rint(analog).astype(np.int32)
