"""load_recording: spike times of every unit and the electrical-image STA (eimage_sta).

The CMTR is read once (IncludePeak == 1 peaks, unit attributes; never the ``Source`` traces) and
the CMCR sensor block once, in one streaming pass for all units (:mod:`mea_pipeline.eimage`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..eimage import EimageParams
from ..frames import ELECTRODE
from ..schema import FIXED, LAB, OURS, Out, outs
from .registry import Qc, Step, StepContext, reader


@dataclass(frozen=True)
class LoadRecordingParams(EimageParams):
    """The eimage_sta parameters plus the firing-rate bin.

    Attributes
    ----------
    firing_rate_bin_s : float
        Bin width (s) of ``firing_rate_10hz``; the key's name assumes the lab's 0.1.
    """

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


INCLUDE_PEAK_FIX = ("spikes with IncludePeak == 1 only: the lab averages the first 10 000 raw Peaks rows, "
                    "sub-threshold peaks included")

# The outputs, each declared once: the writer, the readers and QC name paths through these.
DATASET_ID = Out("metadata/dataset_id", "str", 0, "recording ID", origin=LAB)
ACQUISITION_RATE = Out("metadata/acquisition_rate", "f", 0, "sampling rate = 1e6 / Tick (the lab estimates it "
                       "from the analog length and LB.RecordingDuration: the same value on MCS files)", origin=LAB,
                       units="Hz")
SAMPLE_INTERVAL = Out("metadata/sample_interval", "f", 0, "1 / acquisition_rate", origin=LAB, units="s")
RECORDING_DURATION = Out("metadata/recording_duration_s", "f", 0, "recording length (LB.RecordingDuration)",
                         origin=OURS, units="s")
CMCR_PATH = Out("source_files@cmcr_path", "str", None, "raw file used", origin=LAB)
CMTR_PATH = Out("source_files@cmtr_path", "str", None, "spike-sorter file used", origin=LAB)
UNIT_ROW = Out("units/{unit}@row", "i", None, "Row of the unit's sensor (Unit Info)", origin=LAB,
               units="electrode (1-based)", frame=ELECTRODE)
UNIT_COL = Out("units/{unit}@col", "i", None, "Column of the unit's sensor (Unit Info)", origin=LAB,
               units="electrode (1-based)", frame=ELECTRODE)
UNIT_GLOBAL_ID = Out("units/{unit}@global_id", "i", None, "SensorID = 65 * (Column - 1) + Row", origin=LAB,
                     units="sensor number (1-based)", frame=ELECTRODE)
UNIT_NUM = Out("units/{unit}@unit_num", "i", None, "CMTR UnitID", origin=LAB)
UNIT_ORIGINAL_NAME = Out("units/{unit}@original_name", "str", None, "'Unit_<UnitID>'", origin=LAB)
SPIKE_TIMES = Out("units/{unit}/spike_times", "u", 1, "spike sample indices (IncludePeak == 1 peaks), uint64",
                  origin=LAB, units="samples")
WAVEFORM = Out("units/{unit}/waveform", "f", 1, "mean included cutout", origin=LAB,
               units="ICA source units (no physical unit)")
PEAK_AMPLITUDES = Out("units/{unit}/unit_meta/peak_amplitudes", "f", 1, "PeakAmplitude of each spike (absent "
                      "without spikes)", required=False, origin=LAB, units="ICA source units (no physical unit)")
FIRING_RATE = Out("units/{unit}/firing_rate_10hz", "f", 1,
                  "spikes per second in 100 ms bins from time 0 to 1 s past the unit's last spike (so the length "
                  "differs between units; absent without spikes)", required=False, origin=LAB, units="Hz")
EIMAGE = Out("units/{unit}/features/eimage_sta/data", "f", 3,
             "(50, 65, 65) electrical image [t, axis 1, axis 2]: mean 100 Hz high-passed sensor signal around "
             "the spikes (spike at t = 10); float32 where the lab stores float64; NaN if no spike",
             origin=FIXED, fixed=INCLUDE_PEAK_FIX, units="ADC counts", frame=ELECTRODE)
_EIMAGE_META = "units/{unit}/features/eimage_sta/metadata"
EIMAGE_N_SPIKES_USED = Out(f"{_EIMAGE_META}/n_spikes_used", "i", 0, "spikes averaged", origin=FIXED,
                           fixed=INCLUDE_PEAK_FIX, units="spikes")
EIMAGE_N_SPIKES_EXCLUDED = Out(f"{_EIMAGE_META}/n_spikes_excluded", "i", 0,
                               "spikes selected (the first spike_limit in the first duration_s) whose window spills "
                               "over an end", origin=FIXED, fixed=INCLUDE_PEAK_FIX, units="spikes")
EIMAGE_CUTOFF_HZ = Out(f"{_EIMAGE_META}/cutoff_hz", "f", 0, "high-pass cutoff", origin=LAB, units="Hz")
EIMAGE_FILTER_ORDER = Out(f"{_EIMAGE_META}/filter_order", "i", 0, "Butterworth order (zero-phase)", origin=LAB)
EIMAGE_PRE_SAMPLES, EIMAGE_POST_SAMPLES = outs(_EIMAGE_META, ("pre_samples", "post_samples"), "i", 0,
                                               "window samples {name}", origin=LAB, units="samples")
EIMAGE_SPIKE_LIMIT = Out(f"{_EIMAGE_META}/spike_limit", "i", 0, "spikes selected at most", origin=LAB,
                         units="spikes")
EIMAGE_DURATION_S = Out(f"{_EIMAGE_META}/duration_s", "f", 0, "sensor data used from the start", origin=LAB,
                        units="s")
EIMAGE_SKIP_HIGHPASS = Out(f"{_EIMAGE_META}/skip_highpass", "b", 0, "False: always high-passed", origin=LAB)
EIMAGE_SAMPLING_RATE = Out(f"{_EIMAGE_META}/sampling_rate", "f", 0, "sampling rate", origin=LAB, units="Hz")
EIMAGE_WINDOW_RANGE = Out(f"{_EIMAGE_META}/window_range", "i", 1, "[-pre_samples, post_samples]", origin=LAB,
                          units="samples")
EIMAGE_N_SAMPLES_USED = Out(f"{_EIMAGE_META}/n_samples_used", "i", 0,
                            "sensor samples read: min(duration_s * rate, recording)", origin=OURS, units="samples")
# Every unit's group sits under this one (``units/{unit}/...``).
UNITS_GROUP = SPIKE_TIMES.path.partition("/")[0]


@reader("load_recording")
def unit_ids(h5) -> list[str]:
    """Unit IDs (``unit_NNN``) in file order."""
    return list(h5[UNITS_GROUP]) if UNITS_GROUP in h5 else []


@reader("load_recording")
def sampling_rate(h5) -> float:
    return float(h5[ACQUISITION_RATE.at()][()])


@reader("load_recording")
def spike_times(h5, unit: str) -> np.ndarray:
    """Sorted spike sample indices of ``unit`` (int64)."""
    return np.sort(h5[SPIKE_TIMES.at(unit=unit)][()].astype(np.int64))


@reader("load_recording")
def spike_count(h5, unit: str) -> int:
    """Number of spikes of ``unit`` (without reading them)."""
    return h5[SPIKE_TIMES.at(unit=unit)].shape[0]


@reader("load_recording")
def eimage(h5, unit: str) -> np.ndarray:
    """The unit's electrical image, float32 (50, 65, 65) ``[t, axis 1, axis 2]``; NaN if no spike."""
    return h5[EIMAGE.at(unit=unit)][()]


def qc_numbers(h5) -> dict:
    """The QC report's key numbers: how many units, and their spikes in all."""
    units = unit_ids(h5)
    return {"units": len(units),
            "spikes": int(sum(spike_count(h5, u) for u in units if SPIKE_TIMES.at(unit=u) in h5))}


def _write_attrs(tx, values: dict) -> None:
    """Set attributes given as {concrete ``group@attr`` path: value}, one call per group."""
    groups: dict[str, dict] = {}
    for path, value in values.items():
        group, _, attr = path.partition("@")
        groups.setdefault(group, {})[attr] = value
    for group, attrs in groups.items():
        tx.set_attrs(group, attrs)


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
    tx.write(DATASET_ID.at(), rec.recording_id)
    tx.write(ACQUISITION_RATE.at(), float(rate))
    tx.write(SAMPLE_INTERVAL.at(), 1.0 / rate)
    tx.write(RECORDING_DURATION.at(), float(duration_s))
    _write_attrs(tx, {CMCR_PATH.at(): str(rec.cmcr_path), CMTR_PATH.at(): str(rec.cmtr_path)})
    for index, unit in enumerate(units):
        u = unit.unit_id
        _write_attrs(tx, {UNIT_ROW.at(unit=u): unit.row, UNIT_COL.at(unit=u): unit.column,
                          UNIT_GLOBAL_ID.at(unit=u): unit.sensor_id, UNIT_NUM.at(unit=u): unit.unit_number,
                          UNIT_ORIGINAL_NAME.at(unit=u): f"Unit_{unit.unit_number}"})
        tx.write(SPIKE_TIMES.at(unit=u), unit.spike_samples.astype(np.uint64))
        tx.write(WAVEFORM.at(unit=u), unit.waveform.astype(np.float32))
        if len(unit.spike_samples):  # the lab writes neither for a unit without spikes
            tx.write(PEAK_AMPLITUDES.at(unit=u), unit.peak_amplitudes.astype(np.float32))
            tx.write(FIRING_RATE.at(unit=u), firing_rate(unit.spike_samples, tick_us, p.firing_rate_bin_s))
        if eimage.n_spikes_used[index] == 0:
            ctx.warn(f"{u}: no spike inside the first {eimage.n_samples_used} sensor samples; "
                     "eimage_sta is NaN")
        tx.write(EIMAGE.at(unit=u), eimage.sta[index], chunks=(1,) + eimage.sta.shape[2:])
        metadata = {
            EIMAGE_N_SPIKES_USED: int(eimage.n_spikes_used[index]),
            EIMAGE_N_SPIKES_EXCLUDED: int(eimage.n_spikes_excluded[index]),
            EIMAGE_CUTOFF_HZ: float(p.cutoff_hz), EIMAGE_FILTER_ORDER: int(p.filter_order),
            EIMAGE_PRE_SAMPLES: int(-p.window[0]), EIMAGE_POST_SAMPLES: int(p.window[1]),
            EIMAGE_SPIKE_LIMIT: int(p.spike_limit), EIMAGE_DURATION_S: float(p.duration_s),
            EIMAGE_SKIP_HIGHPASS: False,  # the lab's alternative (mean removal) does not exist here
            EIMAGE_SAMPLING_RATE: float(rate), EIMAGE_WINDOW_RANGE: np.asarray(p.window, dtype=np.int64),
            EIMAGE_N_SAMPLES_USED: int(eimage.n_samples_used),
        }
        for out, value in metadata.items():
            tx.write(out.at(unit=u), value)
    return {"n_units": len(units), "n_spikes": int(sum(len(u.spike_samples) for u in units)),
            "eimage_samples": int(eimage.n_samples_used)}


STEP = Step(
    name="load_recording", position=1, upstream=(), reads=frozenset({"cmcr", "cmtr"}),
    params=LoadRecordingParams, version="2", run=run,
    outputs=(
        DATASET_ID, ACQUISITION_RATE, SAMPLE_INTERVAL, RECORDING_DURATION, CMCR_PATH, CMTR_PATH,
        UNIT_ROW, UNIT_COL, UNIT_GLOBAL_ID, UNIT_NUM, UNIT_ORIGINAL_NAME, SPIKE_TIMES, WAVEFORM,
        PEAK_AMPLITUDES, FIRING_RATE, EIMAGE, EIMAGE_N_SPIKES_USED, EIMAGE_N_SPIKES_EXCLUDED, EIMAGE_CUTOFF_HZ,
        EIMAGE_FILTER_ORDER, EIMAGE_PRE_SAMPLES, EIMAGE_POST_SAMPLES, EIMAGE_SPIKE_LIMIT, EIMAGE_DURATION_S,
        EIMAGE_SKIP_HIGHPASS, EIMAGE_SAMPLING_RATE, EIMAGE_WINDOW_RANGE, EIMAGE_N_SAMPLES_USED,
    ),
    description="Spike times (IncludePeak == 1), firing rate and the electrical-image STA of every unit",
    qc=Qc(numbers=qc_numbers),
)
