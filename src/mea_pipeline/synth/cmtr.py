"""Write a synthetic ``.cmtr``: Spike Sorter units with Peaks, Unit Info, Source, RoiSTAs, Unmixing.

``/Acquisition`` is an external link to the ``.cmcr`` by file name, as CMOS-MEA-Tools writes it.
``Peaks`` rows are sorted by time and mix the unit's spikes (``IncludePeak = 1``) with its
sub-threshold peaks (``IncludePeak = 0``); cutouts are 20 samples before + 40 from the peak of
the unit's source-space waveform. ``Source`` is short (the sensor window only).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ..mcs_io import sensor_id
from .cells import Cell
from .mcs_layout import UNIT_INFO_DTYPE, number, set_ids, set_root
from .spec import SynthSpec
from .templates import CUTOUT_POST, CUTOUT_PRE, roi_stas, soma_waveform

PEAKS_DTYPE = np.dtype([("Timestamp", "<i8"), ("PeakAmplitude", "<f4"), ("IncludePeak", "<i4")]
                       + [(str(i), "<f4") for i in range(1, CUTOUT_PRE + CUTOUT_POST + 1)])
SOURCE_NOISE = 0.3
EMBEDDING = 8


def _source_waveform(spec: SynthSpec, scale: float) -> np.ndarray:
    t_ms = (np.arange(CUTOUT_PRE + CUTOUT_POST) - CUTOUT_PRE) * 1e3 / spec.sampling_rate_hz
    return scale * soma_waveform(t_ms)


def _peaks(cell: Cell, spec: SynthSpec, scale: float, rng: np.random.Generator) -> np.ndarray:
    samples = np.concatenate([cell.spikes, cell.excluded])
    include = np.r_[np.ones(len(cell.spikes), np.int32), np.zeros(len(cell.excluded), np.int32)]
    gain = np.r_[rng.normal(1.0, 0.1, len(cell.spikes)), rng.uniform(0.2, 0.45, len(cell.excluded))]
    cutouts = gain[:, None] * _source_waveform(spec, scale)[None, :]
    cutouts += rng.normal(0.0, SOURCE_NOISE, cutouts.shape)
    order = np.argsort(samples, kind="stable")
    peaks = np.zeros(len(samples), dtype=PEAKS_DTYPE)
    peaks["Timestamp"] = samples[order] * spec.tick_us
    peaks["IncludePeak"] = include[order]
    peaks["PeakAmplitude"] = cutouts[order, CUTOUT_PRE]
    for i in range(cutouts.shape[1]):
        peaks[str(i + 1)] = cutouts[order, i]
    return peaks


def _source(cell: Cell, spec: SynthSpec, scale: float, n_sensor: int, rng: np.random.Generator) -> np.ndarray:
    source = rng.normal(0.0, SOURCE_NOISE, n_sensor).astype(np.float32)
    wave = _source_waveform(spec, scale).astype(np.float32)
    for spike in cell.spikes[(cell.spikes >= CUTOUT_PRE) & (cell.spikes < n_sensor - CUTOUT_POST)]:
        source[spike - CUTOUT_PRE:spike + CUTOUT_POST] += wave
    return source


def _unit_info(cell: Cell, spec: SynthSpec, rng: np.random.Generator) -> np.ndarray:
    info = np.zeros(1, dtype=UNIT_INFO_DTYPE)
    info[0] = (cell.row, cell.column, sensor_id(cell.row, cell.column), cell.unit_number, cell.unit_number,
               cell.amplitude_adc / spec.noise_adc, rng.uniform(5, 30), rng.uniform(0.5, 1), rng.uniform(0.5, 1),
               rng.uniform(0.05, 0.2), spec.noise_adc, rng.uniform(0, 2), rng.uniform(0, 1),
               rng.uniform(-1, 1), rng.uniform(0, 5), 1, int(rng.integers(20, 200)), b"")
    return info


def write_cmtr(path: Path, recording_id: str, cmcr_name: str, spec: SynthSpec, cells: list[Cell],
               templates: list[np.ndarray], n_sensor: int, duration_us: int,
               rngs: dict[str, np.random.Generator]) -> None:
    ids, rng = rngs["ids"], rngs["sorter"]
    with h5py.File(path, "w") as f:
        set_root(f, recording_id, path.name, "CMOS-MEA-Tools", "2.4.0.0", duration_us, ids)
        f["Acquisition"] = h5py.ExternalLink(cmcr_name, "/Acquisition")
        sorter = f.create_group("Spike Sorter")
        set_ids(sorter, "SpikeSorter", "spike_sorter", "Spike Sorter", ids)
        infos = []
        for cell, template in zip(cells, templates):
            name = f"Unit {cell.unit_number}"
            unit = sorter.create_group(name)
            set_ids(unit, "SingleUnit", "unit", name, ids)
            unit.attrs["UnitID"] = number(cell.unit_number, "<i4")
            unit.attrs["SensorID"] = number(sensor_id(cell.row, cell.column), "<i4")
            unit.attrs["Row"] = number(cell.row, "<i4")
            unit.attrs["Column"] = number(cell.column, "<i4")
            scale = float(rng.uniform(6.0, 12.0))
            info = _unit_info(cell, spec, rng)
            infos.append(info)
            roi = roi_stas(cell, template, spec.sampling_rate_hz)
            datasets = {
                "Peaks": ("Peaks", "peaks", _peaks(cell, spec, scale, rng)),
                "Unit Info": ("UnitInfo", "unit_info", info),
                "Source": ("Source", "source", _source(cell, spec, scale, n_sensor, rng)),
                "RoiSTAs": ("RoiSTAs", "roi_stas", roi),
                "Unmixing": ("Unmixing", "unmixing", rng.normal(0, 1, (len(roi), EMBEDDING)).astype(np.float32)),
            }
            for ds_name, (id_type, key, values) in datasets.items():
                ds = unit.create_dataset(ds_name, data=values)
                set_ids(ds, id_type, key, ds_name, ids)
        units = sorter.create_dataset("Units", data=np.concatenate(infos))
        set_ids(units, "Units", "units", "Units", ids)
