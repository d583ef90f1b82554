"""AP tracking of one recording, CNN excluded: from eimages to pathways, ONH and polar positions.

:func:`track_recording` runs the lab's AP-tracking flow on arrays (the CNN is the ``predict``
callable) and returns plain dataclasses; the step (:mod:`mea_pipeline.steps.ap_tracking`) maps
their fields to the lab's keys, dtypes and structure plus this project's additions (per-unit
direction, status and reason; recording-level selection, R^2 threshold, kept/outlier ids,
consensus direction, lanes fixed, counts, and the status of the units without output).

Axis conventions (as in the lab, and mixed on purpose: the keys must match its files):

* eimage / prediction volumes: ``(t, row, col)`` with row = axis 1 and col = axis 2.
* ``refined_soma`` and ``axon_initial_segment``: ``t``, ``x`` = **row** (axis 1), ``y`` = **col** (axis 2).
* ``axon_centroids``: columns ``[t, row, col]``.
* ``ap_pathway``: the line ``row = slope * col + intercept``.
* ``all_ap_intersection`` (the ONH): ``x`` = **col** (axis 2), ``y`` = **row** (axis 1).
* ``soma_polar_coordinates``: ``cartesian_x`` = soma col - ONH x, ``cartesian_y`` = soma row - ONH y,
  ``original_x`` = soma row, ``original_y`` = soma col.
* ``direction_deg`` and ``consensus_direction``: degrees, 0 = +col, 90 = +row (electrode frame).

Unit statuses: ``tracked`` (first pass with a pathway), ``no_pathway`` (first pass; reason
``too_few_centroids: N < M`` or ``vertical_track``), ``second_pass`` (soma, AIS and polar
coordinates only), ``no_eimage`` (all-NaN or malformed eimage) and ``not_tracked`` (not selected,
and no ONH for a second pass).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..labels import NO_LABEL
from .lanes import BadLanes, fix_bad_lanes, sheet_text
from .onh import OnhResult, TrackedPathway, find_onh
from .orientation import RetinaPosition, angle_correction, SomaPolar, soma_polar_coordinates
from .params import APTrackingParams
from .pathway import Pathway, direction_deg, fit_pathway
from .postprocess import axon_centroids, filter_noise, longest_smooth_segment
from .soma import axon_initial_segment, coarse_soma, refined_soma


@dataclass
class UnitTrack:
    """What ap_tracking found for one unit (positions as (t, row, col) tuples)."""

    unit_id: str
    label: str
    first_pass: bool
    status: str
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    refined_soma: tuple[int, int, int] | None = None
    axon_initial_segment: tuple[int, int, int] | None = None
    prediction: np.ndarray | None = None
    filtered_prediction: np.ndarray | None = None
    axon_centroids: np.ndarray | None = None
    pathway: Pathway | None = None
    direction_deg: float = float("nan")
    polar: SomaPolar | None = None

    @property
    def has_output(self) -> bool:
        """Whether the lab writes this unit's features: it has a soma (no usable eimage, or not
        selected and no ONH for a second pass, leaves it without; its status goes to the metadata)."""
        return self.refined_soma is not None


@dataclass
class RecordingTrack:
    """ap_tracking's result for one recording."""

    units: dict[str, UnitTrack]
    onh: OnhResult | None
    onh_reason: str
    retina: RetinaPosition
    angle_correction_deg: float | None
    bad_lanes: list[int]
    rejected_lane_tokens: list[str]
    selection: str
    selection_note: str
    filter_by_cell_type: bool
    cell_type_filter: str
    warnings: list[str] = field(default_factory=list)

    @property
    def units_processed(self) -> int:
        """First-pass units that got soma, prediction and post-processing."""
        return sum(u.status in ("tracked", "no_pathway") for u in self.units.values())

    @property
    def non_rgc_processed(self) -> int:
        return sum(u.status == "second_pass" for u in self.units.values())

    @property
    def n_units_first_pass(self) -> int:
        """Units selected for the CNN (with or without a usable eimage)."""
        return sum(u.first_pass for u in self.units.values())

    @property
    def n_units_with_pathway(self) -> int:
        return sum(u.status == "tracked" for u in self.units.values())

    @property
    def unwritten(self) -> list[UnitTrack]:
        """The units without output (:attr:`UnitTrack.has_output`), in unit order."""
        return [u for u in self.units.values() if not u.has_output]


@dataclass(frozen=True)
class Selection:
    """Which units get the CNN (the first pass), and why.

    ``summary`` is short and stable, "<which units>: <why>" ('rgc units: labels', 'all units: no
    labels', 'all units: no unit labelled rgc', 'no units: ...', 'all units: cell-type filter
    off'); ``note`` gives the counts; ``filtered`` says whether the cell-type filter chose them
    (the lab's ``filter_by_cell_type``).
    """

    units: list[str]
    summary: str
    note: str
    filtered: bool


def select_units(unit_ids: list[str], labels: dict[str, str] | None, params: APTrackingParams) -> Selection:
    """The units of the first pass: the lab's rule (label ``cell_type_filter``), or all of them."""
    if not params.filter_by_cell_type:
        return Selection(list(unit_ids), "all units: cell-type filter off",
                         f"cell-type filter off: tracking all {len(unit_ids)} units", False)
    wanted = params.cell_type_filter.lower()
    label_of = {u: sheet_text((labels or {}).get(u)).lower() for u in unit_ids}
    chosen = [u for u in unit_ids if label_of[u] == wanted]
    if chosen:
        return Selection(chosen, f"{wanted} units: labels",
                         f"{len(chosen)} of {len(unit_ids)} units labelled '{wanted}' tracked; the others "
                         "get soma, AIS and polar coordinates only", True)
    if all(label in ("", NO_LABEL) for label in label_of.values()):
        reason, why = "no labels", "no unit has a cell-type label"
    else:
        counts = Counter(label or NO_LABEL for label in label_of.values())
        reason = f"no unit labelled {wanted}"
        why = f"no unit is labelled '{wanted}' (labels: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())) + ")"
    if params.track_all_when_unlabelled:
        return Selection(list(unit_ids), f"all units: {reason}", f"{why}: tracking all {len(unit_ids)} units", False)
    return Selection([], f"no units: {reason}", f"{why}: no unit tracked", True)


def _prepare(eimage: np.ndarray, lanes: list[int]) -> tuple[np.ndarray | None, str]:
    """Bad-lane-fixed float32 copy with NaN replaced by 0, and a note; (None, reason) if unusable."""
    array = np.asarray(eimage)
    if array.ndim != 3 or min(array.shape) == 0:
        return None, f"eimage_sta has shape {array.shape}, expected (t, rows, cols)"
    if not np.isfinite(array).any():
        return None, "eimage_sta is all NaN (no usable spikes)"
    array = fix_bad_lanes(array, lanes).astype(np.float32)
    bad = ~np.isfinite(array)
    if bad.any():
        array[bad] = 0.0
        return array, f"{int(bad.sum())} non-finite eimage_sta values replaced by 0 before tracking"
    return array, ""


def _soma_and_ais(array: np.ndarray, p: APTrackingParams):
    soma = refined_soma(array, coarse_soma(array, p.soma_std_threshold, p.soma_temporal_range), p.soma_refine_radius)
    return soma, axon_initial_segment(array, soma, p.ais_search_xy_radius, p.ais_search_t_radius, p.ais_fraction)


def _first_pass(unit: UnitTrack, array: np.ndarray, predict: Callable[[np.ndarray], np.ndarray],
                p: APTrackingParams) -> None:
    unit.refined_soma, unit.axon_initial_segment = _soma_and_ais(array, p)
    prediction = np.asarray(predict(array), dtype=np.float32)
    if prediction.shape != array.shape:
        raise ValueError(f"the CNN returned shape {prediction.shape} for an eimage of shape {array.shape}")
    unit.prediction = prediction
    unit.filtered_prediction = filter_noise(prediction, p.centroid_threshold, p.min_cluster_size,
                                            p.temporal_window_size)
    _, row, col = unit.refined_soma
    centroids = axon_centroids(unit.filtered_prediction, row, col, p.centroid_start_frame, p.exclude_radius,
                               p.max_displacement)
    unit.axon_centroids = longest_smooth_segment(centroids, p.max_displacement_post)
    if len(unit.axon_centroids) < p.min_points_for_fit:
        unit.status, unit.reason = "no_pathway", f"too_few_centroids: {len(unit.axon_centroids)} < {p.min_points_for_fit}"
        return
    unit.pathway = fit_pathway(unit.axon_centroids)
    if unit.pathway is None:
        unit.status, unit.reason = "no_pathway", "vertical_track"
        return
    unit.status = "tracked"
    unit.direction_deg = direction_deg(unit.axon_centroids)


def track_recording(eimages: dict[str, np.ndarray], predict: Callable[[np.ndarray], np.ndarray],
                    labels: dict[str, str] | None = None, bad_lanes: BadLanes | None = None,
                    retina: RetinaPosition | None = None, params: APTrackingParams = APTrackingParams(),
                    progress: Callable[[int, int], None] | None = None) -> RecordingTrack:
    """AP tracking of one recording (the CNN given as ``predict``).

    Parameters
    ----------
    eimages : dict
        Unit id -> eimage_sta (t, row, col); never modified (the bad-lane fix works on copies).
    predict : callable
        The CNN: float32 (t, row, col) eimage -> axon probability volume of the same shape.
    labels : dict or None
        Unit id -> manual cell-type label (cell_type_labels); None when there are none.
    bad_lanes : BadLanes or None
        The sheet's ``Bad_lanes``, parsed (:func:`~mea_pipeline.ap_tracking.lanes.parse_bad_lanes`);
        None when the sheet gives none.
    retina : RetinaPosition or None
        Where the piece sits in the retina, from the sheet's ``Center_xy``
        (:func:`~mea_pipeline.ap_tracking.orientation.parse_center_xy`); None when unknown.
    params : APTrackingParams
    progress : callable, optional
        ``progress(done, total)`` after each unit of the first pass (the CNN's share of the time).

    Returns
    -------
    RecordingTrack
    """
    unit_ids = sorted(eimages)
    lanes, rejected = bad_lanes if bad_lanes is not None and params.fix_bad_lanes else ([], [])
    warnings = []
    if rejected:
        warnings.append(f"Bad_lanes: ignored {rejected}: not 1-based column numbers; correct the sheet's Bad_lanes cell")
    width = next((np.shape(e)[-1] for e in eimages.values() if np.ndim(e) == 3), None)
    if width is not None and any(c >= width for c in lanes):
        warnings.append(f"Bad_lanes: columns {[c + 1 for c in lanes if c >= width]} are beyond the {width} columns; ignored")
        lanes = [c for c in lanes if c < width]
    retina = retina or RetinaPosition(None, None, None)
    if retina.lr not in (None, "L", "R"):
        warnings.append(f"Center_xy: eye '{retina.lr}' is neither L nor R; kept as given")
    selection = select_units(unit_ids, labels, params)
    first = selection.units

    units, arrays = {}, {}
    for unit_id in unit_ids:
        arrays[unit_id], prepared_note = _prepare(eimages[unit_id], lanes)
        unit = UnitTrack(unit_id, sheet_text((labels or {}).get(unit_id)), unit_id in first, status="not_tracked")
        if arrays[unit_id] is None:
            unit.status, unit.reason = "no_eimage", prepared_note
        elif prepared_note:
            unit.notes.append(prepared_note)
        units[unit_id] = unit
    for done, unit_id in enumerate(first, start=1):
        if arrays[unit_id] is not None:
            _first_pass(units[unit_id], arrays[unit_id], predict, params)
        if progress is not None:
            progress(done, len(first))

    tracks = [TrackedPathway(u.unit_id, u.pathway, u.direction_deg, u.axon_centroids)
              for u in units.values() if u.status == "tracked"]
    onh, onh_reason = find_onh(tracks, params)
    correction = None
    if onh is None:
        warnings.append(f"no optic-nerve head: {onh_reason}")
    else:
        correction = angle_correction((onh.x, onh.y), retina.dv, retina.nt, params.angle_reference_point)
    for unit in units.values():
        if unit.status == "not_tracked" and onh is not None:
            unit.refined_soma, unit.axon_initial_segment = _soma_and_ais(arrays[unit.unit_id], params)
            unit.status = "second_pass"
        elif unit.status == "not_tracked":
            unit.reason = "not selected for tracking; no ONH, so no second pass"
        if onh is not None and unit.refined_soma is not None:
            _, row, col = unit.refined_soma
            unit.polar = soma_polar_coordinates(row, col, (onh.x, onh.y), correction, retina.dv, retina.nt)
    return RecordingTrack(units, onh, onh_reason, retina, correction, lanes, rejected, selection.summary,
                          selection.note, selection.filtered, params.cell_type_filter, warnings)
