"""What a recording holds: rate, duration, sensor grid, analog channels, units and spike counts.

Relies only on what real MCS files carry (docs/mcs-format.md), so it works on any
``.cmcr``/``.cmtr`` pair, not only synthetic ones.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .mcs_io import CmcrFile, CmtrFile, recording_id_from_path


def spikes_sha256(spike_samples: np.ndarray) -> str:
    """SHA-256 hex of sorted spike sample indices as little-endian int64 bytes."""
    return hashlib.sha256(np.sort(np.asarray(spike_samples, dtype="<i8")).tobytes()).hexdigest()


def inspect_recording(cmcr: str | Path, cmtr: str | Path | None = None) -> dict:
    """Summary of a recording (and of its spike-sorted units when ``cmtr`` is given).

    Returns
    -------
    dict
        ``recording_id``, ``cmcr``, ``cmtr`` (paths; ``cmtr`` None when not given),
        ``sampling_rate_hz``, ``tick_us``, ``n_samples`` (whole recording), ``duration_s``,
        ``sensor_grid``, ``n_sensor_samples``, ``sensor_seconds``,
        ``analog_channels`` (labels), ``units``: one ``{unit_id, row, column, n_spikes,
        spike_samples_sha256}`` per unit, sorted by unit number (empty without ``cmtr``).
    """
    with CmcrFile(cmcr) as raw:
        info = {
            "recording_id": recording_id_from_path(cmtr if cmtr is not None else cmcr),
            "cmcr": str(cmcr),
            "cmtr": str(cmtr) if cmtr is not None else None,
            "sampling_rate_hz": raw.sampling_rate_hz,
            "tick_us": raw.tick_us,
            "n_samples": raw.n_analog_samples or raw.n_sensor_samples,
            "duration_s": raw.duration_s,
            "sensor_grid": list(raw.sensor_grid),
            "n_sensor_samples": raw.n_sensor_samples,
            "sensor_seconds": raw.n_sensor_samples / raw.sampling_rate_hz,
            "analog_channels": list(raw.analog_labels),
        }
        tick_us, from_us = raw.tick_us, raw.from_us
    info["units"] = []
    if cmtr is not None:
        with CmtrFile(cmtr) as results:
            info["units"] = [{"unit_id": u.unit_id, "row": u.row, "column": u.column,
                              "n_spikes": int(len(u.spike_samples)),
                              "spike_samples_sha256": spikes_sha256(u.spike_samples)}
                             for u in results.units(tick_us, from_us)]
    return info


def format_inspection(d: dict) -> str:
    """Human-readable report of :func:`inspect_recording`'s result."""
    grid = " x ".join(str(n) for n in d["sensor_grid"])
    lines = [
        f"recording      {d['recording_id']}",
        f"sampling rate  {d['sampling_rate_hz']:g} Hz (tick {d['tick_us']} us)",
        f"duration       {d['duration_s']:.3f} s ({d['n_samples']} samples)",
        f"sensor         {grid} electrodes, {d['sensor_seconds']:.3f} s of raw data ({d['n_sensor_samples']} frames)",
        f"analog         {len(d['analog_channels'])} channel(s): {', '.join(d['analog_channels']) or '-'}",
    ]
    units = d["units"]
    if d.get("cmtr") is None:
        lines.append("units          not read (no .cmtr given)")
        return "\n".join(lines)
    lines.append(f"units          {len(units)} ({sum(u['n_spikes'] for u in units)} spikes)")
    if units:
        lines.append(f"  {'unit':<10} {'row':>4} {'col':>4} {'spikes':>8}  spike sha256 (first 16 hex)")
    lines += [f"  {u['unit_id']:<10} {u['row']:>4} {u['column']:>4} {u['n_spikes']:>8}  "
              f"{u['spike_samples_sha256'][:16]}" for u in units]
    return "\n".join(lines)
