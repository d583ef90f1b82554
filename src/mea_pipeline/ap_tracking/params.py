"""Parameters of AP tracking (step ap_tracking) after the CNN, with the lab's unified-pipeline values.

Coordinates: electrode indices of the (t, axis 1, axis 2) eimage; the lab calls axis 1 "row" and
axis 2 "col". Points given as pairs below are ``(col, row)`` (the lab's Cartesian ONH
convention), distances are in electrodes and angles in degrees (0 = +col, 90 = +row).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class APTrackingParams:
    """Every constant of the post-CNN part of ap_tracking.

    Attributes
    ----------
    filter_by_cell_type : bool
        Give the CNN only the units labelled ``cell_type_filter`` (the lab's switch); False
        tracks every unit.
    cell_type_filter : str
        Units whose manual label equals this (case-insensitive) get the CNN ("first pass").
    track_all_when_unlabelled : bool
        When no unit carries ``cell_type_filter``, track every unit instead of none (the lab
        tracks none) and say so in the recording's selection.
    fix_bad_lanes : bool
        Flatten the sheet's ``Bad_lanes`` columns (on this step's copy) before tracking.
    soma_std_threshold : float
        Coarse soma: electrodes whose temporal std exceeds this many times the std of all
        values of the frame window are "responsive".
    soma_temporal_range : tuple[int, int]
        Coarse soma frame window ``[start, stop)`` (spike at frame 10).
    soma_refine_radius : int
        Refined soma: the global minimum is searched in rows/cols ``[c - r, c + r)`` (the lab's
        asymmetric 2r x 2r window).
    ais_search_xy_radius : int
        AIS search box around the refined soma: half-width in electrodes (both ends included).
    ais_search_t_radius : int
        AIS search box: frames (eimage samples) searched each side of the soma trough's frame.
    ais_fraction : float
        An electrode is part of the AIS search when its trough reaches this fraction of the
        soma trough.
    temporal_window_size : int
        Noise filter: temporal neighbourhood size; its half (``// 2``) is the spatial radius of
        the neighbourhood a pixel must find signal in, in the previous or next frame.
    exclude_radius : int
        Centroids: a ``(2r + 1)`` square (r in electrodes) around the refined soma is zeroed in
        every frame.
    centroid_threshold : float
        Noise filter: probabilities below this are set to 0.
    min_cluster_size : int
        Noise filter: smallest 4-connected component kept in a frame.
    max_displacement : float
        Centroids: a frame whose centroid jumps farther (electrodes) than this from the previous
        one is skipped (100 = practically off, as in the unified pipeline).
    centroid_start_frame : int
        First frame searched for centroids (the spike frame).
    max_displacement_post : float
        Outlier segments: the centroid sequence is split where consecutive centroids are
        farther apart than this; the longest segment is kept.
    min_points_for_fit : int
        Fewest centroids a unit needs for a pathway (line fit).
    r2_thresholds : tuple[float, ...]
        R^2 thresholds tried in order for the ONH; the legacy intersection follows if all fail.
    direction_tolerance_deg : float
        A pathway is direction-valid when its direction is within this of the consensus.
    max_distance_from_center : float
        Radius R of the circle around ``center_point`` the ONH must lie in.
    center_point : tuple[float, float]
        Centre of that circle, ``(col, row)``.
    centroid_exclude_fraction : float
        ONH cell data: this fraction of a track's first centroids (at least one) is dropped,
        being closest to the soma.
    min_centroids_per_cell : int
        ONH cell data: fewest centroids a pathway needs to become a cell.
    min_points_after_exclusion : int
        ONH cell data: fewest centroids left after the exclusion.
    min_remaining_fraction : float
        Iterative refinement never removes cells below ``max(min_pathways, fraction * initial)``.
    min_pathways : int
        Fewest cells the iterative refinement runs with.
    boundary_tolerance : float
        The refinement succeeds once the ONH is closer than ``tolerance * R`` to the centre.
    max_iterations : int
        Most refinement iterations (optimise, then remove the worst cells).
    removal_fraction : float
        Fraction of the cells removed per iteration (at least one), the starting rate.
    removal_fraction_step : float
        Increase of the removal rate after ``no_progress_patience`` iterations without progress.
    max_removal_fraction : float
        Highest removal rate.
    min_progress : float
        An iteration makes progress when the ONH gets at least this much closer to the centre.
    no_progress_patience : int
        Iterations without progress before the removal rate rises.
    consensus_start_offset : float
        Multi-start: one start this far from the mean start point along the consensus direction.
    ring_start_fraction : float
        Multi-start: ring starts at this fraction of R around the centre.
    n_ring_starts : int
        Multi-start: number of ring starts, evenly spaced from 0 deg.
    accept_radius_factor : float
        Multi-start: a result counts only within ``factor * R`` of the centre.
    slsqp_maxiter : int
        SLSQP iteration cap per start (the lab's budget; the 2-D problem usually converges in
        tens of iterations).
    slsqp_ftol : float
        SLSQP objective tolerance.
    parallel_slope_tolerance : float
        Legacy intersection: lines whose slopes differ by less are parallel and skipped.
    angle_reference_point : tuple[float, float]
        Angle correction: fixed ``(col, row)`` point whose direction from the ONH is aligned
        with the sheet's dorsal/nasal position (not tied to ``center_point``, as in the lab).
    """

    filter_by_cell_type: bool = True
    cell_type_filter: str = "rgc"
    track_all_when_unlabelled: bool = True
    fix_bad_lanes: bool = True
    soma_std_threshold: float = 3.0
    soma_temporal_range: tuple[int, int] = (5, 27)
    soma_refine_radius: int = 5
    ais_search_xy_radius: int = 5
    ais_search_t_radius: int = 5
    ais_fraction: float = 0.3
    temporal_window_size: int = 5
    exclude_radius: int = 5
    centroid_threshold: float = 0.05
    min_cluster_size: int = 3
    max_displacement: float = 100.0
    centroid_start_frame: int = 10
    max_displacement_post: float = 5.0
    min_points_for_fit: int = 10
    r2_thresholds: tuple[float, ...] = (0.8, 0.6, 0.4)
    direction_tolerance_deg: float = 30.0
    max_distance_from_center: float = 50.0
    center_point: tuple[float, float] = (32.5, 32.5)
    centroid_exclude_fraction: float = 0.1
    min_centroids_per_cell: int = 3
    min_points_after_exclusion: int = 2
    min_remaining_fraction: float = 0.2
    min_pathways: int = 5
    boundary_tolerance: float = 0.95
    max_iterations: int = 50
    removal_fraction: float = 0.1
    removal_fraction_step: float = 0.1
    max_removal_fraction: float = 0.5
    min_progress: float = 0.5
    no_progress_patience: int = 3
    consensus_start_offset: float = 30.0
    ring_start_fraction: float = 0.8
    n_ring_starts: int = 8
    accept_radius_factor: float = 1.01
    slsqp_maxiter: int = 1000
    slsqp_ftol: float = 1e-10
    parallel_slope_tolerance: float = 1e-10
    angle_reference_point: tuple[float, float] = (33.0, 33.0)
