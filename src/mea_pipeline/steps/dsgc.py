"""dsgc: moving-bar responses sectioned by direction, and direction selectivity.

For the moving-bar movie (default ``moving_h_bar_s5_d8_3x``), every unit's spikes are cut into one
window per sweep, from ``padding_frames`` before the bar reaches the unit's receptive-field centre
to ``padding_frames`` after it leaves (the lab's unified step, on the spikes section_spike_times
assigned to the movie's trials), and the counts give the preferred
direction, both DSIs, the OSI and a permutation p-value (:mod:`mea_pipeline.dsgc`).

Where the bar is: the per-pixel crossing frames are computed from the movie ``<movie>.npy`` of the
stimulus library at the pixels the units need, or read from the lab's pickle (``--on-off-dict``,
read with a data-only unpickler; every entry's frames must lie inside their sweeps). The RF centre
is rf_geometry's Gaussian centre, else its argmax centre, mapped to stimulus pixels by the lab's rule
(middle of the checker); a unit without either is skipped with its reason. A recording whose
playlist has no moving bar completes with that reason.

Lab keys (ref-steps-6-11 6.5): ``direction_section/_attrs/`` is a group of int64 datasets
(direction_list, n_directions, n_repetitions, padding_frames, cell_center_row/col), and each
direction group holds ``trials/<k>`` (repetition k) and ``section_bounds`` in movie-relative
frames (movie frame 0 = the section start + its pre-margin, as in section_spike_times and
dense_noise_sta), int64. The same windows in acquisition samples and the selectivity indices are ours, beside them.

Directions are in the stimulus frame (:data:`mea_pipeline.frames.STIMULUS`): 0 = bar moving toward
+column of the projector image (right on the screen), 90 = toward +row (down); every stored angle
carries a ``frame`` attribute saying so.

Frames (PRODUCT.md 3.12): the units with both an RF and a soma centre register the stimulus to the
electrodes, and each preferred direction is also given in the electrode and retina frames
(:mod:`mea_pipeline.steps.dsgc_frames`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..dsgc.params import DsgcParams
from ..dsgc.pickle_table import load_on_off_table, pixel_rule
from ..dsgc.sectioning import DirectionSection, section_by_direction, spike_movie_frames, trial_spike_counts
from ..dsgc.segments import DirectionLayout
from ..dsgc.selectivity import direction_selectivity
from ..frames import STIMULUS
from ..stimulus_library import StimulusLibrary
from . import load_recording, rf_geometry, section_spike_times, section_time
from .dsgc_frames import register_stimulus, write_direction_frames
from .dsgc_library import check_library, sweep_layout
from .dsgc_outputs import (
    CELL_CENTER_COL, CELL_CENTER_ROW, CELL_CENTER_SOURCE, CROSSING_SOURCE, DIRECTION_LIST, DSI_CLASSIC, DSI_VECTOR,
    LAB_DIRECTION_LIST, META_ANGLE_CONVENTION, META_DIRECTION_LIST, META_N_REPETITIONS, META_REASON, META_STATUS,
    MOVIE, N_DIRECTIONS, N_PERMUTATIONS, N_REPETITIONS, N_SPIKES, N_UNITS_SECTIONED, N_UNITS_SKIPPED, OSI, OUTPUTS,
    P_VALUE, PADDING_FRAMES, PREFERRED, REASON, SECTION_ANGLE_CONVENTION, SECTION_BOUNDS, SECTION_BOUNDS_SAMPLES,
    SECTION_FRAME, SPIKE_COUNTS, SPIKE_COUNTS_PER_TRIAL, STATUS, SWEEP_LAYOUT_SOURCE, SWEEP_LEAD_IN, SWEEP_SEGMENTS,
    TRIALS, TRIALS_SAMPLES, TRIALS_UNIT,
)
from .registry import Qc, Step, StepContext, reader

ANGLE_CONVENTION = "degrees; 0 = bar moving toward +column (right), 90 = toward +row (down)"
# Every stored angle names its frame (PRODUCT 3.12).
ANGLE_ATTRS = {"frame": STIMULUS}


def unit_pixels(ctx: StepContext, units: list[str], rf_movie: str | None, p: DsgcParams) -> tuple[dict, dict]:
    """Stimulus pixel ``(row, col)`` of each unit's RF centre in ``rf_movie``, and the reason for units without one."""
    pixels, missing = {}, {}
    for unit in units:
        center = rf_geometry.rf_center(ctx, unit, rf_movie) if rf_movie else None
        if center is None:
            missing[unit] = ("no RF centre: rf_geometry measured no dense-noise STA" if rf_movie is None
                             else "no RF centre: no Gaussian fit and no STA signal")
            continue
        checker = p.stimulus_px // center.grid[1]
        pixels[unit] = pixel_rule(center.col, center.row, checker_px=checker, size=p.stimulus_px) + (center.source,)
    return pixels, missing


def run(ctx: StepContext, p: DsgcParams) -> dict:
    # Imported when the step runs: reading the registry (status, schema) stays fast.
    from ..dsgc.crossings import crossing_table

    units = load_recording.unit_ids(ctx)
    rf_movie = next((m for m in rf_geometry.rf_movies(ctx) if p.rf_movie_pattern in m), None)
    registration = register_stimulus(ctx, units, rf_movie, p)
    if p.movie not in section_time.sectioned_movies(ctx):
        reason = f"the playlist has no '{p.movie}' (or section_time could not section it): no direction sectioning"
        ctx.warn(reason)
        ctx.write({MOVIE: p.movie, META_STATUS: "no_moving_bar", META_REASON: reason})
        return {"result": "no_moving_bar", "n_units_sectioned": 0}

    library = StimulusLibrary(ctx.config.stimuli)
    table_path = ctx.config.on_off_dict
    layout, movie, layout_source = sweep_layout(library, p, need_movie=table_path is None)
    pixels, missing = unit_pixels(ctx, units, rf_movie, p)
    if table_path:
        crossings = load_on_off_table(table_path, segments=layout.segments, size=p.stimulus_px,
                                      layout_note=f" ({layout_source})")["crossings"]
        source = f"pickle {table_path}"
    else:
        wanted = sorted({pixel[:2] for pixel in pixels.values()})
        crossings = crossing_table(movie, wanted, layout, area_box=p.area_box,
                                   prominence_fraction=p.prominence_fraction, off_fraction=p.off_fraction,
                                   off_floor=p.off_floor)
        source = f"movie {library.movie_array_path(p.movie)}"

    frames = section_time.frame_timestamps(ctx)
    frame0 = section_time.movie_frame0(ctx, p.movie)
    directions = np.asarray(layout.directions, dtype=np.float64)
    skipped = {}
    for done, unit in enumerate(units):
        ctx.report_progress(done, len(units))
        where = {"unit": unit, "movie": p.movie}
        # The lab's spikes: those of section_spike_times' trials of the movie (a window reaching past them, at
        # the movie's ends, holds only these).
        spikes = section_spike_times.full_spike_times(ctx, unit, p.movie)
        if reason := _skip_reason(unit, missing, pixels, crossings, spikes, p.movie):
            skipped[unit] = reason
            ctx.write({STATUS: "skipped", REASON: reason}, **where)
            continue
        row, col, center_source = pixels[unit]
        on, off = crossings[(row, col)]
        sections = section_by_direction(spike_movie_frames(spikes, frames, frame0), on, off, layout,
                                        p.padding_frames, spike_samples=spikes)
        _write_sections(ctx, sections, frames, frame0, where)
        _write_lab_attrs(ctx, layout, p.padding_frames, row, col, where)
        ctx.write({CELL_CENTER_SOURCE: center_source, SECTION_ANGLE_CONVENTION: ANGLE_CONVENTION,
                   SECTION_FRAME: STIMULUS,
                   TRIALS_UNIT: "movie-relative frames (trials_samples: acquisition samples)"}, **where)
        counts = trial_spike_counts(sections, layout)
        tuned = direction_selectivity(counts, directions, n_permutations=p.n_permutations, seed=p.seed)
        ctx.write({STATUS: "ok", REASON: tuned.reason or "", PREFERRED: tuned.preferred_direction_deg,
                   DIRECTION_LIST: directions, SPIKE_COUNTS: tuned.spike_counts, SPIKE_COUNTS_PER_TRIAL: counts,
                   DSI_VECTOR: tuned.dsi_vector, DSI_CLASSIC: tuned.dsi_classic, OSI: tuned.osi,
                   P_VALUE: tuned.p_value, N_SPIKES: tuned.n_spikes, N_PERMUTATIONS: tuned.n_permutations},
                  {PREFERRED: ANGLE_ATTRS, DIRECTION_LIST: ANGLE_ATTRS}, **where)
        write_direction_frames(ctx, tuned.preferred_direction_deg, registration, **where)
    for unit, reason in skipped.items():
        ctx.warn(f"{unit}: not sectioned by direction: {reason}")
    sectioned = len(units) - len(skipped)
    ctx.write({
        MOVIE: p.movie, META_STATUS: "ok", META_REASON: "", CROSSING_SOURCE: source,
        SWEEP_LAYOUT_SOURCE: layout_source, META_ANGLE_CONVENTION: ANGLE_CONVENTION,
        META_N_REPETITIONS: layout.n_repetitions, SWEEP_SEGMENTS: layout.segments,
        SWEEP_LEAD_IN: layout.lead_in, N_UNITS_SECTIONED: sectioned, N_UNITS_SKIPPED: len(skipped),
        META_DIRECTION_LIST: directions,
    }, {META_DIRECTION_LIST: ANGLE_ATTRS})
    return {"result": "ok", "n_units_sectioned": sectioned, "crossing_source": source.split(" ")[0],
            "sweep_lead_in_frames": layout.lead_in}


def _skip_reason(unit: str, missing: dict, pixels: dict, crossings: dict, spikes: np.ndarray | None,
                 movie: str) -> str | None:
    """Why ``unit`` cannot be sectioned (None when it can)."""
    if unit in missing:
        return missing[unit]
    if pixels[unit][:2] not in crossings:
        return f"the ON/OFF table has no pixel {pixels[unit][:2]}"
    if spikes is None:
        return f"section_spike_times did not section '{movie}'"
    return None


def _write_lab_attrs(ctx: StepContext, layout: DirectionLayout, padding: int, row: int, col: int,
                     where: dict) -> None:
    """The lab's ``_attrs`` sub-group: int64 datasets, as its session writer stores them."""
    ctx.write({LAB_DIRECTION_LIST: layout.directions.astype(np.int64), N_DIRECTIONS: np.int64(len(layout.directions)),
               N_REPETITIONS: np.int64(layout.n_repetitions), PADDING_FRAMES: np.int64(padding),
               CELL_CENTER_ROW: np.int64(row), CELL_CENTER_COL: np.int64(col)},
              {LAB_DIRECTION_LIST: ANGLE_ATTRS}, **where)


def _write_sections(ctx: StepContext, sections: dict[str, DirectionSection], frames: np.ndarray, frame0: int,
                    where: dict) -> None:
    """Per direction: trials in frames and samples, and the window bounds in both."""
    last = len(frames) - 1
    for name, section in sections.items():
        for trial, (spikes, samples) in enumerate(zip(section.trials, section.trial_samples)):
            ctx.write({TRIALS: spikes, TRIALS_SAMPLES: samples}, **where, direction=name, trial=str(trial))
        ctx.write({SECTION_BOUNDS: section.bounds,
                   SECTION_BOUNDS_SAMPLES: frames[np.clip(section.bounds + frame0, 0, last)].astype(np.int64)},
                  **where, direction=name)


class Tuning(NamedTuple):
    """One unit's stored direction tuning under the moving bar (status ok)."""

    direction_list: np.ndarray      # degrees, stimulus frame
    spike_counts: np.ndarray        # mean count per direction
    dsi_vector: np.floating
    p_value: np.floating


@reader("dsgc")
def bar_movie(h5) -> str | None:
    """The moving-bar movie the step looked for (parameter ``movie``); None when the step has not run."""
    return h5[MOVIE.at()].asstr()[()] if MOVIE.at() in h5 else None


@reader("dsgc")
def tuning(h5, unit: str, movie: str) -> Tuning | None:
    """``unit``'s tuning under ``movie``; None when it was skipped or not sectioned."""
    status = STATUS.at(unit=unit, movie=movie)
    if status not in h5 or h5[status].asstr()[()] != "ok":
        return None
    return Tuning(*(h5[out.at(unit=unit, movie=movie)][()] for out in (DIRECTION_LIST, SPIKE_COUNTS, DSI_VECTOR,
                                                                          P_VALUE)))


# -- QC: drawn from the file through the readers above --------------------------------------------

def qc_figure(h5):
    """Polar plot of the mean spike count per direction of the most direction-selective units."""
    from ..qc.figures import MAX_PANELS, grid

    movie = bar_movie(h5)
    if movie is None:
        return None
    results = {}
    for unit in load_recording.unit_ids(h5):
        found = tuning(h5, unit, movie)
        if found is not None and np.isfinite(found.dsi_vector):
            results[unit] = found
    if not results:
        return None
    shown = sorted(sorted(results, key=lambda u: -results[u].dsi_vector)[:MAX_PANELS])
    fig, axes = grid(len(shown), f"spikes per bar direction, mean over trials ({movie}; 0 deg = right, 90 deg = "
                                 "down; the outer ring is the unit's largest count)", polar=True)
    for ax, unit in zip(axes, shown):
        found = results[unit]
        angles = np.deg2rad(np.append(found.direction_list, found.direction_list[0]))
        counts = np.append(found.spike_counts, found.spike_counts[0])
        ax.plot(angles, counts, "-", color="tab:purple", lw=1)
        ax.fill(angles, counts, alpha=0.2, color="tab:purple")
        # Screen angles: 90 deg = toward +row = down, so the polar axes run clockwise.
        ax.set_theta_direction(-1)
        peak = np.nanmax(counts)
        ax.set_ylim(0, max(peak, 1e-9))
        ax.set_title(f"{unit} DSI {found.dsi_vector:.2f} p {found.p_value:.3f}\nmax {peak:.1f} spikes", fontsize=7)
    return fig


def qc_numbers(h5) -> dict:
    """``dsgc_sectioned`` (units with status ok) and ``dsgc_p_below_0_05`` (of those, p < 0.05)."""
    movie = bar_movie(h5)
    if movie is None:
        return {}
    found = [t for t in (tuning(h5, unit, movie) for unit in load_recording.unit_ids(h5)) if t is not None]
    return {"dsgc_sectioned": len(found), "dsgc_p_below_0_05": sum(bool(np.asarray(t.p_value) < 0.05) for t in found)}


STEP = Step(
    name="dsgc", position=11,
    upstream=("load_recording", "section_time", "section_spike_times", "soma_geometry", "rf_geometry",
              "ap_tracking"),
    reads=frozenset({"stimuli", "on_off_dict"}), params=DsgcParams, version="2", run=run,
    library_check=check_library, qc=Qc(topic="dsgc", figure=qc_figure, numbers=qc_numbers),
    outputs=OUTPUTS,
    description="Moving-bar spikes sectioned by direction; preferred direction, DSI (vector, classic), OSI, p",
)
