"""The Units table: spike times in seconds, the electrical image as ``waveform_mean``, unit features."""

from __future__ import annotations

import numpy as np
from hdmf.common import VectorData, VectorIndex
from hdmf.data_utils import DataChunkIterator
from pynwb import H5DataIO, NWBFile
from pynwb.misc import Units

from ..mcs_io import GRID
from ..steps import load_recording
from .features import feature_columns
from .source import Source

EIMAGE_UNIT = "ADC counts (100 Hz high-passed sensor signal)"
# Electrical images are mostly sensor noise: measured on a 400-unit recording, gzip level 4 keeps
# 93 % of the bytes at 12 s, byte shuffle + gzip level 1 keeps 86 % at 8 s (both standard HDF5
# filters, read by every HDF5 reader).
EIMAGE_COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": True}


def spike_seconds(source: Source, unit: str, rate: float) -> np.ndarray:
    """Spike times of ``unit`` in seconds: sample index / sampling rate (float64)."""
    return load_recording.spike_times(source.h5, unit) / rate


def trough_time(eimage: np.ndarray, spike_sample: int, rate: float) -> float:
    """Time (s) of the electrical image's deepest trough relative to the spike; NaN for an empty image."""
    per_sample = np.min(eimage.reshape(len(eimage), -1), axis=1)
    if not np.isfinite(per_sample).any():
        return float("nan")
    return (int(np.nanargmin(per_sample)) - spike_sample) / rate


def add_units(nwbfile: NWBFile, source: Source, rate: float, pitch_um: float, notes: list[str]) -> list[str]:
    """Fill ``nwbfile.units``; returns the unit IDs (``unit_NNN``) in table order.

    The table is built from whole columns (arrays, not one row at a time: row by row, hdmf checks
    each of a lab recording's ~2 million spike times on its own when writing). ``waveform_mean``
    is each unit's electrical image flattened to (samples, 4225 electrodes) in the electrode
    table's order, gzip-compressed, one chunk per unit, streamed from the output file while the
    NWB file is written (the output file must stay open until then).
    """
    units = load_recording.unit_ids(source.h5)
    spike_sample = int(source.number(load_recording.EIMAGE_PRE_SAMPLES, unit=units[0])) if units else 0
    spikes = [spike_seconds(source, unit, rate) for unit in units]
    troughs, shape = [], None
    for unit in units:
        eimage = load_recording.eimage(source.h5, unit)
        troughs.append(trough_time(eimage, spike_sample, rate))
        shape = eimage.shape
    spike_times = VectorData(name="spike_times", description="spike times of each unit in seconds (spike sample / "
                             "sampling rate)", data=np.concatenate(spikes) if spikes else np.zeros(0))
    columns = [
        spike_times,
        VectorIndex(name="spike_times_index", data=np.cumsum([len(s) for s in spikes], dtype=np.int64),
                    target=spike_times),
        VectorData(name="unit_name", description="the unit's name in the output file (unit_NNN, CMTR unit number)",
                   data=units),
        VectorData(name="eimage_trough_time_s", description="time (s) of the electrical image's deepest trough "
                   "relative to the spike; NaN for an empty image", data=np.asarray(troughs, dtype=np.float64)),
        *(VectorData(name=column.name, description=column.description, data=_column_data(column.values))
          for column in feature_columns(source, units, pitch_um, notes)),
    ]
    table = Units(name="units", description="Spike-sorted units (CMTR, IncludePeak == 1 spikes) and their features "
                  "from mea-pipeline", id=np.arange(len(units)), columns=columns, resolution=1.0 / rate,
                  waveform_rate=rate, waveform_unit=EIMAGE_UNIT)
    nwbfile.units = table
    if units:
        table.add_column("waveform_mean", f"electrical image: mean sensor signal around the spikes (spike at sample "
                         f"{spike_sample}), units x samples x electrodes (electrode table order), {EIMAGE_UNIT}; "
                         "NaN for a unit without spikes",
                         data=H5DataIO(eimage_stream(source, units, shape), chunks=(1, shape[0], GRID * GRID),
                                       **EIMAGE_COMPRESSION))
    return units


def _column_data(values: list):
    """A feature column's values as an array when they are numbers (text stays a list)."""
    return values if any(isinstance(value, str) for value in values) else np.asarray(values)


def eimage_stream(source: Source, units: list[str], shape: tuple) -> DataChunkIterator:
    """The units' electrical images as (samples, electrodes) float32, read one unit at a time while the file
    is written: 400 units hold 340 MB, which need not sit in memory at once."""
    images = (load_recording.eimage(source.h5, unit).astype(np.float32).reshape(shape[0], GRID * GRID)
              for unit in units)
    return DataChunkIterator(data=images, maxshape=(len(units), shape[0], GRID * GRID), dtype=np.dtype(np.float32),
                             buffer_size=1)
