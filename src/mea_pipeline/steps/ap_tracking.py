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

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..ap_tracking.lanes import parse_bad_lanes
from ..ap_tracking.orientation import parse_center_xy
from ..ap_tracking.params import APTrackingParams
from ..ap_tracking.pathway import Pathway
from ..frames import ELECTRODE, RETINA
from . import cell_type_labels, file_metadata, gsheet_metadata, load_recording
from .ap_tracking_outputs import (
    AIS, AIS_COL, AIS_ROW, AIS_T, ANATOMICAL_QUADRANT, ANGLE, ANGLE_CORRECTION, ANGLE_CORRECTION_APPLIED,
    AXIS_CONVENTION, BAD_LANES_FIXED, BAD_LANES_REJECTED, CARTESIAN_X, CARTESIAN_Y, CELL_TYPE_FILTER, CENTROIDS,
    DEVICE, DIRECTION, DVNT_DV, DVNT_LR, DVNT_NT, FILTER_BY_CELL_TYPE, FILTERED_PREDICTION, INTERCEPT, META_OUTPUTS,
    MODEL_PATH, MODEL_SOURCE, N_UNITS, N_UNITS_FIRST_PASS, N_UNITS_WITH_PATHWAY, NON_RGC_PROCESSED, NOTES,
    ONH_CONSENSUS_DIRECTION, ONH_INSIDE_BOUNDARY, ONH_KEPT_UNIT_IDS, ONH_METHOD, ONH_MSE, ONH_N_CELLS_USED,
    ONH_N_CENTROIDS_USED, ONH_N_ITERATIONS, ONH_N_VALID_AFTER_DIRECTION, ONH_OUTLIER_UNIT_IDS, ONH_R2_THRESHOLD,
    ONH_REASON, ONH_RMSE, ONH_TOTAL_SQUARED_ERROR, ONH_X, ONH_Y, ORIGINAL_X, ORIGINAL_Y, P_VALUE, PREDICTION,
    QUADRANT, R_VALUE, RADIUS, REASON, SELECTION, SELECTION_NOTE, SLOPE, SOMA_COL, SOMA_ROW, SOMA_T, STATUS, STD_ERR,
    THETA, THETA_CORRECTED, THETA_RAW, TRANSFORMED_X, TRANSFORMED_Y, UNIT_OUTPUTS, UNITS_PROCESSED, UNWRITTEN_REASON,
    UNWRITTEN_STATUS, UNWRITTEN_UNIT_IDS,
)
from .registry import Qc, Step, StepContext, reader

if TYPE_CHECKING:
    from ..ap_tracking.track import RecordingTrack, UnitTrack

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
        _write_unit(ctx, unit_id, unit)
    no_eimage = [u for u, t in track.units.items() if t.status == "no_eimage"]
    if no_eimage:
        ctx.warn(f"{len(no_eimage)} unit(s) without a usable eimage were not tracked: {', '.join(no_eimage)}")
    _write_metadata(ctx, track)
    ctx.write({MODEL_PATH: str(model_path), MODEL_SOURCE: model_source,
               DEVICE: str(resolve_device(ctx.config.device)), AXIS_CONVENTION: AXIS_CONVENTION_TEXT})
    found = track.onh
    return {"selection": track.selection, "selection_note": track.selection_note,
            "units_processed": track.units_processed,
            "n_units_with_pathway": track.n_units_with_pathway,
            "onh": None if found is None else [round(found.x, 3), round(found.y, 3)],
            "onh_method": None if found is None else found.method}


AXIS_CONVENTION_TEXT = ("eimage axes (t, row = axis 1, col = axis 2); refined_soma/x = row, y = col; "
                        "all_ap_intersection/x = col, y = row; angles in degrees, 0 = +col, 90 = +row in "
                        "the frame their 'frame' attribute names")
# The attributes of a rotation from the electrode frame into the retina frame.
ELECTRODE_TO_RETINA = {"frame": RETINA, "from_frame": ELECTRODE}
NO_PATHWAY = Pathway(*[float("nan")] * 5)


def _write_unit(ctx: StepContext, unit_id: str, unit: "UnitTrack") -> None:
    """``unit``'s features in the lab's structure; nothing for a unit the lab writes nothing for."""
    if not unit.has_output:
        return
    line = unit.pathway or NO_PATHWAY
    values = {STATUS: unit.status, REASON: unit.reason, NOTES: "; ".join(unit.notes) or None,
              **dict(zip((SOMA_T, SOMA_ROW, SOMA_COL), unit.refined_soma)),
              SLOPE: line.slope, INTERCEPT: line.intercept, R_VALUE: line.r_value, P_VALUE: line.p_value,
              STD_ERR: line.std_err, DIRECTION: unit.direction_deg}
    attrs = {DIRECTION: {"frame": ELECTRODE}}
    if unit.axon_initial_segment is None:
        ctx.tx.write_group(AIS.at(unit=unit_id))  # the lab's empty group
    else:
        values |= dict(zip((AIS_T, AIS_ROW, AIS_COL), unit.axon_initial_segment))
    if unit.prediction is not None:
        values |= {PREDICTION: unit.prediction, FILTERED_PREDICTION: unit.filtered_prediction,
                   CENTROIDS: unit.axon_centroids if len(unit.axon_centroids) else None}
    polar = unit.polar
    if polar is not None:
        values |= {RADIUS: polar.radius, ANGLE: polar.angle, CARTESIAN_X: polar.cartesian_x,
                   CARTESIAN_Y: polar.cartesian_y, THETA: polar.theta_deg, THETA_RAW: polar.theta_deg_raw,
                   THETA_CORRECTED: polar.theta_deg_corrected, TRANSFORMED_X: polar.transformed_x,
                   TRANSFORMED_Y: polar.transformed_y, QUADRANT: polar.quadrant, ORIGINAL_X: polar.original_x,
                   ORIGINAL_Y: polar.original_y, ANATOMICAL_QUADRANT: polar.anatomical_quadrant,
                   ANGLE_CORRECTION_APPLIED: polar.angle_correction_applied}
        # Without the sheet's orientation the "corrected" angles are the raw ones, in the electrode frame.
        corrected = {"frame": RETINA if polar.corrected else ELECTRODE}
        attrs |= {THETA_RAW: {"frame": ELECTRODE}, ANGLE: corrected, THETA: corrected, THETA_CORRECTED: corrected,
                  ANGLE_CORRECTION_APPLIED: ELECTRODE_TO_RETINA}
    ctx.write(values, attrs, unit=unit_id)


def _write_metadata(ctx: StepContext, track: "RecordingTrack") -> None:
    """The recording's selection, counts, lanes, orientation and ONH (the step adds the model and device)."""
    unwritten = track.unwritten
    values = {
        UNITS_PROCESSED: track.units_processed, NON_RGC_PROCESSED: track.non_rgc_processed,
        FILTER_BY_CELL_TYPE: bool(track.filter_by_cell_type), CELL_TYPE_FILTER: track.cell_type_filter,
        SELECTION: track.selection, SELECTION_NOTE: track.selection_note, N_UNITS: len(track.units),
        N_UNITS_FIRST_PASS: track.n_units_first_pass, N_UNITS_WITH_PATHWAY: track.n_units_with_pathway,
        BAD_LANES_FIXED: np.asarray(track.bad_lanes, dtype=np.int64),
        BAD_LANES_REJECTED: list(track.rejected_lane_tokens) or None,
        UNWRITTEN_UNIT_IDS: [u.unit_id for u in unwritten], UNWRITTEN_STATUS: [u.status for u in unwritten],
        UNWRITTEN_REASON: [u.reason for u in unwritten],
        DVNT_LR: track.retina.lr, DVNT_DV: track.retina.dv, DVNT_NT: track.retina.nt,
        ANGLE_CORRECTION: track.angle_correction_deg,
    }
    o = track.onh
    if o is None:
        values[ONH_REASON] = track.onh_reason
    else:
        values |= {
            ONH_X: o.x, ONH_Y: o.y, ONH_METHOD: o.method, ONH_MSE: o.mse,
            ONH_RMSE: 0.0 if o.method == "legacy" else o.rmse,  # the lab's 0.0 for legacy (its mse is ONH_MSE)
            ONH_TOTAL_SQUARED_ERROR: o.total_squared_error, ONH_R2_THRESHOLD: o.r2_threshold,
            ONH_CONSENSUS_DIRECTION: o.consensus_direction, ONH_N_VALID_AFTER_DIRECTION: o.n_valid_after_direction,
            ONH_N_CELLS_USED: o.n_cells_used, ONH_N_CENTROIDS_USED: o.n_centroids_used,
            ONH_KEPT_UNIT_IDS: list(o.kept_unit_ids), ONH_OUTLIER_UNIT_IDS: list(o.outlier_unit_ids),
            ONH_N_ITERATIONS: o.n_iterations, ONH_INSIDE_BOUNDARY: bool(o.inside_boundary)}
    ctx.write(values, {ANGLE_CORRECTION: ELECTRODE_TO_RETINA, ONH_CONSENSUS_DIRECTION: {"frame": ELECTRODE}})


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


STEP = Step(
    name="ap_tracking", position=10,
    upstream=("load_recording", "file_metadata", "gsheet_metadata", "cell_type_labels"),
    reads=frozenset({"ap_model"}), params=APTrackingParams, version="3", run=run,
    outputs=UNIT_OUTPUTS + META_OUTPUTS,
    qc=Qc(topic="ap_tracking", figure=qc_figure, numbers=qc_numbers),
    description="AP tracking: CNN axon prediction (dense), pathways, optic-nerve head, soma polar coordinates",
)
