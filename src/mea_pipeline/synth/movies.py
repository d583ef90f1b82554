"""The synthetic movies: their JSON configs per profile, their lengths and the dense-noise movie.

Movie names are the lab's set6 names; their content is shortened per profile. Every ``*_frame``
value counts display frames (nominally 60 Hz); durations given in seconds convert at
``display_rate_hz`` = 60 frames per second. Each movie's length is
``start_frame + group_count * repeat * trial_length_frame + (group_count - 1) * group_gap``:
the movie shows its background for ``start_frame`` frames, then its trials back to back.

Moving bar (``moving_h_bar_s5_d8_3x``): each trial (one repeat) is ``pre_pad_frame`` frames of
background followed by one sweep of ``frames_per_direction`` frames per direction, in the order
``directions_deg`` = 0, 45, ..., 315. Angles are image angles: 0 deg moves toward +column
(right), 90 deg toward +row (down; image rows grow downward). The bar is a ``bar_height``-px
thick band (along the motion) and ``bar_width`` px long (across it, longer than the canvas
diagonal, so every pixel is crossed in every direction). See :func:`.bar_geometry.bar_crossings`.
"""

from __future__ import annotations

import math

import numpy as np

from .spec import DENSE_NOISE, MOVING_BAR

DISPLAY_RATE_HZ = 60
# Screen level between movies (the playlist's padding frames) and before/after the playlist.
PADDING_INTENSITY = 127
IDLE_INTENSITY = 0
STEP_WINDOWS = {"on_window_ms": [0, 500], "off_window_ms": [0, 500], "sustained_window_ms": [500, 5000]}

# Per-profile knobs, in display frames unless noted: baseline length; steps (on, off, start_frame);
# green_blue (stim, gap, start_frame); freq (step s, break s, start_frame); bar (speed px/frame,
# frames_per_direction, pre_pad_frame, start_frame); dense-noise seconds.
_PROFILES = {
    "demo": {"baseline": 180, "step3": (120, 120, 60), "green_blue": (90, 90, 60),
             "freq": (1.5, 0.5, 30), "bar": (5, 100, 30, 60), "noise_s": 60, "step30": (60, 60, 60)},
    "tiny": {"baseline": 60, "step3": (30, 30, 30), "green_blue": (20, 20, 20),
             "freq": (0.4, 0.1, 10), "bar": (20, 25, 10, 20), "noise_s": 10, "step30": (10, 10, 20)},
}


def _step(name, display, on, off, start, repeat, description):
    return {"name": name, "display_name": display,
            "generate_kwargs": {"intensity": 255, "frames": on, "gap_frame": off, "repeat": repeat,
                                "baseline": 0},
            "section_kwargs": {"start_frame": start, "trial_length_frame": on + off, "repeat": repeat},
            "analysis_windows": STEP_WINDOWS, "description": description}


def _bar_config(speed: int, per_direction: int, pre_pad: int, start: int) -> dict:
    width, height, thickness = 300, 300, 50
    start_distance = math.ceil(math.hypot(width, height) / 2 + thickness / 2)
    if per_direction * speed < 2 * start_distance:
        raise ValueError("moving bar sweep too short to cross the canvas")
    trial = pre_pad + 8 * per_direction
    return {
        "name": MOVING_BAR, "display_name": "Moving Bar (8 directions, 3x)",
        "generate_kwargs": {
            "W": width, "H": height, "pre_pad_frame": pre_pad, "bar_height": thickness,
            "bar_width": math.ceil(math.hypot(width, height)) + 6, "bar_color": 255, "background": 0,
            "speed": speed, "frames_per_direction": per_direction,
            "directions_deg": [0, 45, 90, 135, 180, 225, 270, 315],
            "angle_convention": "0 deg = moving toward +column (right), 90 deg = toward +row (down)",
            "start_distance_px": start_distance,
            "crossing_rule": ("pixel (r, c), centre C = ((H-1)/2, (W-1)/2), projection "
                              "s = (r-Cr)*sin(a) + (c-Cc)*cos(a); in sweep frame j the bar centre is at "
                              "b = -start_distance_px + speed*j and covers b - bar_height/2 <= s < "
                              "b + bar_height/2; sweep d of repeat n starts at movie frame start_frame + "
                              "n*trial_length_frame + pre_pad_frame + d*frames_per_direction"),
        },
        "section_kwargs": {"start_frame": start, "trial_length_frame": trial, "repeat": 3},
        "analysis_windows": STEP_WINDOWS,
        "description": "Bar sweeping across the screen in 8 directions, 3 repeats, for direction selectivity.",
    }


def movie_configs(profile: str) -> dict[str, dict]:
    """The JSON content of every movie of ``profile``'s playlist, in playlist order."""
    p = _PROFILES[profile]
    on3, off3, start3 = p["step3"]
    stim, gap, start_gb = p["green_blue"]
    step_s, break_s, start_f = p["freq"]
    freqs = [0.5, 1, 2, 4, 10]
    freq_trial = round(len(freqs) * (step_s + break_s) * DISPLAY_RATE_HZ)
    noise_frames = p["noise_s"] * DISPLAY_RATE_HZ
    on30, off30, start30 = p["step30"]
    configs = [
        {"name": "baseline_127", "display_name": "Baseline 127",
         "generate_kwargs": {"intensity": 127},
         "section_kwargs": {"start_frame": 0, "trial_length_frame": p["baseline"], "repeat": 1},
         "analysis_windows": STEP_WINDOWS, "description": "Uniform grey screen (level 127)."},
        _step("step_up_5s_5i_b0_3x", "Step Up 3x", on3, off3, start3, 3,
              "Full-field light steps 0 -> 255 -> 0, 3 repeats (shortened)."),
        {"name": "green_blue_3s_3i_3x", "display_name": "Green/Blue Steps 3x",
         "generate_kwargs": {"stim_frame": stim, "gap_frame": gap, "repeat": 3,
                             "green_intensity": 255, "blue_intensity": 255, "background": 0},
         "section_kwargs": {"start_frame": start_gb, "trial_length_frame": 2 * (stim + gap), "repeat": 3},
         "analysis_windows": STEP_WINDOWS,
         "description": "Green step, gap, blue step, gap per trial, 3 repeats (shortened)."},
        {"name": "freq_step_5st_3x", "display_name": "Frequency Steps (5 steps, 3x)",
         "generate_kwargs": {"freq_list": freqs, "break_intensity": 127, "frame_duration": step_s,
                             "break_duration": break_s, "repeat": 3, "display_rate_hz": DISPLAY_RATE_HZ},
         "section_kwargs": {"start_frame": start_f, "trial_length_frame": freq_trial, "repeat": 3},
         "analysis_windows": STEP_WINDOWS,
         "description": ("Full-field sinusoidal flicker at each frequency for frame_duration seconds, "
                         "then break_duration seconds at break_intensity; 3 repeats (shortened).")},
        _bar_config(*p["bar"]),
        {"name": DENSE_NOISE, "display_name": "Dense Noise 15x15 (15Hz)",
         "generate_kwargs": {"duration": p["noise_s"], "col": 15, "row": 15, "seed": 42,
                             "movie_frame_rate": 15, "display_rate_hz": DISPLAY_RATE_HZ,
                             "values": [0, 255], "balanced": True},
         "section_kwargs": {"start_frame": 0, "trial_length_frame": noise_frames, "repeat": 1},
         "analysis_windows": {"sta_frames_before": 60, "sta_frames_after": 0},
         "description": ("Binary 0/255 dense noise on 15x15 checkers, each pattern held 4 display frames; "
                         "every checker is on in exactly half of the patterns.")},
        _step("step_up_5s_5i_b0_30x", "Step Up 30x", on30, off30, start30, 30,
              "Full-field light steps 0 -> 255 -> 0, 30 repeats (shortened)."),
    ]
    return {c["name"]: c for c in configs}


def movie_length(config: dict) -> int:
    """Display frames of a movie from its ``section_kwargs`` (background lead + all trials)."""
    k = config["section_kwargs"]
    groups = k.get("group_count", 1)
    return k["start_frame"] + groups * k["repeat"] * k["trial_length_frame"] + (groups - 1) * k.get("group_gap", 0)


def dense_noise_movie(config: dict) -> np.ndarray:
    """``(frames, rows, cols)`` uint8 0/255 noise; each checker is on in exactly half the patterns."""
    g = config["generate_kwargs"]
    hold = g["display_rate_hz"] // g["movie_frame_rate"]
    n_patterns = g["duration"] * g["movie_frame_rate"]
    rng = np.random.default_rng(g["seed"])
    balanced = (np.arange(n_patterns) < n_patterns // 2).astype(np.uint8)
    patterns = rng.permuted(np.tile(balanced, (g["row"] * g["col"], 1)), axis=1)
    patterns = patterns.T.reshape(n_patterns, g["row"], g["col"]) * np.uint8(255)
    return np.repeat(patterns, hold, axis=0)
