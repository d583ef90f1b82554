"""Step 11: moving-bar responses sectioned by direction, and direction selectivity.

For the moving-bar movie (default ``moving_h_bar_s5_d8_3x``), every unit's spikes are cut into one
window per sweep, from ``padding_frames`` before the bar reaches the unit's receptive-field centre
to ``padding_frames`` after it leaves (the lab's unified step), and the counts give the preferred
direction, both DSIs, the OSI and a permutation p-value (:mod:`mea_pipeline.dsgc`).

Where the bar is: the per-pixel crossing frames are computed from the movie ``<movie>.npy`` of the
stimulus library at the pixels the units need, or read from the lab's pickle (``--on-off-dict``,
read with a data-only unpickler). The RF centre is step 7's Gaussian centre, else its argmax centre,
mapped to stimulus pixels by the lab's rule (middle of the checker); a unit without either is
skipped with its reason. A recording whose playlist has no moving bar completes with that reason.

Directions: 0 = bar moving toward +column (right on the screen), 90 = toward +row (down); trials
are repetition-major (``trials/k`` = repetition k). Sweep windows are stored in movie-relative
frames (movie frame 0 = the section start + its pre-margin, as in steps 3-4) and in samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dsgc.pickle_table import load_on_off_table, pixel_rule
from ..dsgc.sectioning import direction_name, section_by_direction, spike_movie_frames, trial_spike_counts
from ..dsgc.segments import direction_segments
from ..dsgc.selectivity import direction_selectivity
from ..errors import InputError
from ..schema import Out
from ..stimulus_library import StimulusLibrary
from . import load_recording, rf_geometry, section_time
from .registry import Step, StepContext

ANGLE_CONVENTION = "degrees; 0 = bar moving toward +column (right), 90 = toward +row (down)"
META = "metadata/dsgc"


@dataclass(frozen=True)
class DsgcParams:
    movie: str = "moving_h_bar_s5_d8_3x"
    rf_movie_pattern: str = "dense_noise"
    stimulus_px: int = 300
    n_directions: int = 8
    padding_frames: int = 40
    area_box: int = 50
    prominence_fraction: float = 0.3
    off_floor: float = -50.0
    n_permutations: int = 1000
    seed: int = 0


def unit_pixels(ctx: StepContext, units: list[str], p: DsgcParams) -> tuple[dict, dict]:
    """Stimulus pixel ``(row, col)`` of each unit's RF centre, and the reason for units without one."""
    rf_movie = next((m for m in rf_geometry.rf_movies(ctx) if p.rf_movie_pattern in m), None)
    pixels, missing = {}, {}
    for unit in units:
        center = rf_geometry.rf_center(ctx, unit, rf_movie) if rf_movie else None
        if center is None:
            missing[unit] = ("no RF centre: step 7 measured no dense-noise STA" if rf_movie is None
                             else "no RF centre: no Gaussian fit and no STA signal")
            continue
        checker = p.stimulus_px // center.grid[1]
        pixels[unit] = pixel_rule(center.col, center.row, checker_px=checker, size=p.stimulus_px) + (center.source,)
    return pixels, missing


def run(ctx: StepContext, p: DsgcParams) -> dict:
    # Imported when the step runs: reading the registry (status, schema) stays fast.
    from ..dsgc.crossings import crossing_table

    units = load_recording.unit_ids(ctx)
    if p.movie not in section_time.sectioned_movies(ctx):
        reason = f"the playlist has no '{p.movie}' (or step 2 could not section it): no direction sectioning"
        ctx.warn(reason)
        ctx.tx.write_tree(META, {"movie": p.movie, "status": "no_moving_bar", "reason": reason})
        return {"result": "no_moving_bar", "n_units_sectioned": 0}

    library = StimulusLibrary(ctx.config.stimuli)
    table_path = ctx.config.on_off_dict
    movie = None if table_path else library.movie_array(p.movie)
    layout = direction_segments(library.movie_config(p.movie), p.n_directions,
                                movie_frames=None if movie is None else movie.shape[0])
    pixels, missing = unit_pixels(ctx, units, p)
    wanted = sorted({pixel[:2] for pixel in pixels.values()})
    if table_path:
        crossings = load_on_off_table(table_path, n_trials=layout.n_trials, size=p.stimulus_px)["crossings"]
        source = f"pickle {table_path}"
    else:
        if movie.shape[1:] != (p.stimulus_px, p.stimulus_px):
            raise InputError(f"{library.movie_array_path(p.movie)}: frames are {movie.shape[1:]}, the step expects "
                             f"{p.stimulus_px} x {p.stimulus_px} pixels (parameter stimulus_px)")
        crossings = crossing_table(movie, wanted, layout, area_box=p.area_box,
                                   prominence_fraction=p.prominence_fraction, off_floor=p.off_floor)
        source = f"movie {library.movie_array_path(p.movie)}"

    frames = section_time.frame_timestamps(ctx)
    frame0 = section_time.movie_frame0(ctx, p.movie)
    directions = np.asarray(layout.directions, dtype=np.float64)
    sectioned = 0
    for done, unit in enumerate(units):
        ctx.report_progress(done, len(units))
        base = f"units/{unit}/features/{p.movie}/dsgc"
        if unit in missing or pixels[unit][:2] not in crossings:
            reason = missing.get(unit) or f"the ON/OFF table has no pixel {pixels[unit][:2]}"
            ctx.tx.write_tree(base, {"status": "skipped", "reason": reason})
            continue
        row, col, center_source = pixels[unit]
        on, off = crossings[(row, col)]
        spikes = load_recording.spike_times(ctx, unit)
        sections = section_by_direction(spike_movie_frames(spikes, frames, frame0), on, off, layout,
                                        p.padding_frames, spike_samples=spikes)
        _write_sections(ctx, f"units/{unit}/spike_times_sectioned/{p.movie}/direction_section", sections,
                        frames, frame0)
        ctx.tx.set_attrs(f"units/{unit}/spike_times_sectioned/{p.movie}/direction_section", {
            "direction_list": directions, "n_directions": len(directions), "n_repetitions": layout.n_repetitions,
            "padding_frames": p.padding_frames, "cell_center_row": row, "cell_center_col": col,
            "cell_center_source": center_source, "angle_convention": ANGLE_CONVENTION,
            "trials_unit": "movie-relative frames (trials_samples: acquisition samples)"})
        counts = trial_spike_counts(sections, layout)
        selectivity = direction_selectivity(counts, directions, n_permutations=p.n_permutations, seed=p.seed)
        ctx.tx.write_tree(base, {**selectivity, "reason": selectivity["reason"] or "", "status": "ok",
                                 "spike_counts_per_trial": counts, "direction_list": directions})
        sectioned += 1
    for unit, reason in missing.items():
        ctx.warn(f"{unit}: not sectioned by direction: {reason}")
    ctx.tx.write_tree(META, {
        "movie": p.movie, "status": "ok", "reason": "", "crossing_source": source,
        "direction_list": directions, "angle_convention": ANGLE_CONVENTION, "n_repetitions": layout.n_repetitions,
        "sweep_segments": layout.segments, "sweep_lead_in_frames": layout.lead_in,
        "n_units_sectioned": sectioned, "n_units_skipped": len(units) - sectioned,
    })
    return {"result": "ok", "n_units_sectioned": sectioned, "crossing_source": source.split(" ")[0]}


def _write_sections(ctx: StepContext, base: str, sections: dict, frames: np.ndarray, frame0: int) -> None:
    """Per direction: trials in frames and samples, and the window bounds in both."""
    last = len(frames) - 1
    for name, entry in sections.items():
        bounds = entry["section_bounds"]
        ctx.tx.write_tree(f"{base}/{name}", {
            "trials": {str(k): t for k, t in enumerate(entry["trials"])},
            "trials_samples": {str(k): t for k, t in enumerate(entry["trial_samples"])},
            "section_bounds": bounds,
            "section_bounds_samples": frames[np.clip(bounds + frame0, 0, last)].astype(np.int64),
        })


DS = "units/{unit}/spike_times_sectioned/{movie}/direction_section"
FEATURES = "units/{unit}/features/{movie}/dsgc"
STEP = Step(
    name="dsgc", number=11, upstream=("load_recording", "section_time", "rf_geometry"),
    reads=frozenset({"stimuli", "on_off_table"}), params=DsgcParams, version="1", run=run,
    outputs=(
        Out(DS + "/{field}/trials/{trial}", "i", 1,
            "spikes of repetition {trial} in direction {field} (degrees), movie-relative frames", required=False),
        Out(DS + "/{field}/trials_samples/{trial}", "i", 1, "the same spikes as acquisition samples", required=False),
        Out(DS + "/{field}/section_bounds", "i", 2,
            "(n_repetitions, 2) [ON - padding, OFF + padding] movie-relative frames, both ends included",
            required=False),
        Out(DS + "/{field}/section_bounds_samples", "i", 2, "the same windows as acquisition samples (frame onsets)",
            required=False),
        Out(DS + "@{attribute}", "any", None,
            "direction_list, n_directions, n_repetitions, padding_frames, cell_center_row/col (stimulus "
            "pixels), cell_center_source (gaussian_fit or argmax), angle_convention, trials_unit", required=False),
        Out(FEATURES + "/status", "str", 0, "ok or skipped"),
        Out(FEATURES + "/reason", "str", 0, "why skipped, or why an index is NaN ('' otherwise)"),
        Out(FEATURES + "/{field}", "any", None,
            "spike_counts (mean per direction), spike_counts_per_trial (n_directions, n_repetitions), "
            "direction_list, preferred_direction_deg (vector sum), dsi_vector, dsi_classic ((pref - null) / "
            "(pref + null)), osi, p_value (seeded permutation of trial labels), n_spikes, n_permutations",
            required=False),
        Out(f"{META}/{{field}}", "any", None,
            "movie, status (ok or no_moving_bar), reason, crossing_source, direction_list, angle_convention, "
            "n_repetitions, sweep_segments ([start, end) movie frames), sweep_lead_in_frames, "
            "n_units_sectioned, n_units_skipped"),
    ),
    description="Moving-bar spikes sectioned by direction; preferred direction, DSI (vector, classic), OSI, p",
)
