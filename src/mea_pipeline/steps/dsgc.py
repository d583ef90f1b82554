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

Frames (PRODUCT.md 3.12): those angles are in the stimulus frame. The units with both an RF centre
(step 7) and a soma centre (step 6) register the stimulus to the electrodes
(:mod:`mea_pipeline.frames.registration`, stored under ``metadata/stimulus_registration``); through
it each preferred direction is also given in the electrode frame and, with step 10's optic-nerve
head and the sheet's ``Center_xy``, in the retina frame. Every stored angle names its frame in a
``frame`` attribute.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dsgc.pickle_table import load_on_off_table, pixel_rule
from ..dsgc.sectioning import direction_name, section_by_direction, spike_movie_frames, trial_spike_counts
from ..dsgc.segments import direction_segments
from ..dsgc.selectivity import direction_selectivity
from ..errors import InputError
from ..frames import ELECTRODE, RETINA, STIMULUS
from ..frames.registration import AFFINE, SIMILARITY, Registration, fit_registration, map_direction, retina_direction
from ..schema import OURS, Out, outs
from ..stimulus_library import StimulusLibrary
from . import ap_tracking, load_recording, rf_geometry, section_time, soma_geometry
from .registry import Step, StepContext

ANGLE_CONVENTION = "degrees; 0 = bar moving toward +column (right), 90 = toward +row (down)"
META = "metadata/dsgc"
REGISTRATION = "metadata/stimulus_registration"
REGISTRATION_CONVENTION = (
    "electrode_xy = matrix @ stimulus_xy + offset; xy = (column, row); stimulus in pixels of the projector "
    "image (pixel p centred on p), electrodes 0-based (column = eimage axis 2, row = axis 1); reflected: "
    "matrix = scale * R(rotation_deg) @ T, T swapping column and row")


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
    # Stimulus -> electrode registration (mea_pipeline.frames.registration) from units with both an RF
    # centre (step 7) and a soma centre (step 6); it also carries the preferred direction between frames.
    registration_kind: str = SIMILARITY
    registration_min_units: int = 6
    registration_outlier_um: float = 150.0
    registration_max_hypotheses: int = 2000
    registration_min_spread: float = 0.1
    electrode_pitch_um: float = 16.0


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
    registration = register_stimulus(ctx, units, p)
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
        write_direction_frames(ctx, base, selectivity["preferred_direction_deg"], directions, registration)
        sectioned += 1
    for unit, reason in missing.items():
        ctx.warn(f"{unit}: not sectioned by direction: {reason}")
    ctx.tx.write_tree(META, {
        "movie": p.movie, "status": "ok", "reason": "", "crossing_source": source,
        "direction_list": directions, "angle_convention": ANGLE_CONVENTION, "n_repetitions": layout.n_repetitions,
        "sweep_segments": layout.segments, "sweep_lead_in_frames": layout.lead_in,
        "n_units_sectioned": sectioned, "n_units_skipped": len(units) - sectioned,
    })
    ctx.tx.write(f"{META}/direction_list", directions, attrs={"frame": STIMULUS})
    return {"result": "ok", "n_units_sectioned": sectioned, "crossing_source": source.split(" ")[0]}


class DirectionFrames:
    """How this recording carries a stimulus-frame direction into the electrode and retina frames."""

    def __init__(self, registration: Registration, correction_deg: float | None, retina_reason: str):
        self.registration, self.correction_deg, self.retina_reason = registration, correction_deg, retina_reason

    def electrode(self, stimulus_deg: float) -> tuple[float, str]:
        """Electrode-frame angle and '', or NaN and why."""
        if self.registration.status != "ok":
            return np.nan, f"no stimulus registration: {self.registration.reason}"
        if not np.isfinite(stimulus_deg):
            return np.nan, "no preferred direction in the stimulus frame"
        return float(map_direction(stimulus_deg, self.registration.matrix)), ""

    def retina(self, electrode_deg: float, electrode_reason: str) -> tuple[float, str, str]:
        """Retina-frame angle, its nearest anatomical label and '', or NaN, '' and why."""
        if electrode_reason:
            return np.nan, "", electrode_reason
        if self.correction_deg is None:
            return np.nan, "", self.retina_reason
        angle, label = retina_direction(electrode_deg, self.correction_deg)
        return float(angle), str(label), ""


def register_stimulus(ctx: StepContext, units: list[str], p: DsgcParams) -> DirectionFrames:
    """Fit the stimulus -> electrode transform from the units with an RF and a soma centre; write it."""
    if p.registration_kind not in (SIMILARITY, AFFINE):
        raise InputError(f"dsgc parameter registration_kind is {p.registration_kind!r}: use "
                         f"{SIMILARITY!r} or {AFFINE!r}")
    rf_movie = next((m for m in rf_geometry.rf_movies(ctx) if p.rf_movie_pattern in m), None)
    paired, stimulus_xy, electrode_xy = [], [], []
    for unit in units:
        # Our own computation: the RF's own centre, not the lab's fit of the blurred map.
        rf = rf_geometry.rf_center(ctx, unit, rf_movie, fit="gaussian_fit_unblurred") if rf_movie else None
        soma = soma_geometry.soma_center(ctx, unit)
        if rf is None or soma is None:
            continue
        checker_col, checker_row = p.stimulus_px / rf.grid[1], p.stimulus_px / rf.grid[0]
        paired.append(unit)
        stimulus_xy.append(((rf.col + 0.5) * checker_col - 0.5, (rf.row + 0.5) * checker_row - 0.5))
        electrode_xy.append((soma.col, soma.row))
    registration = fit_registration(
        np.reshape(stimulus_xy, (-1, 2)), np.reshape(electrode_xy, (-1, 2)), kind=p.registration_kind,
        min_points=p.registration_min_units, outlier_threshold_um=p.registration_outlier_um,
        pitch_um=p.electrode_pitch_um, max_hypotheses=p.registration_max_hypotheses,
        min_spread_ratio=p.registration_min_spread, seed=p.seed)
    if registration.status != "ok":
        ctx.warn(f"no stimulus registration: {registration.reason}")
    orientation = ap_tracking.retina_orientation(ctx)
    ok = registration.status == "ok"
    ctx.tx.write_tree(REGISTRATION, {
        "status": registration.status, "reason": registration.reason, "kind": registration.kind,
        "matrix": registration.matrix, "offset": registration.offset, "reflected": bool(registration.reflected),
        "scale": registration.scale, "scale_um_per_px": registration.scale * p.electrode_pitch_um,
        "residual_um": registration.residual_um,
        "residual_other_handedness_um": registration.residual_other_handedness_um,
        "n_units_paired": len(paired), "n_units_used": registration.n_used,
        "units": paired, "stimulus_xy_px": np.reshape(stimulus_xy, (-1, 2)),
        "electrode_xy": np.reshape(electrode_xy, (-1, 2)),
        "residuals_um": registration.residuals_um if ok else np.full(len(paired), np.nan),
        "outlier_units": [u for u, used in zip(paired, registration.inliers) if not used] if ok else [],
        "rf_movie": rf_movie or "", "electrode_pitch_um": p.electrode_pitch_um,
        "convention": REGISTRATION_CONVENTION, "retina_reason": orientation.reason,
    })
    ctx.tx.write(f"{REGISTRATION}/rotation_deg", registration.rotation_deg, attrs={"frame": ELECTRODE})
    return DirectionFrames(registration, orientation.correction_deg, orientation.reason)


def write_direction_frames(ctx: StepContext, base: str, preferred_deg: float, directions: np.ndarray,
                           frames: DirectionFrames) -> None:
    """The preferred direction in the electrode and retina frames beside the stimulus one, each naming its frame."""
    ctx.tx.write(f"{base}/preferred_direction_deg", preferred_deg, attrs={"frame": STIMULUS})
    ctx.tx.write(f"{base}/direction_list", directions, attrs={"frame": STIMULUS})
    electrode, electrode_reason = frames.electrode(preferred_deg)
    retina, label, retina_reason = frames.retina(electrode, electrode_reason)
    ctx.tx.write(f"{base}/preferred_direction_electrode_deg", electrode, attrs={"frame": ELECTRODE})
    ctx.tx.write(f"{base}/preferred_direction_electrode_reason", electrode_reason)
    ctx.tx.write(f"{base}/preferred_direction_retina_deg", retina, attrs={"frame": RETINA})
    ctx.tx.write(f"{base}/preferred_direction_retina_label", label)
    ctx.tx.write(f"{base}/preferred_direction_retina_reason", retina_reason)


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
FRAME_OUTPUTS = (
    Out(FEATURES + "/preferred_direction_electrode_deg", "f", 0,
        "preferred_direction_deg carried into the electrode frame through the stimulus registration's linear "
        "part (0 = toward +column, 90 = toward +row of the eimage); NaN when there is no registration",
        required=False, origin=OURS, units="degrees", frame=ELECTRODE),
    Out(FEATURES + "/preferred_direction_retina_deg", "f", 0,
        "the electrode-frame direction plus step 10's angle_correction_deg (the lab's rule for soma polar "
        "coordinates): 0 = nasal, 90 = dorsal, 180 = temporal, 270 = ventral; NaN without ONH and Center_xy",
        required=False, origin=OURS, units="degrees", frame=RETINA),
    Out(FEATURES + "/preferred_direction_retina_label", "str", 0,
        "nearest of nasal, dorsal, temporal, ventral (ties to the earlier); '' when NaN",
        required=False, origin=OURS, frame=RETINA),
    *outs(FEATURES, ("preferred_direction_electrode_reason", "preferred_direction_retina_reason"), "str", 0,
          "why the direction in that frame is NaN ('' when it has a value)", required=False, origin=OURS),
) + tuple(Out(f"{REGISTRATION}/{key}", dtype, ndim, doc, origin=OURS, units=units, frame=frame)
          for key, dtype, ndim, units, frame, doc in (
    ("status", "str", 0, "", "", "ok or refused (then NaN numbers and the reason)"),
    ("reason", "str", 0, "", "", "why the registration was refused ('' when ok)"),
    ("kind", "str", 0, "", "", "similarity (rotation, uniform scale, translation, reflection allowed) or affine"),
    ("convention", "str", 0, "", "", "how matrix and offset map stimulus pixels to electrodes"),
    ("matrix", "f", 2, "electrodes per stimulus pixel", "",
     "(2, 2) linear part: electrode_xy = matrix @ stimulus_xy + offset, xy = (column, row)"),
    ("offset", "f", 1, "electrodes", ELECTRODE, "(2,) translation, (column, row)"),
    ("reflected", "b", 0, "", "", "the stimulus is mirrored against the electrodes (det(matrix) < 0)"),
    ("scale", "f", 0, "electrodes per stimulus pixel", "", "sqrt(|det(matrix)|)"),
    ("scale_um_per_px", "f", 0, "um per stimulus pixel", "", "scale times electrode_pitch_um"),
    ("rotation_deg", "f", 0, "degrees", ELECTRODE,
     "electrode-frame angle of the stimulus +column axis, or of its +row axis when reflected (matrix = "
     "scale * R(rotation_deg) @ T, T swapping column and row)"),
    ("residual_um", "f", 0, "um", "", "RMS distance of the mapped RF centres from the somas of the units used"),
    ("residual_other_handedness_um", "f", 0, "um", "",
     "the same for the best fit of the other handedness on the same units (how clearly the data decide "
     "reflected); NaN for affine"),
    ("n_units_paired", "i", 0, "", "", "units with both an RF centre (step 7) and a soma centre (step 6)"),
    ("n_units_used", "i", 0, "", "", "paired units within registration_outlier_um of the fit"),
    ("units", "str", 1, "", "", "the paired units, in the order of the arrays below"),
    ("outlier_units", "str", 1, "", "", "paired units farther than registration_outlier_um from the fit"),
    ("stimulus_xy_px", "f", 2, "stimulus pixels", STIMULUS, "(n, 2) RF centres of the paired units, (column, row)"),
    ("electrode_xy", "f", 2, "electrodes", ELECTRODE, "(n, 2) soma centres of the paired units, (column, row)"),
    ("residuals_um", "f", 1, "um", "", "(n,) distance of each paired unit's mapped RF centre from its soma"),
    ("rf_movie", "str", 0, "", "", "the dense-noise movie whose RF centres were used ('' if none)"),
    ("electrode_pitch_um", "f", 0, "um", "", "electrode pitch (parameter electrode_pitch_um)"),
    ("retina_reason", "str", 0, "", "",
     "why directions have no retina frame (no ONH, or no DV and NT in Center_xy); '' when they have"),
))
STEP = Step(
    name="dsgc", number=11,
    upstream=("load_recording", "section_time", "soma_geometry", "rf_geometry", "ap_tracking"),
    reads=frozenset({"stimuli", "on_off_table"}), params=DsgcParams, version="2", run=run,
    outputs=FRAME_OUTPUTS + (
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
