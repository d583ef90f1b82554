"""Step 1: spike times of every unit and the electrical-image STA (eimage_sta).

The CMTR is read once (IncludePeak == 1 peaks, unit attributes; never the ``Source`` traces) and
the CMCR sensor block once, in one streaming pass for all units (:mod:`mea_pipeline.eimage`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..eimage import EimageParams
from ..frames import ELECTRODE
from ..schema import FIXED, LAB, OURS, Out, outs
from .registry import Step, StepContext, reader


@dataclass(frozen=True)
class LoadRecordingParams(EimageParams):
    """The eimage_sta parameters plus the firing-rate bin."""

    firing_rate_bin_s: float = 0.1


# The lab's firing rate runs from time 0 to this long after the unit's last spike (so its length
# differs between units): part of the meaning of the lab's key, not a choice.
FIRING_RATE_TAIL_US = 1_000_000


def firing_rate(spike_samples: np.ndarray, tick_us: int, bin_s: float) -> np.ndarray:
    """The lab's ``firing_rate_10hz``: spikes per second in bins of ``bin_s`` from time 0.

    Bins are right-open, ``[k * bin_s, (k + 1) * bin_s)``, computed in integer microseconds
    (``sample * tick_us``), and cover 0 to 1 s past the last spike, as the lab's
    ``compute_firing_rate`` does on the spike timestamps. Returns float32.
    """
    bin_us = int(round(bin_s * 1e6))
    times_us = np.asarray(spike_samples, dtype=np.int64) * int(tick_us)
    n_bins = -(-(int(times_us.max()) + FIRING_RATE_TAIL_US) // bin_us)
    counts = np.bincount(times_us // bin_us, minlength=n_bins)
    return counts.astype(np.float32) * np.float32(1e6 / bin_us)


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
    from ..eimage.sta import compute_eimage_sta
    from ..mcs_io import CmcrFile, CmtrFile

    rec = ctx.recording
    with CmcrFile(rec.cmcr_path) as cmcr, CmtrFile(rec.cmtr_path) as cmtr:
        rate, tick_us = cmcr.sampling_rate_hz, cmcr.tick_us
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
        if len(unit.spike_samples):  # the lab writes neither for a unit without spikes
            tx.write(f"{base}/unit_meta/peak_amplitudes", unit.peak_amplitudes.astype(np.float32))
            tx.write(f"{base}/firing_rate_10hz", firing_rate(unit.spike_samples, tick_us, p.firing_rate_bin_s))
        if eimage.n_spikes_used[index] == 0:
            ctx.warn(f"{unit.unit_id}: no spike inside the first {eimage.n_samples_used} sensor samples; "
                     "eimage_sta is NaN")
        tx.write(f"{base}/features/eimage_sta/data", eimage.sta[index],
                 chunks=(1,) + eimage.sta.shape[2:])
        tx.write_tree(f"{base}/features/eimage_sta/metadata", {
            "n_spikes_used": int(eimage.n_spikes_used[index]),
            "n_spikes_excluded": int(eimage.n_spikes_excluded[index]),
            "cutoff_hz": float(p.cutoff_hz), "filter_order": int(p.filter_order),
            "pre_samples": int(-p.window[0]), "post_samples": int(p.window[1]),
            "spike_limit": int(p.spike_limit), "duration_s": float(p.duration_s),
            "skip_highpass": False,  # the lab's alternative (mean removal) does not exist here
            "sampling_rate": float(rate), "window_range": np.asarray(p.window, dtype=np.int64),
            "n_samples_used": int(eimage.n_samples_used),
        })
    return {"n_units": len(units), "n_spikes": int(sum(len(u.spike_samples) for u in units)),
            "eimage_samples": int(eimage.n_samples_used)}


INCLUDE_PEAK_FIX = ("spikes with IncludePeak == 1 only: the lab averages the first 10 000 raw Peaks rows, "
                    "sub-threshold peaks included")

STEP = Step(
    name="load_recording", position=1, upstream=(), reads=frozenset({"cmcr", "cmtr"}),
    params=LoadRecordingParams, version="2", run=run,
    outputs=(
        Out("metadata/dataset_id", "str", 0, "recording ID", origin=LAB),
        Out("metadata/acquisition_rate", "f", 0, "sampling rate = 1e6 / Tick (the lab estimates it from the "
            "analog length and LB.RecordingDuration: the same value on MCS files)", origin=LAB, units="Hz"),
        Out("metadata/sample_interval", "f", 0, "1 / acquisition_rate", origin=LAB, units="s"),
        Out("metadata/recording_duration_s", "f", 0, "recording length (LB.RecordingDuration)", origin=OURS,
            units="s"),
        Out("source_files@cmcr_path", "str", None, "raw file used", origin=LAB),
        Out("source_files@cmtr_path", "str", None, "spike-sorter file used", origin=LAB),
        Out("units/{unit}@row", "i", None, "Row of the unit's sensor (Unit Info)", origin=LAB,
            units="electrode (1-based)", frame=ELECTRODE),
        Out("units/{unit}@col", "i", None, "Column of the unit's sensor (Unit Info)", origin=LAB,
            units="electrode (1-based)", frame=ELECTRODE),
        Out("units/{unit}@global_id", "i", None, "SensorID = 65 * (Column - 1) + Row", origin=LAB,
            units="sensor number (1-based)", frame=ELECTRODE),
        Out("units/{unit}@unit_num", "i", None, "CMTR UnitID", origin=LAB),
        Out("units/{unit}@original_name", "str", None, "'Unit_<UnitID>'", origin=LAB),
        Out("units/{unit}/spike_times", "u", 1, "spike sample indices (IncludePeak == 1 peaks), uint64",
            origin=LAB, units="samples"),
        Out("units/{unit}/waveform", "f", 1, "mean included cutout", origin=LAB,
            units="ICA source units (no physical unit)"),
        Out("units/{unit}/unit_meta/peak_amplitudes", "f", 1, "PeakAmplitude of each spike (absent without "
            "spikes)", required=False, origin=LAB, units="ICA source units (no physical unit)"),
        Out("units/{unit}/firing_rate_10hz", "f", 1,
            "spikes per second in 100 ms bins from time 0 to 1 s past the unit's last spike (so the length "
            "differs between units; absent without spikes)", required=False, origin=LAB, units="Hz"),
        Out("units/{unit}/features/eimage_sta/data", "f", 3,
            "(50, 65, 65) electrical image [t, axis 1, axis 2]: mean 100 Hz high-passed sensor signal around "
            "the spikes (spike at t = 10); float32 where the lab stores float64; NaN if no spike",
            origin=FIXED, fixed=INCLUDE_PEAK_FIX, units="ADC counts", frame=ELECTRODE),
        Out("units/{unit}/features/eimage_sta/metadata/n_spikes_used", "i", 0, "spikes averaged",
            origin=FIXED, fixed=INCLUDE_PEAK_FIX, units="spikes"),
        Out("units/{unit}/features/eimage_sta/metadata/n_spikes_excluded", "i", 0,
            "spikes selected (the first spike_limit in the first duration_s) whose window spills over an end",
            origin=FIXED, fixed=INCLUDE_PEAK_FIX, units="spikes"),
        Out("units/{unit}/features/eimage_sta/metadata/cutoff_hz", "f", 0, "high-pass cutoff", origin=LAB,
            units="Hz"),
        Out("units/{unit}/features/eimage_sta/metadata/filter_order", "i", 0, "Butterworth order (zero-phase)",
            origin=LAB),
        *outs("units/{unit}/features/eimage_sta/metadata", ("pre_samples", "post_samples"), "i", 0,
              "window samples {name}", origin=LAB, units="samples"),
        Out("units/{unit}/features/eimage_sta/metadata/spike_limit", "i", 0, "spikes selected at most",
            origin=LAB, units="spikes"),
        Out("units/{unit}/features/eimage_sta/metadata/duration_s", "f", 0, "sensor data used from the start",
            origin=LAB, units="s"),
        Out("units/{unit}/features/eimage_sta/metadata/skip_highpass", "b", 0, "False: always high-passed",
            origin=LAB),
        Out("units/{unit}/features/eimage_sta/metadata/sampling_rate", "f", 0, "sampling rate", origin=LAB,
            units="Hz"),
        Out("units/{unit}/features/eimage_sta/metadata/window_range", "i", 1, "[-pre_samples, post_samples]",
            origin=LAB, units="samples"),
        Out("units/{unit}/features/eimage_sta/metadata/n_samples_used", "i", 0,
            "sensor samples read: min(duration_s * rate, recording)", origin=OURS, units="samples"),
    ),
    description="Spike times (IncludePeak == 1), firing rate and the electrical-image STA of every unit",
)
