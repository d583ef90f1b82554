"""Ground truth of a synthetic recording: ``<recording_id>.truth.json`` plus ``.truth.npz`` arrays.

The JSON holds the scalars, the playlist timing in frames and samples, the stimulus -> electrode
transform (``stimulus_transform``) and every unit's parameters (``preferred_direction_deg`` in the
stimulus frame, ``preferred_direction_electrode_deg`` in the electrode frame); the npz holds the
long arrays (frame onsets, each frame's mean screen level, each unit's spike and excluded-peak
samples). :func:`load_truth` merges both into one dict.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from ..mcs_io import SENSOR_AXES, sensor_id, unit_id
from . import stimulus_frame
from .cells import BAR_BURST, KAPPA, PITCH_UM, Cell, rf_center_px, tuning_radius_px
from .render import GRID
from .spec import SynthSpec
from .timeline import STARTUP_PULSES, Timeline

FORMAT = "mea-pipeline synthetic truth v1"
DIRECTION_TUNING = (f"in the display frames in which the moving bar's band comes within tuning_radius_px of "
                    "rf_center_px (stimulus pixels, row and column of the projector image), a tuned unit's rate "
                    f"is (rate + {BAR_BURST} * base_rate_hz) * exp({KAPPA} * (cos(direction - "
                    "preferred_direction_deg) - 1)); elsewhere it fires as an untuned unit")
ONSET_CONVENTION = "first sample at which the frame-sync pulse is high"


def _unit_truth(cell: Cell) -> dict:
    axon = None
    if cell.axon_path is not None:
        axon = {"velocity_m_s": cell.axon_velocity_m_s, "amplitude_adc": cell.axon_amplitude_adc,
                "path": np.round(cell.axon_path, 3).tolist()}
    return {
        "unit_number": cell.unit_number, "unit_id": unit_id(cell.unit_number), "row": cell.row,
        "column": cell.column, "sensor_id": sensor_id(cell.row, cell.column), "soma": [cell.row, cell.column],
        "is_rgc": cell.is_rgc, "silent": cell.silent, "amplitude_adc": cell.amplitude_adc,
        "base_rate_hz": cell.base_rate_hz, "rf_center": list(cell.rf_center), "rf_sigma": cell.rf_sigma,
        "rf_surround_sigma": 2 * cell.rf_sigma, "polarity": cell.polarity, "tuned": cell.tuned,
        "preferred_direction_deg": cell.preferred_direction_deg, "axon": axon,
        "n_spikes": int(len(cell.spikes)), "n_excluded": int(len(cell.excluded)),
    } | _tuning_truth(cell)


def _tuning_truth(cell: Cell) -> dict:
    """Where the unit's RF is on the projector image and how near the bar must be to tune it."""
    return {"rf_center_px": list(rf_center_px(cell)), "tuning_radius_px": tuning_radius_px(cell)}


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez`` but with fixed zip timestamps, so equal arrays give equal bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buffer.getvalue(),
                             compress_type=zipfile.ZIP_DEFLATED)


def write_truth(folder: Path, recording_id: str, spec: SynthSpec, timeline: Timeline, cells: list[Cell],
                onh: np.ndarray, n_sensor: int, cmcr_name: str, cmtr_name: str, sheet: dict,
                labels: dict[str, str] | None) -> Path:
    """Write the truth JSON and npz; returns the JSON path.

    ``sheet`` holds the recording's sheet facts (``bad_lanes``, ``center_xy``); ``labels`` maps
    unit IDs to the manual label its folder gives (None: no label folder was written).
    """
    samples = timeline.frame_samples
    npz_name = f"{recording_id}.truth.npz"
    truth = {
        "format": FORMAT, "recording_id": recording_id, "cmcr": cmcr_name, "cmtr": cmtr_name,
        "arrays": npz_name, "spec": dataclasses.asdict(spec), "profile": spec.profile,
        "sampling_rate_hz": timeline.sampling_rate_hz, "tick_us": spec.tick_us, "from_us": 0,
        "n_samples": timeline.n_samples, "n_sensor_samples": n_sensor, "sensor_grid": [65, 65],
        "sensor_axes": list(SENSOR_AXES), "analog_channels": ["Light", "FrameSync"],
        "frame_rate_hz": spec.frame_rate_hz, "frame_onset_convention": ONSET_CONVENTION,
        "n_startup_pulses": STARTUP_PULSES, "startup_pulse_samples": timeline.startup_pulses.tolist(),
        "n_frames": int(len(timeline.frame_onsets)),
        "playlist": spec.playlist, "movies": timeline.movies,
        "section_frames": timeline.section_frames, "movie_frame0": timeline.movie_frame0,
        "section_times": {m: samples(f).tolist() for m, f in timeline.section_frames.items()},
        "trial_frames": {m: f.tolist() for m, f in timeline.trial_frames.items()},
        "trials": {m: samples(f).tolist() for m, f in timeline.trial_frames.items()},
        "onh": [float(onh[0]), float(onh[1])], "electrode_pitch_um": PITCH_UM, "rf_grid": [GRID, GRID],
        "sheet": sheet, "direction_tuning": DIRECTION_TUNING, "units": [_unit_truth(cell) for cell in cells],
        "stimulus_transform": stimulus_frame.truth_record(spec),
    }
    for unit in truth["units"]:
        stimulus_deg = unit["preferred_direction_deg"]
        unit["preferred_direction_electrode_deg"] = (None if stimulus_deg is None
                                                     else stimulus_frame.electrode_direction(spec, stimulus_deg))
    if labels is not None:
        for unit in truth["units"]:
            unit["label"] = labels[unit["unit_id"]]
    arrays = {"frame_onsets": timeline.frame_onsets, "frame_level": timeline.light_level.astype(np.float32)}
    for cell in cells:
        arrays[f"spikes_{unit_id(cell.unit_number)}"] = cell.spikes.astype(np.int64)
        arrays[f"excluded_{unit_id(cell.unit_number)}"] = cell.excluded.astype(np.int64)
    _write_npz(folder / npz_name, arrays)
    path = folder / f"{recording_id}.truth.json"
    path.write_text(json.dumps(truth, indent=1) + "\n")
    return path


def load_truth(path_or_recording_dir: str | Path, recording_id: str | None = None) -> dict:
    """Ground truth of one recording, with its arrays merged in.

    Parameters
    ----------
    path_or_recording_dir : path
        The ``.truth.json`` file, or the folder holding ``<recording_id>.truth.json``.
    recording_id : str, optional
        Needed when a folder is given.

    Returns
    -------
    dict
        The JSON content plus ``frame_onsets`` and ``frame_level`` arrays, and per unit
        ``spike_samples`` / ``excluded_samples`` (int64 sample indices).
    """
    path = Path(path_or_recording_dir)
    if path.is_dir():
        if recording_id is None:
            raise ValueError(f"{path} is a folder: pass the recording_id whose truth to load")
        path = path / f"{recording_id}.truth.json"
    if not path.is_file():
        raise FileNotFoundError(f"no ground truth at {path}; write the recording with mea_pipeline.synth first")
    truth = json.loads(path.read_text())
    with np.load(path.with_name(truth["arrays"])) as arrays:
        truth["frame_onsets"] = arrays["frame_onsets"]
        truth["frame_level"] = arrays["frame_level"]
        for unit in truth["units"]:
            unit["spike_samples"] = arrays[f"spikes_{unit['unit_id']}"]
            unit["excluded_samples"] = arrays[f"excluded_{unit['unit_id']}"]
    return truth
