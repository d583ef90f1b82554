"""Step 6: soma centre, extent and area of every unit from its electrical image (eimage_sta).

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
from .registry import Step, StepContext, reader

GEOMETRY = "features/eimage_sta/geometry"
BASE = f"units/{{unit}}/{GEOMETRY}"
# The lab's keys, computed as the lab does, except where its code has no guard (PRODUCT.md section 4).
NO_SIGNAL = "an empty or flat eimage gives NaN plus a status, not (0, 0)"


class SomaCenter(NamedTuple):
    """A unit's soma centre in the electrode frame (electrodes, 0-based)."""

    row: float                  # eimage axis 1
    col: float                  # eimage axis 2
    source: str                 # 'subpixel' (trough centre of mass) or 'electrode' (the argmax electrode)


@reader("soma_geometry")
def soma_center(h5, unit: str) -> SomaCenter | None:
    """Soma centre of ``unit``: the sub-electrode centre when finite, else the centre electrode; None if none."""
    base = f"units/{unit}/{GEOMETRY}"
    if f"{base}/center_row" not in h5:
        return None
    for suffix, source in (("_subpixel", "subpixel"), ("", "electrode")):
        row, col = (float(h5[f"{base}/center_{axis}{suffix}"][()]) for axis in ("row", "col"))
        if np.isfinite(row) and np.isfinite(col):
            return SomaCenter(row, col, source)
    return None


def run(ctx: StepContext, p: SomaGeometryParams) -> dict:
    # Imported when the step runs: reading the registry (status, schema) stays fast.
    from ..geometry.soma import SOMA_GEOMETRY_KEYS, soma_geometry

    located = 0
    units = load_recording.unit_ids(ctx)
    for done, unit in enumerate(units):
        ctx.report_progress(done, len(units))
        geometry = soma_geometry(load_recording.eimage(ctx, unit), p)
        base = f"units/{unit}/{GEOMETRY}"
        for key in SOMA_GEOMETRY_KEYS:
            ctx.tx.write(f"{base}/{key}", np.float64(geometry[key]))
        ctx.tx.write(f"{base}/diff_map", np.asarray(geometry["diff_map"], dtype=np.float64))
        ctx.tx.write(f"{base}/status", geometry["status"])
        ctx.tx.write(f"{base}/reason", geometry["reason"])
        if geometry["status"] == "ok":
            located += 1
        else:
            ctx.warn(f"{unit}: no soma geometry: {geometry['reason']}")
    return {"n_units_located": located}


STEP = Step(
    name="soma_geometry", position=6, upstream=("load_recording",), reads=frozenset(),
    params=SomaGeometryParams, version="1", run=run,
    outputs=(
        Out(f"{BASE}/center_row", "f", 0,
            "argmax of the peak-to-peak map along eimage axis 1 (lab 'row' = MCS Column - 1); NaN if no eimage",
            origin=FIXED, fixed_where_nan=True, fixed=NO_SIGNAL, units="electrodes", frame=ELECTRODE),
        Out(f"{BASE}/center_col", "f", 0, "argmax along eimage axis 2 (lab 'col' = MCS Row - 1); NaN if no eimage",
            origin=FIXED, fixed_where_nan=True, fixed=NO_SIGNAL, units="electrodes", frame=ELECTRODE),
        Out(f"{BASE}/size_x", "f", 0, "footprint extent along eimage axis 2 (bounding box of the half-max component)",
            origin=FIXED, fixed_where_nan=True, fixed=NO_SIGNAL, units="electrodes", frame=ELECTRODE),
        Out(f"{BASE}/size_y", "f", 0, "footprint extent along eimage axis 1",
            origin=FIXED, fixed_where_nan=True, fixed=NO_SIGNAL, units="electrodes", frame=ELECTRODE),
        Out(f"{BASE}/area", "f", 0, "footprint area: electrodes of the 4-connected half-max component at the centre",
            origin=FIXED, fixed_where_nan=True, fixed=NO_SIGNAL, units="electrodes^2"),
        Out(f"{BASE}/equivalent_diameter", "f", 0, "2 sqrt(area / pi)",
            origin=FIXED, fixed_where_nan=True, fixed=NO_SIGNAL, units="electrodes"),
        Out(f"{BASE}/center_row_subpixel", "f", 0,
            "trough-depth centre of mass near the centre, eimage axis 1 (sub-electrode)",
            origin=OURS, units="electrodes", frame=ELECTRODE),
        Out(f"{BASE}/center_col_subpixel", "f", 0, "same along eimage axis 2",
            origin=OURS, units="electrodes", frame=ELECTRODE),
        Out(f"{BASE}/diff_map", "f", 2, "(65, 65) max - min over frames 10-14 (unsmoothed; all NaN if no eimage)",
            origin=FIXED, fixed_where_nan=True, fixed=NO_SIGNAL, units="ADC counts (high-passed)", frame=ELECTRODE),
        Out(f"{BASE}/status", "str", 0, "'ok' or 'no_data'", origin=OURS),
        Out(f"{BASE}/reason", "str", 0, "why a unit has no geometry ('' when ok)", origin=OURS),
    ),
    description="Soma centre, extent, area and diff map of each unit from its electrical image",
)
