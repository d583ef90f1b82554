"""Step 1: spike times of every unit and the electrical-image STA (eimage_sta).

The CMTR is read once (IncludePeak == 1 peaks, unit attributes; never the ``Source`` traces) and
the CMCR sensor block once, in one streaming pass for all units (:mod:`mea_pipeline.eimage`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..eimage_params import EimageParams
from ..schema import Out
from .registry import Step, StepContext, reader


@dataclass(frozen=True)
class LoadRecordingParams(EimageParams):
    """The eimage_sta parameters plus the firing-rate bin."""

    firing_rate_bin_s: float = 0.1


def firing_rate(spike_samples: np.ndarray, sampling_rate_hz: float, duration_s: float,
                bin_s: float) -> np.ndarray:
    """Spikes per second in consecutive bins covering the whole recording (same length for all units)."""
    n_bins = max(1, int(np.ceil(duration_s / bin_s)))
    counts, _ = np.histogram(spike_samples / sampling_rate_hz, bins=n_bins, range=(0.0, n_bins * bin_s))
    return (counts / bin_s).astype(np.float32)


@reader("load_recording")
def unit_ids(h5) -> list[str]:
    """Unit IDs (``unit_NNN``) in file order."""
    return list(h5["units"]) if "units" in h5 else []


@reader("load_recording")
def sampling_rate(h5) -> float:
    return float(h5["metadata/acquisition_rate"][()])


@reader("load_recording")
def spike_times(h5, unit: str) -> np.ndarray:
    """Sorted spike sample indices of ``unit`` (int64)."""
    return np.sort(h5[f"units/{unit}/spike_times"][()].astype(np.int64))


@reader("load_recording")
def eimage(h5, unit: str) -> np.ndarray:
    """The unit's electrical image, float32 (50, 65, 65) ``[t, axis 1, axis 2]``; NaN if no spike."""
    return h5[f"units/{unit}/features/eimage_sta/data"][()]


def run(ctx: StepContext, p: LoadRecordingParams) -> dict:
    # Imported when the step runs: reading the registry (status, schema) stays fast.
    from ..eimage import compute_eimage_sta
    from ..mcs_io import CmcrFile, CmtrFile

    rec = ctx.recording
    with CmcrFile(rec.cmcr_path) as cmcr, CmtrFile(rec.cmtr_path) as cmtr:
        rate = cmcr.sampling_rate_hz
        duration_s = cmcr.duration_s
        units = cmtr.units(cmcr.tick_us, cmcr.from_us)
        eimage = compute_eimage_sta(cmcr.sensor, [u.spike_samples for u in units], rate, p)

    tx = ctx.tx
    tx.write("metadata/dataset_id", rec.recording_id)
    tx.write("metadata/acquisition_rate", float(rate))
    tx.write("metadata/sample_interval", 1.0 / rate)
    tx.write("metadata/recording_duration_s", float(duration_s))
    tx.set_attrs("source_files", {"cmcr_path": str(rec.cmcr_path), "cmtr_path": str(rec.cmtr_path)})
    for index, unit in enumerate(units):
        base = f"units/{unit.unit_id}"
        tx.set_attrs(base, {"row": unit.row, "col": unit.column, "global_id": unit.sensor_id,
                            "unit_num": unit.unit_number, "original_name": f"Unit_{unit.unit_number}"})
        tx.write(f"{base}/spike_times", unit.spike_samples.astype(np.uint64))
        tx.write(f"{base}/waveform", unit.waveform.astype(np.float32))
        tx.write(f"{base}/unit_meta/peak_amplitudes", unit.peak_amplitudes.astype(np.float32))
        tx.write(f"{base}/firing_rate_10hz",
                 firing_rate(unit.spike_samples, rate, duration_s, p.firing_rate_bin_s))
        if eimage.n_spikes_used[index] == 0:
            ctx.warn(f"{unit.unit_id}: no spike inside the first {eimage.n_samples_used} sensor samples; "
                     "eimage_sta is NaN")
        tx.write(f"{base}/features/eimage_sta/data", eimage.sta[index],
                 chunks=(1,) + eimage.sta.shape[2:])
        tx.write_tree(f"{base}/features/eimage_sta/metadata", {
            "n_spikes_used": int(eimage.n_spikes_used[index]),
            "n_spikes_excluded": int(eimage.n_spikes_excluded[index]),
            "cutoff_hz": p.cutoff_hz, "filter_order": p.filter_order,
            "pre_samples": -p.window[0], "post_samples": p.window[1],
            "spike_limit": p.spike_limit, "duration_s": p.duration_s,
            "sampling_rate": float(rate), "window_range": np.asarray(p.window, dtype=np.int64),
            "n_samples_used": int(eimage.n_samples_used),
        })
    return {"n_units": len(units), "n_spikes": int(sum(len(u.spike_samples) for u in units)),
            "eimage_samples": int(eimage.n_samples_used)}


STEP = Step(
    name="load_recording", number=1, upstream=(), reads=frozenset({"cmcr", "cmtr"}),
    params=LoadRecordingParams, version="1", run=run,
    outputs=(
        Out("metadata/dataset_id", "str", 0, "recording ID"),
        Out("metadata/acquisition_rate", "f", 0, "sampling rate (Hz) = 1e6 / Tick"),
        Out("metadata/sample_interval", "f", 0, "1 / acquisition_rate (s)"),
        Out("metadata/recording_duration_s", "f", 0, "recording length (s)"),
        Out("source_files@cmcr_path", "str", None, "raw file used"),
        Out("source_files@cmtr_path", "str", None, "spike-sorter file used"),
        Out("units/{unit}@row", "i", None, "Row of the unit's sensor (1-based, MCS)"),
        Out("units/{unit}@col", "i", None, "Column of the unit's sensor (1-based, MCS)"),
        Out("units/{unit}@global_id", "i", None, "SensorID = 65 * (Column - 1) + Row"),
        Out("units/{unit}@unit_num", "i", None, "CMTR UnitID"),
        Out("units/{unit}@original_name", "str", None, "'Unit_<UnitID>'"),
        Out("units/{unit}/spike_times", "u", 1, "spike sample indices (IncludePeak == 1), uint64"),
        Out("units/{unit}/waveform", "f", 1, "mean included cutout (ICA source units)"),
        Out("units/{unit}/unit_meta/peak_amplitudes", "f", 1, "PeakAmplitude of each spike"),
        Out("units/{unit}/firing_rate_10hz", "f", 1, "spikes/s in 100 ms bins over the whole recording"),
        Out("units/{unit}/features/eimage_sta/data", "f", 3,
            "float32 (50, 65, 65) electrical image: mean high-passed sensor signal around the spikes; NaN if no spike"),
        Out("units/{unit}/features/eimage_sta/metadata/{field}", "any", None,
            "n_spikes_used, n_spikes_excluded, cutoff_hz, filter_order, pre_samples, post_samples, "
            "spike_limit, duration_s, sampling_rate, window_range, n_samples_used"),
    ),
    description="Spike times (IncludePeak == 1), firing rate and the electrical-image STA of every unit",
)
