"""ap_tracking: each unit's axon through its electrical image, and the optic-nerve head.

The lab's 3-D CNN (``--ap-model``, default the packaged weights trained on synthetic images) runs
densely over every selected unit's eimage (:func:`mea_pipeline.ap_tracking.dense.predict_dense`);
:func:`mea_pipeline.ap_tracking.track.track_recording` does the rest: unit selection by
cell_type_labels' label, the sheet's bad-lane fix on this step's own copy (load_recording's
``eimage_sta/data`` is never rewritten), soma and AIS, noise filter, centroids, pathway fit, ONH
with the R^2 ladder, retina orientation from the sheet's ``Center_xy`` and polar coordinates. The lab's keys keep the lab's
dtypes and structure (ref-steps-6-11.md 5.11); every stored angle names its frame in a ``frame``
attribute. Axis conventions are in :mod:`mea_pipeline.ap_tracking.track` and in
``docs/output_schema.md``.

The packaged weights were trained on synthetic images only: run on a recording ``mea-pipeline synth``
did not write (file_metadata's copy of the ``.cmcr`` root attributes lacks its mark), the step records one
warning naming ``--ap-model``; ``model_source`` says which weights were used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from ..ap_tracking.lanes import parse_bad_lanes
from ..ap_tracking.orientation import parse_center_xy
from ..ap_tracking.params import APTrackingParams
from ..frames import ELECTRODE, RETINA
from ..schema import LAB, OURS, Out, outs
from ..store import WithAttrs
from . import cell_type_labels, file_metadata, gsheet_metadata, load_recording
from .registry import Qc, Step, StepContext, reader

AP = "units/{unit}/features/ap_tracking"
META = "metadata/ap_tracking"
ONH = f"{META}/all_ap_intersection"
POLAR = f"{AP}/soma_polar_coordinates"
# Recorded when the packaged weights meet a recording `mea-pipeline synth` did not write: the same
# words for every recording, so a batch's summary shows it once.
PACKAGED_WEIGHTS_WARNING = (
    "the packaged AP-tracking weights were trained on synthetic electrical images only, and this recording "
    "was not written by `mea-pipeline synth`: for real recordings give the lab's weights with --ap-model FILE "
    "(the lab's CNN_3d_with_velocity_model_from_all_process.pth) or set ap_model in the config")


class RetinaOrientation(NamedTuple):
    """The recording's optic-nerve head and the rotation from electrode-frame to retina-frame angles."""

    onh_xy: tuple[float, float] | None      # (col, row) electrodes
    correction_deg: float | None            # retina angle = electrode angle + this (ref-steps-6-11.md 5.10)
    reason: str                             # why correction_deg is None ('' otherwise)


class Onh(NamedTuple):
    """The optic-nerve head step ap_tracking found: (col, row) electrodes and the method that found it."""

    x: float
    y: float
    method: str


class UnitPathway(NamedTuple):
    """A unit's soma, status and (when tracked) axon centroids and pathway line, as stored."""

    soma_row: int
    soma_col: int
    status: str
    centroids: np.ndarray | None       # (N, 3) [t, row, col]; None when absent
    slope: np.float64
    intercept: np.float64


@reader("ap_tracking")
def onh(h5) -> Onh | None:
    """The recording's optic-nerve head, None when the step found none."""
    if ONH_X.at() not in h5:
        return None
    method = h5[ONH_METHOD.at()].asstr()[()] if ONH_METHOD.at() in h5 else ""
    return Onh(float(h5[ONH_X.at()][()]), float(h5[ONH_Y.at()][()]), method)


@reader("ap_tracking")
def unit_pathway(h5, unit: str) -> UnitPathway | None:
    """``unit``'s soma, status and pathway; None when the step wrote nothing for it."""
    if SOMA_ROW.at(unit=unit) not in h5:
        return None
    status = h5[STATUS.at(unit=unit)].asstr()[()] if STATUS.at(unit=unit) in h5 else ""
    centroids = h5[CENTROIDS.at(unit=unit)][()] if CENTROIDS.at(unit=unit) in h5 else None
    # The line as stored (float64 scalars: with float32 centroids, the line's points stay float64).
    return UnitPathway(int(h5[SOMA_ROW.at(unit=unit)][()]), int(h5[SOMA_COL.at(unit=unit)][()]), status, centroids,
                       h5[SLOPE.at(unit=unit)][()], h5[INTERCEPT.at(unit=unit)][()])


@reader("ap_tracking")
def ran(h5) -> bool:
    """Whether the file holds this step's output."""
    return N_UNITS.at() in h5


@reader("ap_tracking")
def retina_orientation(h5) -> RetinaOrientation:
    """The ONH and the step's ``angle_correction_deg`` (from the ONH and the sheet's ``Center_xy``)."""
    found = onh(h5)
    if found is None:
        reason = h5[ONH_REASON.at()].asstr()[()] if ONH_REASON.at() in h5 else "ap_tracking found none"
        return RetinaOrientation(None, None, f"no optic-nerve head: {reason}")
    if ANGLE_CORRECTION.at() not in h5:
        return RetinaOrientation((found.x, found.y), None,
                                 "no retina orientation: the sheet's Center_xy gives no DV and NT")
    return RetinaOrientation((found.x, found.y), float(h5[ANGLE_CORRECTION.at()][()]), "")


def run(ctx: StepContext, p: APTrackingParams) -> dict:
    # Imported when the step runs (torch among them): reading the registry (status, schema) stays fast.
    from ..ap_tracking.dense import predict_dense
    from ..ap_tracking.model_io import PACKAGED, default_model_path, load_model, resolve_device, weights_source
    from ..ap_tracking.track import track_recording

    model_path = ctx.config.ap_model or default_model_path()
    model = load_model(model_path, ctx.config.device)
    model_source = weights_source(ctx.config.ap_model)
    if model_source == PACKAGED and not file_metadata.written_by_synth(ctx):
        ctx.warn(PACKAGED_WEIGHTS_WARNING)
    units = load_recording.unit_ids(ctx)
    eimages = {unit: load_recording.eimage(ctx, unit) for unit in units}
    track = track_recording(eimages, lambda eimage: predict_dense(model, eimage), cell_type_labels.axon_types(ctx),
                            bad_lanes=parse_bad_lanes(gsheet_metadata.cell(ctx, "Bad_lanes")),
                            retina=parse_center_xy(_center_xy(ctx)), params=p, progress=ctx.report_progress)
    for warning in track.warnings:
        ctx.warn(warning)
    for unit_id, unit in track.units.items():
        features = unit.features()
        if features is not None:
            ctx.tx.write_tree(AP.format(unit=unit_id), _with_attrs(features, unit.angle_attrs()))
    no_eimage = [u for u, t in track.units.items() if t.status == "no_eimage"]
    if no_eimage:
        ctx.warn(f"{len(no_eimage)} unit(s) without a usable eimage were not tracked: {', '.join(no_eimage)}")
    ctx.tx.write_tree(META, _with_attrs(track.metadata() | {
        "model_path": str(model_path), "model_source": model_source,
        "device": str(resolve_device(ctx.config.device)),
        "axis_convention": ("eimage axes (t, row = axis 1, col = axis 2); refined_soma/x = row, y = col; "
                            "all_ap_intersection/x = col, y = row; angles in degrees, 0 = +col, 90 = +row in "
                            "the frame their 'frame' attribute names"),
    }, track.angle_attrs()))
    found = track.onh
    return {"selection": track.selection, "selection_note": track.selection_note,
            "units_processed": track.units_processed,
            "n_units_with_pathway": sum(u.status == "tracked" for u in track.units.values()),
            "onh": None if found is None else [round(found.x, 3), round(found.y, 3)],
            "onh_method": None if found is None else found.method}


# -- QC: drawn from the file through the readers above --------------------------------------------

# The array's 65 x 65 electrodes (the ONH may lie beyond them: the view widens to show it).
ARRAY_EXTENT = (-0.5, 64.5)


def qc_figure(h5):
    """Axon centroids and fitted pathways of every tracked unit, somas, and the ONH on the array.

    The circle is where the ONH search looks (parameters ``center_point`` and
    ``max_distance_from_center``). None when the file holds no ap_tracking output.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    if not ran(h5):
        return None
    fig = Figure(figsize=(5.2, 5.2), layout="constrained")
    ax = fig.subplots()
    ax.set_xlim(*ARRAY_EXTENT)
    ax.set_ylim(*ARRAY_EXTENT[::-1])
    for unit in load_recording.unit_ids(h5):
        track = unit_pathway(h5, unit)
        if track is None:
            continue
        tracked = track.status == "tracked"
        ax.plot(track.soma_col, track.soma_row, "o", ms=3, color="tab:red" if tracked else "0.6")
        if tracked and track.centroids is not None:
            points = track.centroids
            ax.plot(points[:, 2], points[:, 1], ".", ms=2, color="tab:blue")
            cols = np.array([points[:, 2].min(), points[:, 2].max()])
            ax.plot(cols, track.slope * cols + track.intercept, "-", lw=0.6, color="tab:blue")
    found = onh(h5)
    title = "no optic-nerve head"
    if found is not None:
        ax.plot(found.x, found.y, "*", ms=14, color="gold", mec="k")
        title = f"ONH ({found.x:.1f}, {found.y:.1f}) by {found.method}"
        ax.set_xlim(min(ARRAY_EXTENT[0], found.x - 2), max(ARRAY_EXTENT[1], found.x + 2))
        ax.set_ylim(max(ARRAY_EXTENT[1], found.y + 2), min(ARRAY_EXTENT[0], found.y - 2))
    search = APTrackingParams()  # the defaults: the run's values are in its step record
    ax.add_patch(Circle(search.center_point, search.max_distance_from_center, fill=False, ls=":", color="0.5"))
    ax.set_aspect("equal")
    ax.set_xlabel("col (eimage axis 2)")
    ax.set_ylabel("row (eimage axis 1)")
    ax.set_title(f"axon pathways (blue), somas (red: tracked); {title}", fontsize=8)
    return fig


def qc_numbers(h5) -> dict:
    """``axons_tracked`` (units with status tracked) and ``onh`` ([x, y] rounded to 0.01, or None)."""
    if not ran(h5):
        return {}
    tracks = (unit_pathway(h5, unit) for unit in load_recording.unit_ids(h5))
    found = onh(h5)
    return {"axons_tracked": sum(t is not None and t.status == "tracked" for t in tracks),
            "onh": None if found is None else [round(found.x, 2), round(found.y, 2)]}


def _center_xy(ctx: StepContext) -> str | None:
    """The sheet's retina position cell: the lab reads ``Center_XY`` first, then ``Center_xy``."""
    return gsheet_metadata.cell(ctx, "Center_XY") or gsheet_metadata.cell(ctx, "Center_xy")


def _with_attrs(tree: Mapping, attrs: Mapping[str, Mapping], prefix: str = "") -> dict:
    """``tree`` with the datasets named in ``attrs`` (paths relative to the tree) carrying their attributes."""
    return {key: _with_attrs(value, attrs, f"{prefix}{key}/") if isinstance(value, Mapping)
            else WithAttrs(value, attrs[f"{prefix}{key}"]) if f"{prefix}{key}" in attrs else value
            for key, value in tree.items()}


ELECTRODES = "electrodes"
RETINA_WHEN_ORIENTED = ("retina frame when the sheet's Center_xy gives the orientation (angle_correction_applied "
                        "present), else the electrode frame; the dataset's 'frame' attribute says which")

# The outputs this step's readers read (and the writer, through the science's trees under AP and META).
STATUS = Out(f"{AP}/status", "str", 0, "tracked, no_pathway or second_pass (units without output: "
             f"{META}/unwritten_status)", required=False, origin=OURS)
SOMA_ROW, SOMA_COL = outs(f"{AP}/refined_soma", ("x", "y"), "i", 0,
    "{name} of the soma trough, int64 (x = row, eimage axis 1; y = col, axis 2)", required=False,
    origin=LAB, units=ELECTRODES, frame=ELECTRODE)
CENTROIDS = Out(f"{AP}/post_processed_data/axon_centroids", "f", 2, "float32 (N, 3) [t, row, col] of the axon, "
                "longest smooth run (absent when N = 0)", required=False, origin=LAB,
                units="frames, electrodes, electrodes", frame=ELECTRODE)
SLOPE = Out(f"{AP}/ap_pathway/slope", "f", 0, "of the line row = slope * col + intercept (NaN without a pathway)",
            required=False, origin=LAB, units="rows per column", frame=ELECTRODE)
INTERCEPT = Out(f"{AP}/ap_pathway/intercept", "f", 0, "row of that line at col 0 (NaN without a pathway)",
                required=False, origin=LAB, units=ELECTRODES, frame=ELECTRODE)
ANGLE_CORRECTION = Out(f"{META}/angle_correction_deg", "f", 0, "rotation from the electrode frame into the retina "
                       "frame (absent without the sheet's orientation or an ONH)", required=False, origin=OURS,
                       units="degrees", frame=RETINA)
ONH_REASON = Out(f"{META}/onh_reason", "str", 0, "why there is no ONH", required=False, origin=OURS)
ONH_X, ONH_Y = outs(ONH, ("x", "y"), "f", 0, "ONH {name} (x = col, eimage axis 2; y = row, axis 1)", required=False,
                    origin=LAB, units=ELECTRODES, frame=ELECTRODE)
ONH_METHOD = Out(f"{ONH}/method", "str", 0, "iterative_refinement or legacy", required=False, origin=LAB)
N_UNITS = Out(f"{META}/n_units", "i", 0, "units of the recording", origin=OURS)

UNIT_OUTPUTS = (
    STATUS,
    Out(f"{AP}/reason", "str", 0, "why a unit has no pathway ('' when tracked)", required=False, origin=OURS),
    Out(f"{AP}/notes", "str", 0, "e.g. non-finite eimage values replaced by 0", required=False, origin=OURS),
    Out(f"{AP}/refined_soma/t", "i", 0, "eimage sample of the soma trough (int64; the spike is at sample 10)",
        required=False, origin=LAB, units="frames (eimage samples)"),
    SOMA_ROW, SOMA_COL,
    Out(f"{AP}/axon_initial_segment", "group", None, "the lab's empty group when no electrode reaches 30 % of "
        "the soma trough", required=False, origin=LAB),
    Out(f"{AP}/axon_initial_segment/t", "i", 0, "eimage sample of the AIS trough (int64)", required=False,
        origin=LAB, units="frames (eimage samples)"),
    *outs(f"{AP}/axon_initial_segment", ("x", "y"), "i", 0,
          "{name} of the earliest electrode reaching 30 % of the soma trough, int64 (x = row, y = col)",
          required=False, origin=LAB, units=ELECTRODES, frame=ELECTRODE),
    Out(f"{AP}/prediction_sta_data", "f", 3, "float32 (50, 65, 65) CNN axon probability, 2-voxel border 0",
        required=False, origin=LAB, units="probability", frame=ELECTRODE),
    Out(f"{AP}/post_processed_data/filtered_prediction", "f", 3, "float32 prediction after the noise filter",
        required=False, origin=LAB, units="probability", frame=ELECTRODE),
    CENTROIDS,
    SLOPE,
    INTERCEPT,
    *outs(f"{AP}/ap_pathway", ("r_value", "p_value", "std_err"), "f", 0,
          "{name} of the line fit (scipy linregress; NaN without a pathway)", required=False, origin=LAB),
    Out(f"{AP}/direction_deg", "f", 0, "axon direction from the soma, degrees, 0 = +col, 90 = +row (NaN "
        "without a pathway)", required=False, origin=OURS, units="degrees", frame=ELECTRODE),
    Out(f"{POLAR}/radius", "f", 0, "soma distance from the ONH", required=False, origin=LAB, units=ELECTRODES),
    *outs(POLAR, ("cartesian_x", "cartesian_y"), "f", 0, "{name}: soma col - ONH x (_x), soma row - ONH y (_y)",
          required=False, origin=LAB, units=ELECTRODES, frame=ELECTRODE),
    *outs(POLAR, ("original_x", "original_y"), "i", 0, "{name}: soma row (_x), soma col (_y), int64",
          required=False, origin=LAB, units=ELECTRODES, frame=ELECTRODE),
    Out(f"{POLAR}/theta_deg_raw", "f", 0, "soma angle seen from the ONH, atan2(cartesian_y, cartesian_x) in "
        "[0, 360)", required=False, origin=LAB, units="degrees", frame=ELECTRODE),
    *outs(POLAR, ("theta_deg", "theta_deg_corrected"), "f", 0,
          "{name}: theta_deg_raw + angle_correction_applied in [0, 360); " + RETINA_WHEN_ORIENTED,
          required=False, origin=LAB, units="degrees", frame=RETINA),
    Out(f"{POLAR}/angle", "f", 0, "theta_deg in radians; " + RETINA_WHEN_ORIENTED, required=False, origin=LAB,
        units="radians", frame=RETINA),
    *outs(POLAR, ("transformed_x", "transformed_y"), "f", 0, "{name}: radius * (cos, sin) of theta_deg; "
          + RETINA_WHEN_ORIENTED, required=False, origin=LAB, units=ELECTRODES, frame=RETINA),
    Out(f"{POLAR}/quadrant", "str", 0, "Q1..Q4 from the signs of transformed_x, transformed_y", required=False,
        origin=LAB, frame=RETINA),
    Out(f"{POLAR}/anatomical_quadrant", "str", 0, "dorsal|ventral-nasal|temporal of the recorded piece (absent "
        "without the sheet's orientation)", required=False, origin=LAB, frame=RETINA),
    Out(f"{POLAR}/angle_correction_applied", "f", 0, "rotation from the electrode frame into the retina frame "
        "(attributes frame = retina, from_frame = electrode; absent without the sheet's orientation)",
        required=False, origin=LAB, units="degrees", frame=RETINA),
)

META_OUTPUTS = (
    Out(f"{META}/model_path", "str", 0, "the CNN weights used (absolute path)", origin=LAB),
    Out(f"{META}/model_source", "str", 0, "packaged (the project's default weights, or a file with their content) "
        "or given (other weights: --ap-model or ap_model in the config)", origin=OURS),
    *outs(META, ("units_processed", "non_rgc_processed"), "i", 0,
          "{name}: units that got the CNN (first pass) / soma, AIS and polar coordinates only (second pass)",
          origin=LAB),
    Out(f"{META}/filter_by_cell_type", "b", 0, "whether the cell-type label chose the first-pass units",
        origin=LAB),
    Out(f"{META}/cell_type_filter", "str", 0, "the label of the first-pass units", origin=LAB),
    *outs(META, ("dvnt_dv", "dvnt_nt"), "f", 0, "{name}: the sheet's Center_xy dorso-ventral (dorsal positive) / "
          "naso-temporal (nasal positive) position (absent if unknown)", required=False, origin=LAB, frame=RETINA),
    Out(f"{META}/dvnt_lr", "str", 0, "the sheet's eye, L or R (absent if unknown)", required=False, origin=LAB),
    Out(f"{META}/selection", "str", 0, "which units got the CNN and why: 'rgc units: labels', 'all units: no "
        "labels', 'all units: no unit labelled rgc', 'no units: ...' or 'all units: cell-type filter off'",
        origin=OURS),
    Out(f"{META}/selection_note", "str", 0, "the selection with its counts", origin=OURS),
    Out(f"{META}/device", "str", 0, "where the CNN ran (cpu, cuda, mps)", origin=OURS),
    Out(f"{META}/axis_convention", "str", 0, "the axes of the keys above, in words", origin=OURS),
    N_UNITS,
    Out(f"{META}/n_units_first_pass", "i", 0, "units selected for the CNN (with or without a usable eimage)",
        origin=OURS),
    Out(f"{META}/n_units_with_pathway", "i", 0, "units with a fitted pathway (status tracked)", origin=OURS),
    Out(f"{META}/bad_lanes_fixed", "i", 1, "columns (0-based, eimage axis 2) set to the eimage mean", origin=OURS,
        frame=ELECTRODE),
    Out(f"{META}/bad_lanes_rejected", "str", 1, "Bad_lanes tokens that are not column numbers", required=False,
        origin=OURS),
    Out(f"{META}/unwritten_unit_ids", "str", 1, "units without features/ap_tracking, as in the lab's layout: no "
        "usable eimage, or not selected and no ONH for a second pass", origin=OURS),
    Out(f"{META}/unwritten_status", "str", 1, "their status, in the same order: no_eimage or not_tracked",
        origin=OURS),
    Out(f"{META}/unwritten_reason", "str", 1, "their reason, in the same order", origin=OURS),
    ANGLE_CORRECTION,
    ONH_REASON,
    ONH_X, ONH_Y,
    ONH_METHOD,
    Out(f"{ONH}/rmse", "f", 0, "root mean squared distance of the centroids to their ONH rays; 0.0 for legacy, "
        "as in the lab (see mse)", required=False, origin=LAB, units=ELECTRODES),
    Out(f"{ONH}/n_cells_used", "i", 0, "cells the ONH was fitted with (legacy: all pathways)", required=False,
        origin=LAB),
    Out(f"{ONH}/mse", "f", 0, "mean squared distance of the centroids to their ONH rays (legacy: of the ONH to "
        "the lines)", required=False, origin=OURS, units="electrodes^2"),
    Out(f"{ONH}/total_squared_error", "f", 0, "sum of those squared distances", required=False, origin=OURS,
        units="electrodes^2"),
    Out(f"{ONH}/r2_threshold", "f", 0, "the R^2 threshold that succeeded (NaN for legacy)", required=False,
        origin=OURS),
    Out(f"{ONH}/consensus_direction", "f", 0, "R^2-weighted circular mean of the pathway directions",
        required=False, origin=OURS, units="degrees", frame=ELECTRODE),
    Out(f"{ONH}/n_valid_after_direction", "i", 0, "pathways within direction_tolerance_deg of the consensus",
        required=False, origin=OURS),
    Out(f"{ONH}/n_centroids_used", "i", 0, "centroids the ONH was fitted to", required=False, origin=OURS),
    Out(f"{ONH}/n_iterations", "i", 0, "refinement iterations (0 for legacy)", required=False, origin=OURS),
    Out(f"{ONH}/kept_unit_ids", "str", 1, "units the ONH was fitted with", required=False, origin=OURS),
    Out(f"{ONH}/outlier_unit_ids", "str", 1, "units the refinement removed as outliers", required=False,
        origin=OURS),
    Out(f"{ONH}/inside_boundary", "b", 0, "whether the ONH is closer than boundary_tolerance * R to the centre",
        required=False, origin=OURS),
)

STEP = Step(
    name="ap_tracking", position=10,
    upstream=("load_recording", "file_metadata", "gsheet_metadata", "cell_type_labels"),
    reads=frozenset({"ap_model"}), params=APTrackingParams, version="3", run=run,
    outputs=UNIT_OUTPUTS + META_OUTPUTS,
    qc=Qc(topic="ap_tracking", figure=qc_figure, numbers=qc_numbers),
    description="AP tracking: CNN axon prediction (dense), pathways, optic-nerve head, soma polar coordinates",
)
