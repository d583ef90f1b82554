"""Write a synthetic ``.cmcr``: root attributes, full-chip sensor data and the analog channels.

Sensor data (only the first ``sensor_seconds``) is Gaussian noise plus every spike's electrical
image, int16, chunks of (1000, 65, 65), uncompressed. ``Analog Data/ChannelData 1`` is int32
(2, samples): row 0 the light reference, row 1 the frame-sync pulses.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from .cells import CHIP, Cell
from .mcs_layout import number, set_ids, set_root, text
from .spec import SynthSpec
from .templates import window

CHUNK_FRAMES = 1000
BLOCK_FRAMES = 5 * CHUNK_FRAMES   # frames generated in memory at once (~85 MB float32)
ANALOG_LABELS = ("Light", "FrameSync")


def _sensor_block(start: int, stop: int, cells: list[Cell], templates: list[np.ndarray], pre: int,
                  noise_adc: float, rng: np.random.Generator) -> np.ndarray:
    """Frames [start, stop): noise plus every spike whose template overlaps them."""
    block = rng.standard_normal((stop - start, CHIP, CHIP), dtype=np.float32)
    block *= np.float32(noise_adc)
    for cell, template in zip(cells, templates):
        first = cell.spikes - pre   # template sample 0 of each spike
        hits = cell.spikes[(first < stop) & (first + len(template) > start)]
        for spike in hits:
            a, b = max(start, spike - pre), min(stop, spike - pre + len(template))
            block[a - start:b - start] += template[a - spike + pre:b - spike + pre]
    return np.clip(np.rint(block), -32768, 32767).astype(np.int16)


def _sensor_meta(tick_us: int) -> np.ndarray:
    factors = " ".join(["1"] * CHIP * CHIP)
    dtype = np.dtype([("GroupID", "<i4"), ("RegionID", "<i4"), ("Tick", "<i8"), ("Exponent", "<i4"),
                      ("Unit", "S8"), ("ADZero", "<i4"), ("RegionLeft", "<i4"), ("RegionTop", "<i4"),
                      ("RegionRight", "<i4"), ("RegionBottom", "<i4"), ("ConversionFactors", f"S{len(factors)}")])
    return np.array([(1, 1, tick_us, -6, b"V", 0, 1, 1, CHIP, CHIP, factors.encode())], dtype=dtype)


def _channel_meta(tick_us: int) -> np.ndarray:
    dtype = np.dtype([("ChannelID", "<i4"), ("GroupID", "<i4"), ("Label", "S32"), ("Unit", "S8"),
                      ("Exponent", "<i4"), ("ADZero", "<i4"), ("Tick", "<i8"), ("ConversionFactor", "<i8")])
    return np.array([(i + 1, 1, label.encode(), b"V", -9, 0, tick_us, 1) for i, label in enumerate(ANALOG_LABELS)],
                    dtype=dtype)


def write_cmcr(path: Path, recording_id: str, spec: SynthSpec, analog: np.ndarray, cells: list[Cell],
               templates: list[np.ndarray], rngs: dict[str, np.random.Generator]) -> int:
    """Write the raw file; returns the number of sensor frames written."""
    tick = spec.tick_us
    n_samples = analog.shape[1]
    n_sensor = min(n_samples, round(spec.sensor_seconds * spec.sampling_rate_hz))
    ids = rngs["ids"]
    with h5py.File(path, "w") as f:
        set_root(f, recording_id, path.name, "CMOS-MEA-Control", "2.0.0.0", n_samples * tick, ids)
        acquisition = f.create_group("Acquisition")
        set_ids(acquisition, "Acquisition", "acquisition", "Acquisition", ids)
        acquisition.attrs["From"] = number(0)
        acquisition.attrs["To"] = number(n_samples * tick)

        sensor = acquisition.create_group("Sensor Data")
        set_ids(sensor, "SensorStream", "sensor_stream", "Sensor Data", ids)
        sensor.attrs["SubType"] = text("CMosSensor")
        data = sensor.create_dataset("SensorData 1 1", shape=(n_sensor, CHIP, CHIP), dtype="<i2",
                                     chunks=(min(CHUNK_FRAMES, n_sensor), CHIP, CHIP))
        set_ids(data, "SensorData", "sensor_data", "SensorData 1 1", ids)
        data.attrs["From"] = number(0)
        data.attrs["To"] = number(n_sensor * tick)
        data.attrs["RegionID"] = number(1, "<i4")
        pre, _ = window(spec.sampling_rate_hz)
        for start in range(0, n_sensor, BLOCK_FRAMES):
            stop = min(n_sensor, start + BLOCK_FRAMES)
            data[start:stop] = _sensor_block(start, stop, cells, templates, pre, spec.noise_adc, rngs["sensor"])
        meta = sensor.create_dataset("SensorMeta", data=_sensor_meta(tick))
        set_ids(meta, "SensorMeta", "sensor_meta", "SensorMeta", ids)

        aux = acquisition.create_group("Analog Data")
        set_ids(aux, "ChannelStream", "channel_stream", "Analog Data", ids)
        aux.attrs["SubType"] = text("Auxiliary")
        channels = aux.create_dataset("ChannelData 1", data=analog.astype("<i4"))
        set_ids(channels, "ChannelData", "channel_data", "ChannelData 1", ids)
        channels.attrs["From"] = number(0)
        channels.attrs["To"] = number(n_samples * tick)
        channel_meta = aux.create_dataset("ChannelMeta", data=_channel_meta(tick))
        set_ids(channel_meta, "ChannelMeta", "channel_meta", "ChannelMeta", ids)
    return n_sensor
