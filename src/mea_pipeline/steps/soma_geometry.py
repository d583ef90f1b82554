"""soma_geometry: soma centre, extent and area of every unit from its electrical image (eimage_sta).

The maths is :func:`mea_pipeline.geometry.soma.soma_geometry` (the lab's MaxMin centre and
half-max footprint, vectorised over electrodes, plus a sub-electrode centre). Axes: ``row`` is
eimage axis 1 and ``col`` eimage axis 2, as the lab names them; in this project's files axis 1
is the MCS Column - 1 and axis 2 the MCS Row - 1 (see :func:`mea_pipeline.mcs_io.sensor_frame_index`).
A unit without a usable eimage gets NaN values and its reason, never (0, 0).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..frames import ELECTRODE
from ..geometry.soma import SomaGeometryParams
from ..schema import FIXED, OURS, Out
from . import load_recording
from .registry import Qc, Step, StepContext, reader

# The lab's keys, computed as the lab does, except where its code has no guard (PRODUCT.md section 4).
NO_SIGNAL = "an empty or flat eimage gives NaN plus a status, not (0, 0)"
BASE = "units/{unit}/features/eimage_sta/geometry"
CENTER_ROW = Out(f"{BASE}/center_row", "f", 0,
                 "argmax of the peak-to-peak map along eimage axis 1 (lab 'row' = MCS Column - 1); NaN if no eimage",
                 origin=FIXED, fixed_where_nan=True, fixed=NO_SIGNAL, units="electrodes", frame=ELECTRODE)
CENTER_COL = Out(f"{BASE}/center_col", "f", 0, "argmax along eimage axis 2 (lab 'col' = MCS Row - 1); NaN if no eimage",
                 origin=FIXED, fixed_where_nan=True, fixed=NO_SIGNAL, units="electrodes", frame=ELECTRODE)
SIZE_X = Out(f"{BASE}/size_x", "f", 0, "footprint extent along eimage axis 2 (bounding box of the half-max component)",
             origin=FIXED, fixed_where_nan=True, fixed=NO_SIGNAL, units="electrodes", frame=ELECTRODE)
SIZE_Y = Out(f"{BASE}/size_y", "f", 0, "footprint extent along eimage axis 1",
             origin=FIXED, fixed_where_nan=True, fixed=NO_SIGNAL, units="electrodes", frame=ELECTRODE)
AREA = Out(f"{BASE}/area", "f", 0, "footprint area: electrodes of the 4-connected half-max component at the centre",
           origin=FIXED, fixed_where_nan=True, fixed=NO_SIGNAL, units="electrodes^2")
EQUIVALENT_DIAMETER = Out(f"{BASE}/equivalent_diameter", "f", 0, "2 sqrt(area / pi)",
                          origin=FIXED, fixed_where_nan=True, fixed=NO_SIGNAL, units="electrodes")
CENTER_ROW_SUBPIXEL = Out(f"{BASE}/center_row_subpixel", "f", 0,
                          "trough-depth centre of mass near the centre, eimage axis 1 (sub-electrode)",
                          origin=OURS, units="electrodes", frame=ELECTRODE)
CENTER_COL_SUBPIXEL = Out(f"{BASE}/center_col_subpixel", "f", 0, "same along eimage axis 2",
                          origin=OURS, units="electrodes", frame=ELECTRODE)
DIFF_MAP = Out(f"{BASE}/diff_map", "f", 2, "(65, 65) max - min over frames 10-14 (unsmoothed; all NaN if no eimage)",
               origin=FIXED, fixed_where_nan=True, fixed=NO_SIGNAL, units="ADC counts (high-passed)", frame=ELECTRODE)
STATUS = Out(f"{BASE}/status", "str", 0, "'ok' or 'no_data'", origin=OURS)
REASON = Out(f"{BASE}/reason", "str", 0, "why a unit has no geometry ('' when ok)", origin=OURS)
# Every output is one key of soma_geometry()'s result, written for every unit.
OUTPUTS = (CENTER_ROW, CENTER_COL, SIZE_X, SIZE_Y, AREA, EQUIVALENT_DIAMETER, CENTER_ROW_SUBPIXEL, CENTER_COL_SUBPIXEL,
           DIFF_MAP, STATUS, REASON)


class SomaCenter(NamedTuple):
    """A unit's soma centre in the electrode frame (electrodes, 0-based)."""

    row: float                  # eimage axis 1
    col: float                  # eimage axis 2
    source: str                 # 'subpixel' (trough centre of mass) or 'electrode' (the argmax electrode)


@reader("soma_geometry")
def soma_center(h5, unit: str) -> SomaCenter | None:
    """Soma centre of ``unit``: the sub-electrode centre when finite, else the centre electrode; None if none."""
    if CENTER_ROW.at(unit=unit) not in h5:
        return None
    for row_out, col_out, source in ((CENTER_ROW_SUBPIXEL, CENTER_COL_SUBPIXEL, "subpixel"),
                                     (CENTER_ROW, CENTER_COL, "electrode")):
        row, col = (float(h5[out.at(unit=unit)][()]) for out in (row_out, col_out))
        if np.isfinite(row) and np.isfinite(col):
            return SomaCenter(row, col, source)
    return None


def run(ctx: StepContext, p: SomaGeometryParams) -> dict:
    # Imported when the step runs: reading the registry (status, schema) stays fast.
    from ..geometry.soma import soma_geometry

    located = 0
    units = load_recording.unit_ids(ctx)
    for done, unit in enumerate(units):
        ctx.report_progress(done, len(units))
        geometry = soma_geometry(load_recording.eimage(ctx, unit), p)
        for out in OUTPUTS:
            value = geometry[out.key()]
            ctx.tx.write(out.at(unit=unit), value if out.dtype == "str" else np.asarray(value, dtype=np.float64))
        if geometry["status"] == "ok":
            located += 1
        else:
            ctx.warn(f"{unit}: no soma geometry: {geometry['reason']}")
    return {"n_units_located": located}


def eimage_figure(h5):
    """Trough depth of the strongest units' eimages, soma centre (+) and half-max footprint."""
    from matplotlib.colors import PowerNorm

    from ..qc.figures import MAX_PANELS, colour_scale, grid

    depth = {}
    for unit in load_recording.unit_ids(h5):
        if CENTER_ROW.at(unit=unit) not in h5:
            continue
        eimage = load_recording.eimage(h5, unit)
        if np.isfinite(eimage).any():
            trough = -np.nanmin(eimage - np.nanmean(eimage[:5], axis=0), axis=0)
            # Troughs within 3 robust SDs of the median are noise: shown flat, which also keeps the PNG small.
            floor = np.nanmedian(trough) + 3 * 1.4826 * np.nanmedian(np.abs(trough - np.nanmedian(trough)))
            depth[unit] = np.clip(trough - floor, 0, None)
    if not depth:
        return None
    shown = sorted(depth, key=lambda u: -np.nanmax(depth[u]))[:MAX_PANELS]
    fig, axes = grid(len(shown), "eimage trough depth below the noise floor (ADC counts, square-root colour scale; "
                                 "axis 1 down, axis 2 right), soma + and half-max footprint")
    for ax, unit in zip(axes, sorted(shown)):
        # White where nothing is, and a square-root scale, so the faint axon trail shows beside the soma.
        image = ax.imshow(depth[unit], cmap="magma_r", norm=PowerNorm(0.5, vmin=0, vmax=max(np.nanmax(depth[unit]), 1)),
                          origin="upper")
        colour_scale(fig, image, ax)
        diff = h5[DIFF_MAP.at(unit=unit)][()]
        if np.isfinite(diff).any() and np.nanmax(diff) > 0:
            ax.contour(diff, levels=[0.5 * np.nanmax(diff)], colors="tab:cyan", linewidths=0.8)
        ax.plot(h5[CENTER_COL.at(unit=unit)][()], h5[CENTER_ROW.at(unit=unit)][()], "+", color="tab:cyan", ms=9,
                mew=1.5)
        ax.set_title(unit, fontsize=8)
    return fig


STEP = Step(
    name="soma_geometry", position=6, upstream=("load_recording",), reads=frozenset(),
    params=SomaGeometryParams, version="1", run=run,
    outputs=OUTPUTS,
    description="Soma centre, extent, area and diff map of each unit from its electrical image",
    qc=Qc(topic="eimage_soma", figure=eimage_figure),
)
