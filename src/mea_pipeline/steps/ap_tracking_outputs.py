"""ap_tracking's outputs: every key the step writes, declared once (the writer and readers name them here).

Per unit under ``units/{unit}/features/ap_tracking`` (the lab's keys and structure, plus status,
reason, notes and direction_deg) and per recording under ``metadata/ap_tracking``. Axis conventions
are in :mod:`mea_pipeline.ap_tracking.track`.
"""

from __future__ import annotations

from ..frames import ELECTRODE, RETINA
from ..schema import LAB, OURS, Out, outs

AP = "units/{unit}/features/ap_tracking"
META = "metadata/ap_tracking"
ONH = f"{META}/all_ap_intersection"
POLAR = f"{AP}/soma_polar_coordinates"
ELECTRODES = "electrodes"
RETINA_WHEN_ORIENTED = ("retina frame when the sheet's Center_xy gives the orientation (angle_correction_applied "
                        "present), else the electrode frame; the dataset's 'frame' attribute says which")

# -- per unit -------------------------------------------------------------------------------------
STATUS = Out(f"{AP}/status", "str", 0, "tracked, no_pathway or second_pass (units without output: "
             f"{META}/unwritten_status)", required=False, origin=OURS)
REASON = Out(f"{AP}/reason", "str", 0, "why a unit has no pathway ('' when tracked)", required=False, origin=OURS)
NOTES = Out(f"{AP}/notes", "str", 0, "e.g. non-finite eimage values replaced by 0", required=False, origin=OURS)
SOMA_T = Out(f"{AP}/refined_soma/t", "i", 0, "eimage sample of the soma trough (int64; the spike is at sample 10)",
             required=False, origin=LAB, units="frames (eimage samples)")
SOMA_ROW, SOMA_COL = outs(f"{AP}/refined_soma", ("x", "y"), "i", 0,
    "{name} of the soma trough, int64 (x = row, eimage axis 1; y = col, axis 2)", required=False,
    origin=LAB, units=ELECTRODES, frame=ELECTRODE)
AIS = Out(f"{AP}/axon_initial_segment", "group", None, "the lab's empty group when no electrode reaches 30 % of "
          "the soma trough", required=False, origin=LAB)
AIS_T = Out(f"{AP}/axon_initial_segment/t", "i", 0, "eimage sample of the AIS trough (int64)", required=False,
            origin=LAB, units="frames (eimage samples)")
AIS_ROW, AIS_COL = outs(f"{AP}/axon_initial_segment", ("x", "y"), "i", 0,
                        "{name} of the earliest electrode reaching 30 % of the soma trough, int64 (x = row, y = col)",
                        required=False, origin=LAB, units=ELECTRODES, frame=ELECTRODE)
PREDICTION = Out(f"{AP}/prediction_sta_data", "f", 3, "float32 (50, 65, 65) CNN axon probability, 2-voxel border 0",
                 required=False, origin=LAB, units="probability", frame=ELECTRODE)
FILTERED_PREDICTION = Out(f"{AP}/post_processed_data/filtered_prediction", "f", 3,
                          "float32 prediction after the noise filter", required=False, origin=LAB,
                          units="probability", frame=ELECTRODE)
CENTROIDS = Out(f"{AP}/post_processed_data/axon_centroids", "f", 2, "float32 (N, 3) [t, row, col] of the axon, "
                "longest smooth run (absent when N = 0)", required=False, origin=LAB,
                units="frames, electrodes, electrodes", frame=ELECTRODE)
SLOPE = Out(f"{AP}/ap_pathway/slope", "f", 0, "of the line row = slope * col + intercept (NaN without a pathway)",
            required=False, origin=LAB, units="rows per column", frame=ELECTRODE)
INTERCEPT = Out(f"{AP}/ap_pathway/intercept", "f", 0, "row of that line at col 0 (NaN without a pathway)",
                required=False, origin=LAB, units=ELECTRODES, frame=ELECTRODE)
R_VALUE, P_VALUE, STD_ERR = outs(f"{AP}/ap_pathway", ("r_value", "p_value", "std_err"), "f", 0,
                                 "{name} of the line fit (scipy linregress; NaN without a pathway)", required=False,
                                 origin=LAB)
DIRECTION = Out(f"{AP}/direction_deg", "f", 0, "axon direction from the soma, degrees, 0 = +col, 90 = +row (NaN "
                "without a pathway)", required=False, origin=OURS, units="degrees", frame=ELECTRODE)
RADIUS = Out(f"{POLAR}/radius", "f", 0, "soma distance from the ONH", required=False, origin=LAB, units=ELECTRODES)
CARTESIAN_X, CARTESIAN_Y = outs(POLAR, ("cartesian_x", "cartesian_y"), "f", 0,
                                "{name}: soma col - ONH x (_x), soma row - ONH y (_y)",
                                required=False, origin=LAB, units=ELECTRODES, frame=ELECTRODE)
ORIGINAL_X, ORIGINAL_Y = outs(POLAR, ("original_x", "original_y"), "i", 0, "{name}: soma row (_x), soma col (_y), int64",
                              required=False, origin=LAB, units=ELECTRODES, frame=ELECTRODE)
THETA_RAW = Out(f"{POLAR}/theta_deg_raw", "f", 0, "soma angle seen from the ONH, atan2(cartesian_y, cartesian_x) in "
                "[0, 360)", required=False, origin=LAB, units="degrees", frame=ELECTRODE)
THETA, THETA_CORRECTED = outs(POLAR, ("theta_deg", "theta_deg_corrected"), "f", 0,
                              "{name}: theta_deg_raw + angle_correction_applied in [0, 360); " + RETINA_WHEN_ORIENTED,
                              required=False, origin=LAB, units="degrees", frame=RETINA)
ANGLE = Out(f"{POLAR}/angle", "f", 0, "theta_deg in radians; " + RETINA_WHEN_ORIENTED, required=False, origin=LAB,
            units="radians", frame=RETINA)
TRANSFORMED_X, TRANSFORMED_Y = outs(POLAR, ("transformed_x", "transformed_y"), "f", 0,
                                    "{name}: radius * (cos, sin) of theta_deg; " + RETINA_WHEN_ORIENTED,
                                    required=False, origin=LAB, units=ELECTRODES, frame=RETINA)
QUADRANT = Out(f"{POLAR}/quadrant", "str", 0, "Q1..Q4 from the signs of transformed_x, transformed_y", required=False,
               origin=LAB, frame=RETINA)
ANATOMICAL_QUADRANT = Out(f"{POLAR}/anatomical_quadrant", "str", 0, "dorsal|ventral-nasal|temporal of the recorded "
                          "piece (absent without the sheet's orientation)", required=False, origin=LAB, frame=RETINA)
ANGLE_CORRECTION_APPLIED = Out(f"{POLAR}/angle_correction_applied", "f", 0, "rotation from the electrode frame into "
                               "the retina frame (attributes frame = retina, from_frame = electrode; absent without "
                               "the sheet's orientation)", required=False, origin=LAB, units="degrees", frame=RETINA)

UNIT_OUTPUTS = (
    STATUS, REASON, NOTES, SOMA_T, SOMA_ROW, SOMA_COL, AIS, AIS_T, AIS_ROW, AIS_COL, PREDICTION, FILTERED_PREDICTION,
    CENTROIDS, SLOPE, INTERCEPT, R_VALUE, P_VALUE, STD_ERR, DIRECTION, RADIUS, CARTESIAN_X, CARTESIAN_Y,
    ORIGINAL_X, ORIGINAL_Y, THETA_RAW, THETA, THETA_CORRECTED, ANGLE, TRANSFORMED_X, TRANSFORMED_Y, QUADRANT,
    ANATOMICAL_QUADRANT, ANGLE_CORRECTION_APPLIED,
)

# -- per recording --------------------------------------------------------------------------------
MODEL_PATH = Out(f"{META}/model_path", "str", 0, "the CNN weights used (absolute path)", origin=LAB)
MODEL_SOURCE = Out(f"{META}/model_source", "str", 0, "packaged (the project's default weights, or a file with their "
                   "content) or given (other weights: --ap-model or ap_model in the config)", origin=OURS)
UNITS_PROCESSED, NON_RGC_PROCESSED = outs(
    META, ("units_processed", "non_rgc_processed"), "i", 0,
    "{name}: units that got the CNN (first pass) / soma, AIS and polar coordinates only (second pass)", origin=LAB)
FILTER_BY_CELL_TYPE = Out(f"{META}/filter_by_cell_type", "b", 0, "whether the cell-type label chose the first-pass "
                          "units", origin=LAB)
CELL_TYPE_FILTER = Out(f"{META}/cell_type_filter", "str", 0, "the label of the first-pass units", origin=LAB)
DVNT_DV, DVNT_NT = outs(META, ("dvnt_dv", "dvnt_nt"), "f", 0, "{name}: the sheet's Center_xy dorso-ventral (dorsal "
                        "positive) / naso-temporal (nasal positive) position (absent if unknown)", required=False,
                        origin=LAB, frame=RETINA)
DVNT_LR = Out(f"{META}/dvnt_lr", "str", 0, "the sheet's eye, L or R (absent if unknown)", required=False, origin=LAB)
SELECTION = Out(f"{META}/selection", "str", 0, "which units got the CNN and why: 'rgc units: labels', 'all units: no "
                "labels', 'all units: no unit labelled rgc', 'no units: ...' or 'all units: cell-type filter off'",
                origin=OURS)
SELECTION_NOTE = Out(f"{META}/selection_note", "str", 0, "the selection with its counts", origin=OURS)
DEVICE = Out(f"{META}/device", "str", 0, "where the CNN ran (cpu, cuda, mps)", origin=OURS)
AXIS_CONVENTION = Out(f"{META}/axis_convention", "str", 0, "the axes of the keys above, in words", origin=OURS)
N_UNITS = Out(f"{META}/n_units", "i", 0, "units of the recording", origin=OURS)
N_UNITS_FIRST_PASS = Out(f"{META}/n_units_first_pass", "i", 0, "units selected for the CNN (with or without a "
                         "usable eimage)", origin=OURS)
N_UNITS_WITH_PATHWAY = Out(f"{META}/n_units_with_pathway", "i", 0, "units with a fitted pathway (status tracked)",
                           origin=OURS)
BAD_LANES_FIXED = Out(f"{META}/bad_lanes_fixed", "i", 1, "columns (0-based, eimage axis 2) set to the eimage mean",
                      origin=OURS, frame=ELECTRODE)
BAD_LANES_REJECTED = Out(f"{META}/bad_lanes_rejected", "str", 1, "Bad_lanes tokens that are not column numbers",
                         required=False, origin=OURS)
UNWRITTEN_UNIT_IDS = Out(f"{META}/unwritten_unit_ids", "str", 1, "units without features/ap_tracking, as in the "
                         "lab's layout: no usable eimage, or not selected and no ONH for a second pass", origin=OURS)
UNWRITTEN_STATUS = Out(f"{META}/unwritten_status", "str", 1, "their status, in the same order: no_eimage or "
                       "not_tracked", origin=OURS)
UNWRITTEN_REASON = Out(f"{META}/unwritten_reason", "str", 1, "their reason, in the same order", origin=OURS)
ANGLE_CORRECTION = Out(f"{META}/angle_correction_deg", "f", 0, "rotation from the electrode frame into the retina "
                       "frame (absent without the sheet's orientation or an ONH)", required=False, origin=OURS,
                       units="degrees", frame=RETINA)
ONH_REASON = Out(f"{META}/onh_reason", "str", 0, "why there is no ONH", required=False, origin=OURS)
ONH_X, ONH_Y = outs(ONH, ("x", "y"), "f", 0, "ONH {name} (x = col, eimage axis 2; y = row, axis 1)", required=False,
                    origin=LAB, units=ELECTRODES, frame=ELECTRODE)
ONH_METHOD = Out(f"{ONH}/method", "str", 0, "iterative_refinement or legacy", required=False, origin=LAB)
ONH_RMSE = Out(f"{ONH}/rmse", "f", 0, "root mean squared distance of the centroids to their ONH rays; 0.0 for legacy, "
               "as in the lab (see mse)", required=False, origin=LAB, units=ELECTRODES)
ONH_N_CELLS_USED = Out(f"{ONH}/n_cells_used", "i", 0, "cells the ONH was fitted with (legacy: all pathways)",
                       required=False, origin=LAB)
ONH_MSE = Out(f"{ONH}/mse", "f", 0, "mean squared distance of the centroids to their ONH rays (legacy: of the ONH to "
              "the lines)", required=False, origin=OURS, units="electrodes^2")
ONH_TOTAL_SQUARED_ERROR = Out(f"{ONH}/total_squared_error", "f", 0, "sum of those squared distances", required=False,
                              origin=OURS, units="electrodes^2")
ONH_R2_THRESHOLD = Out(f"{ONH}/r2_threshold", "f", 0, "the R^2 threshold that succeeded (NaN for legacy)",
                       required=False, origin=OURS)
ONH_CONSENSUS_DIRECTION = Out(f"{ONH}/consensus_direction", "f", 0, "R^2-weighted circular mean of the pathway "
                              "directions", required=False, origin=OURS, units="degrees", frame=ELECTRODE)
ONH_N_VALID_AFTER_DIRECTION = Out(f"{ONH}/n_valid_after_direction", "i", 0, "pathways within direction_tolerance_deg "
                                  "of the consensus", required=False, origin=OURS)
ONH_N_CENTROIDS_USED = Out(f"{ONH}/n_centroids_used", "i", 0, "centroids the ONH was fitted to", required=False,
                           origin=OURS)
ONH_N_ITERATIONS = Out(f"{ONH}/n_iterations", "i", 0, "refinement iterations (0 for legacy)", required=False,
                       origin=OURS)
ONH_KEPT_UNIT_IDS = Out(f"{ONH}/kept_unit_ids", "str", 1, "units the ONH was fitted with", required=False, origin=OURS)
ONH_OUTLIER_UNIT_IDS = Out(f"{ONH}/outlier_unit_ids", "str", 1, "units the refinement removed as outliers",
                           required=False, origin=OURS)
ONH_INSIDE_BOUNDARY = Out(f"{ONH}/inside_boundary", "b", 0, "whether the ONH is closer than boundary_tolerance * R to "
                          "the centre", required=False, origin=OURS)

META_OUTPUTS = (
    MODEL_PATH, MODEL_SOURCE, UNITS_PROCESSED, NON_RGC_PROCESSED, FILTER_BY_CELL_TYPE, CELL_TYPE_FILTER,
    DVNT_DV, DVNT_NT, DVNT_LR, SELECTION, SELECTION_NOTE, DEVICE, AXIS_CONVENTION, N_UNITS, N_UNITS_FIRST_PASS,
    N_UNITS_WITH_PATHWAY, BAD_LANES_FIXED, BAD_LANES_REJECTED, UNWRITTEN_UNIT_IDS, UNWRITTEN_STATUS, UNWRITTEN_REASON,
    ANGLE_CORRECTION, ONH_REASON, ONH_X, ONH_Y, ONH_METHOD, ONH_RMSE, ONH_N_CELLS_USED, ONH_MSE,
    ONH_TOTAL_SQUARED_ERROR, ONH_R2_THRESHOLD, ONH_CONSENSUS_DIRECTION, ONH_N_VALID_AFTER_DIRECTION,
    ONH_N_CENTROIDS_USED, ONH_N_ITERATIONS, ONH_KEPT_UNIT_IDS, ONH_OUTLIER_UNIT_IDS, ONH_INSIDE_BOUNDARY,
)
