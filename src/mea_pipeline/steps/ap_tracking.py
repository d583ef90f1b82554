"""Step 10: AP tracking: each unit's axon through its electrical image, and the optic-nerve head.

The lab's 3-D CNN (``--ap-model``, default the packaged weights trained on synthetic images) runs
densely over every selected unit's eimage (:func:`mea_pipeline.ap_tracking.dense.predict_dense`);
:func:`mea_pipeline.ap_tracking.track.track_recording` does the rest: unit selection by the step-9
label, the sheet's bad-lane fix on this step's own copy (step 1's ``eimage_sta/data`` is never
rewritten), soma and AIS, noise filter, centroids, pathway fit, ONH with the R^2 ladder, retina
orientation from the sheet's ``Center_xy`` and polar coordinates. Axis conventions are in
:mod:`mea_pipeline.ap_tracking.track` and in ``docs/output_schema.md``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..ap_tracking.params import APTrackingParams
from ..schema import Out
from . import cell_type_labels, gsheet_metadata, load_recording
from .registry import Step, StepContext, reader

AP = "units/{unit}/features/ap_tracking"
META = "metadata/ap_tracking"


class RetinaOrientation(NamedTuple):
    """The recording's optic-nerve head and the rotation from electrode-frame to retina-frame angles."""

    onh_xy: tuple[float, float] | None      # (col, row) electrodes
    correction_deg: float | None            # retina angle = electrode angle + this (ref-steps-6-11.md 5.10)
    reason: str                             # why correction_deg is None ('' otherwise)


@reader("ap_tracking")
def retina_orientation(h5) -> RetinaOrientation:
    """The ONH and step 10's ``angle_correction_deg`` (from the ONH and the sheet's ``Center_xy``)."""
    onh = f"{META}/all_ap_intersection"
    if f"{onh}/x" not in h5:
        reason = h5[f"{META}/onh_reason"].asstr()[()] if f"{META}/onh_reason" in h5 else "step 10 found none"
        return RetinaOrientation(None, None, f"no optic-nerve head: {reason}")
    onh_xy = (float(h5[f"{onh}/x"][()]), float(h5[f"{onh}/y"][()]))
    if f"{META}/angle_correction_deg" not in h5:
        return RetinaOrientation(onh_xy, None, "no retina orientation: the sheet's Center_xy gives no DV and NT")
    return RetinaOrientation(onh_xy, float(h5[f"{META}/angle_correction_deg"][()]), "")


def run(ctx: StepContext, p: APTrackingParams) -> dict:
    # Imported when the step runs (torch among them): reading the registry (status, schema) stays fast.
    from ..ap_tracking.dense import predict_dense
    from ..ap_tracking.model_io import default_model_path, load_model, resolve_device
    from ..ap_tracking.track import track_recording

    model_path = ctx.config.ap_model or default_model_path()
    model = load_model(model_path, ctx.config.device)
    units = load_recording.unit_ids(ctx)
    eimages = {unit: load_recording.eimage(ctx, unit) for unit in units}
    # The lab reads Center_XY first, then Center_xy.
    center_xy = gsheet_metadata.cell(ctx, "Center_XY") or gsheet_metadata.cell(ctx, "Center_xy")
    track = track_recording(eimages, lambda eimage: predict_dense(model, eimage), cell_type_labels.axon_types(ctx),
                            gsheet_metadata.cell(ctx, "Bad_lanes"), center_xy, p, progress=ctx.report_progress)
    for warning in track.warnings:
        ctx.warn(warning)
    for unit_id, unit in track.units.items():
        ctx.tx.write_tree(AP.format(unit=unit_id), unit.features())
    no_eimage = [u for u, t in track.units.items() if t.status == "no_eimage"]
    if no_eimage:
        ctx.warn(f"{len(no_eimage)} unit(s) without a usable eimage were not tracked: {', '.join(no_eimage)}")
    ctx.tx.write_tree(META, track.metadata() | {
        "model_path": str(model_path), "device": str(resolve_device(ctx.config.device)),
        "axis_convention": ("eimage axes (t, row = axis 1, col = axis 2); refined_soma/x = row, y = col; "
                            "all_ap_intersection/x = col, y = row; angles in degrees, 0 = +col, 90 = +row"),
    })
    found = track.onh
    return {"selection": track.selection_note, "units_processed": track.units_processed,
            "n_units_with_pathway": sum(u.status == "tracked" for u in track.units.values()),
            "onh": None if found is None else [round(found.x, 3), round(found.y, 3)],
            "onh_method": None if found is None else found.method}


UNIT_PATHS = (
    ("status", "str", 0, "tracked, no_pathway, second_pass, no_eimage or not_tracked"),
    ("reason", "str", 0, "why a unit has no pathway / was not tracked ('' when tracked)"),
    ("notes", "str", 0, "e.g. non-finite eimage values replaced by 0", False),
    ("refined_soma/{field}", "i", 0, "t, x (= row, eimage axis 1), y (= col, axis 2) of the soma trough", False),
    ("axon_initial_segment/{field}", "i", 0, "t, x (= row), y (= col) of the earliest electrode reaching 30 % "
                                            "of the soma trough (empty group if none)", False),
    ("prediction_sta_data", "f", 3, "float32 (50, 65, 65) CNN axon probability, 2-voxel border 0", False),
    ("post_processed_data/filtered_prediction", "f", 3, "prediction after the noise filter", False),
    ("post_processed_data/axon_centroids", "f", 2, "(N, 3) [t, row, col] of the axon, longest smooth run", False),
    ("ap_pathway/{field}", "f", 0, "slope, intercept, r_value, p_value, std_err of row = slope * col + "
                                   "intercept (NaN without a pathway)", False),
    ("direction_deg", "f", 0, "axon direction from the soma, degrees, 0 = +col, 90 = +row (NaN without a "
                              "pathway)", False),
    ("soma_polar_coordinates/{field}", "any", 0, "radius, angle (rad), cartesian_x (col - ONH x), cartesian_y "
                                                 "(row - ONH y), theta_deg(_raw, _corrected), transformed_x/y, "
                                                 "quadrant, anatomical_quadrant, original_x (row), original_y "
                                                 "(col), angle_correction_applied", False),
)

STEP = Step(
    name="ap_tracking", number=10, upstream=("load_recording", "gsheet_metadata", "cell_type_labels"),
    reads=frozenset({"ap_model"}), params=APTrackingParams, version="1", run=run,
    outputs=tuple(Out(f"{AP}/{path}", dtype, ndim, doc, *required) for path, dtype, ndim, doc, *required in UNIT_PATHS)
    + (
        Out(f"{META}/{{field}}", "any", None,
            "model_path, device, units_processed, non_rgc_processed, n_units, n_units_first_pass, "
            "n_units_with_pathway, filter_by_cell_type, cell_type_filter, selection_note, bad_lanes_fixed "
            "(0-based columns, axis 2), bad_lanes_rejected, dvnt_lr/dv/nt, angle_correction_deg, onh_reason, "
            "axis_convention"),
        Out(f"{META}/all_ap_intersection/{{field}}", "any", None,
            "the ONH: x (= col), y (= row), method (iterative_refinement or legacy), mse, rmse, "
            "total_squared_error, r2_threshold (the one that succeeded), consensus_direction, "
            "n_valid_after_direction, n_cells_used, n_centroids_used, kept_unit_ids, outlier_unit_ids, "
            "n_iterations, inside_boundary", required=False),
    ),
    description="AP tracking: CNN axon prediction (dense), pathways, optic-nerve head, soma polar coordinates",
)
