"""One Units column per unit feature, read from the steps' outputs: NaN (and a status) where a step had no result.

Each ``*_columns`` function returns the columns of one step, or none (and a note) when the output
file lacks that step: a column no unit could fill would say nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..steps import ap_tracking, ap_tracking_outputs as ap, cell_type_labels, dsgc, dsgc_outputs as ds
from ..steps import rf_geometry, soma_geometry
from .source import Source


@dataclass(frozen=True)
class Column:
    """A Units column: name, description (with the unit and frame of the values) and one value per unit."""

    name: str
    description: str
    values: list


def soma_columns(source: Source, units: list[str], pitch_um: float) -> list[Column]:
    """Soma centre (um, in the electrode table's rel_x / rel_y axes) and its status."""
    centres = [soma_geometry.soma_center(source.h5, unit) for unit in units]
    return [
        Column("soma_x_um", "soma centre along eimage axis 2 (electrode col), um, electrode frame (same axes as "
               "the electrodes' rel_x); NaN without a centre", [c.col * pitch_um if c else np.nan for c in centres]),
        Column("soma_y_um", "soma centre along eimage axis 1 (electrode row, downward), um, electrode frame (same "
               "axes as rel_y); NaN without a centre", [c.row * pitch_um if c else np.nan for c in centres]),
        Column("soma_status", "soma_geometry status: ok or no_data",
               [source.text(soma_geometry.STATUS, unit=unit) or "no_data" for unit in units]),
    ]


RF_FIELDS = (("center_x", "centre x (stimulus column)", "checkers of the noise movie"),
             ("center_y", "centre y (stimulus row, downward)", "checkers of the noise movie"),
             ("sigma_x", "sigma along the fit's first axis (includes the 1.5-checker blur)", "checkers"),
             ("sigma_y", "sigma along the fit's second axis (includes the blur)", "checkers"),
             ("theta", "rotation of the sigma_x axis from +column toward -row, the lab's convention", "rad"))


def rf_columns(source: Source, units: list[str], movie: str) -> list[Column]:
    """The lab's rotated Gaussian fit of each unit's dense-noise RF (stimulus frame) and its status."""
    columns = []
    for name, meaning, unit_name in RF_FIELDS:
        out = rf_geometry.STA_GEOMETRY[f"gaussian_fit/{name}"]
        columns.append(Column(f"rf_{name}", f"RF Gaussian {meaning}, {unit_name}, stimulus frame, from the STA of "
                              f"{movie}; NaN when the fit failed", [source.number(out, unit=u, movie=movie)
                                                                    for u in units]))
    status = rf_geometry.STA_GEOMETRY["gaussian_fit/fit_status"]
    columns.append(Column("rf_status", f"RF Gaussian fit status of {movie}: ok or why it failed or was not made",
                          [source.text(status, unit=u, movie=movie) or "no_sta" for u in units]))
    return columns


def label_columns(source: Source, units: list[str]) -> list[Column]:
    labels = cell_type_labels.axon_types(source.h5)
    return [Column("cell_type", "manual cell-type label: rgc, ac, other, unknown or no_label",
                   [labels.get(u, "no_label") for u in units])]


DS_FIELDS = ((ds.DSI_VECTOR, "dsi_vector", "DSI, vector sum of the mean counts over their sum (no unit)"),
             (ds.DSI_CLASSIC, "dsi_classic", "DSI, (pref - null) / (pref + null) of the mean counts (no unit)"),
             (ds.OSI, "osi", "orientation selectivity index (no unit)"),
             (ds.P_VALUE, "ds_p_value", "permutation p-value of dsi_vector (no unit)"),
             (ds.PREFERRED, "preferred_direction_stimulus_deg",
              "preferred direction, degrees, stimulus frame (0 = toward +column, 90 = toward +row, screen down)"),
             (ds.PREFERRED_ELECTRODE, "preferred_direction_electrode_deg",
              "preferred direction, degrees, electrode frame (0 = +col, 90 = +row of the eimage); NaN without a "
              "stimulus registration"),
             (ds.PREFERRED_RETINA, "preferred_direction_retina_deg",
              "preferred direction, degrees, retina frame (0 = nasal, 90 = dorsal); NaN without ONH and Center_xy"))


def dsgc_columns(source: Source, units: list[str], movie: str) -> list[Column]:
    """Direction selectivity under the moving bar, NaN where a unit was skipped."""
    columns = [Column(name, f"{meaning}; moving bar {movie}; NaN when not computed",
                      [source.number(out, unit=u, movie=movie) for u in units]) for out, name, meaning in DS_FIELDS]
    columns.append(Column("dsgc_status", "dsgc status: ok or skipped (and why)",
                          [_status(source.text(ds.STATUS, unit=u, movie=movie), source.text(ds.REASON, unit=u,
                                                                                             movie=movie))
                           for u in units]))
    return columns


def ap_columns(source: Source, units: list[str], pitch_um: float) -> list[Column]:
    """Axon direction and the soma's polar coordinates around the optic-nerve head."""
    unwritten = dict(zip(source.array(ap.UNWRITTEN_UNIT_IDS).astype(str),
                         source.array(ap.UNWRITTEN_STATUS).astype(str))) \
        if source.exists(ap.UNWRITTEN_UNIT_IDS) else {}
    theta_frame = next((source.attribute(ap.THETA, "frame", unit=u) for u in units
                        if source.exists(ap.THETA, unit=u)), "")
    onh = ap_tracking.onh(source.h5)
    return [
        Column("axon_direction_deg", "axon direction from the soma, degrees, electrode frame (0 = +col, 90 = +row "
               "of the eimage); NaN without a pathway", [source.number(ap.DIRECTION, unit=u) for u in units]),
        Column("onh_radius_um", "soma distance from the optic-nerve head, um; NaN without an ONH",
               [source.number(ap.RADIUS, unit=u) * pitch_um for u in units]),
        Column("onh_theta_deg", f"soma angle seen from the optic-nerve head, degrees, {theta_frame or 'retina'} "
               "frame (retina: 0 = nasal, 90 = dorsal; electrode: 0 = +col, 90 = +row); NaN without an ONH",
               [source.number(ap.THETA, unit=u) for u in units]),
        Column("ap_tracking_status", "ap_tracking status: tracked, no_pathway, second_pass, no_eimage or "
               f"not_tracked; ONH {'found (' + onh.method + ')' if onh else 'not found'}",
               [source.text(ap.STATUS, unit=u) or unwritten.get(u, "not_tracked") for u in units]),
    ]


def _status(status: str, reason: str) -> str:
    return f"{status}: {reason}" if reason and status else status or "not_computed"


def feature_columns(source: Source, units: list[str], pitch_um: float, notes: list[str]) -> list[Column]:
    """Every feature column the file's steps allow, with a note for each step it lacks."""
    columns = []
    if source.has("soma_geometry"):
        columns += soma_columns(source, units, pitch_um)
    else:
        notes.append("soma centre: no soma_geometry result; columns left out")
    movies = rf_geometry.rf_movies(source.h5) if source.has("rf_geometry") else []
    if movies:
        columns += rf_columns(source, units, movies[0])
    else:
        notes.append("RF geometry: no rf_geometry result; columns left out")
    if source.has("cell_type_labels"):
        columns += label_columns(source, units)
    else:
        notes.append("cell-type label: no cell_type_labels result; column left out")
    bar = dsgc.bar_movie(source.h5) if source.has("dsgc") else None
    if bar is not None and any(source.exists(ds.DSI_VECTOR, unit=u, movie=bar) for u in units):
        columns += dsgc_columns(source, units, bar)
    else:
        notes.append("direction selectivity: no dsgc result; columns left out")
    if source.has("ap_tracking") and ap_tracking.ran(source.h5):
        columns += ap_columns(source, units, pitch_um)
    else:
        notes.append("axon tracking: no ap_tracking result; columns left out")
    return columns
