"""Dense-noise spike-triggered averages in a ``receptive_fields`` processing module, one table per movie."""

from __future__ import annotations

import numpy as np
from hdmf.common import DynamicTable, DynamicTableRegion, VectorData
from pynwb import H5DataIO, NWBFile

from ..steps import dense_noise_sta
from .source import Source


def sta_stack(source: Source, units: list[str], movie: str) -> np.ndarray | None:
    """(units, frames, rows, cols) float32 STAs of ``movie``, NaN for a unit without one; None when no unit has one."""
    stas = [dense_noise_sta.sta(source.h5, unit, movie) for unit in units]
    shape = next((s.shape for s in stas if s is not None), None)
    if shape is None:
        return None
    return np.stack([s.astype(np.float32) if s is not None else np.full(shape, np.nan, np.float32) for s in stas])


def add_receptive_fields(nwbfile: NWBFile, source: Source, units: list[str], notes: list[str]) -> None:
    """A table ``sta_<movie>`` per dense-noise movie: a row per unit (``unit`` points into Units), gzip-compressed."""
    movies = dense_noise_sta.sta_movies(source.h5) if source.has("dense_noise_sta") else []
    if not movies:
        notes.append("receptive fields: no dense_noise_sta result; STAs left out")
        return
    module = nwbfile.create_processing_module("receptive_fields", "dense-noise spike-triggered averages (STA) "
                                              "of every unit, the input of the RF columns of Units")
    for movie in movies:
        stack = sta_stack(source, units, movie)
        if stack is None:
            notes.append(f"receptive fields: no unit has an STA of {movie}")
            continue
        region = DynamicTableRegion(name="unit", data=list(range(len(units))), table=nwbfile.units,
                                    description="row of the unit in the Units table")
        sta = VectorData(name="sta", description=f"STA of {movie}: mean movie frames before each spike's frame, "
                         "(frames_before, rows, cols) per unit, last frame = the one just before the spike, "
                         "movie pixel value (0-255), not mean-subtracted, stimulus frame; NaN without spikes",
                         data=H5DataIO(stack, compression="gzip", chunks=(1,) + stack.shape[1:]))
        module.add(DynamicTable(name=f"sta_{movie}", description=f"spike-triggered averages of {movie}",
                                columns=[region, sta]))
