"""Lab keys of steps 1-5, 8 and 9 against the lab's documented layout (ref-steps-1-5 sections 4-9).

Each expectation is built from the raw files (read here with plain h5py) or the generator's
truth and the lab's recipe as the reference documents it, never with the pipeline's own code,
so a key that drifts from the lab's quantity, units, dtype family or shape fails here.
"""

from __future__ import annotations

import math

import h5py
import numpy as np
from scipy.signal import find_peaks

from mea_pipeline.schema import FIXED
from mea_pipeline.steps import REGISTRY


def lab_frame_samples(frame_sync: np.ndarray) -> np.ndarray:
    """The lab's frame detection (ref-steps-1-5 4.2): peaks >= 0.1 of the first difference of the
    signal divided by its 99.9th percentile; the 4 start-up pulses dropped."""
    x = frame_sync.astype(np.float64)
    peaks, _ = find_peaks(np.diff(x / np.percentile(x, 99.9)), height=0.1)
    return peaks[4:]


def analog(processed) -> np.ndarray:
    with h5py.File(processed["inputs"].cmcr_path, "r") as cmcr:
        return cmcr["Acquisition/Analog Data/ChannelData 1"][()]


def test_frame_timestamps_are_the_labs_detection(processed):
    truth = processed["truth"]
    expected = lab_frame_samples(analog(processed)[1])
    # The lab's timestamp is the sample before the pulse rises: one before the generator's onset.
    np.testing.assert_array_equal(expected, truth["frame_onsets"] - 1)
    with h5py.File(processed["inputs"].output_path) as h5:
        for path in ("metadata/frame_timestamps", "stimulus/frame_times/default"):
            assert h5[path].dtype == np.uint64
            np.testing.assert_array_equal(h5[path][()], expected)
        np.testing.assert_array_equal(h5["metadata/frame_time"][()], expected / truth["sampling_rate_hz"])


def test_light_template_is_the_raw_light_channel_over_the_section(processed):
    light = analog(processed)[0].astype(np.float32)
    with h5py.File(processed["inputs"].output_path) as h5:
        for movie in processed["truth"]["movies"]:
            (start, end), = h5[f"stimulus/section_time/{movie}"][()]  # one occurrence each
            template = h5[f"stimulus/light_template/{movie}"]
            assert template.dtype == np.float32 and template.shape == (end - start,), movie
            np.testing.assert_array_equal(template[()], light[start:end])
        assert h5["metadata/section_time_repeats"].shape == () and h5["metadata/section_time_repeats"][()] == 1
        assert h5["metadata/section_time_repeats"].dtype.kind == "i"


def test_firing_rate_has_the_labs_bins_and_length(processed):
    """100 ms bins from time 0 to the last spike + 1 s, spikes per second (ref 4.1.3); units without
    spikes have neither firing_rate_10hz nor peak_amplitudes."""
    tick_us = round(1e6 / processed["truth"]["sampling_rate_hz"])
    with h5py.File(processed["inputs"].output_path) as h5:
        for unit in processed["truth"]["units"]:
            group = h5[f"units/{unit['unit_id']}"]
            spikes_us = unit["spike_samples"].astype(np.float64) * tick_us
            if len(spikes_us) == 0:
                assert "firing_rate_10hz" not in group and "unit_meta/peak_amplitudes" not in group
                continue
            n_bins = math.ceil((spikes_us[-1] + 1e6) / 1e5)
            counts, _ = np.histogram(spikes_us, bins=np.arange(n_bins + 1) * 1e5)
            rate = group["firing_rate_10hz"]
            assert rate.dtype == np.float32 and rate.shape == (n_bins,), unit["unit_id"]
            np.testing.assert_array_equal(rate[()], counts * 10.0)
            assert group["unit_meta/peak_amplitudes"].shape == (len(spikes_us),)


def test_eimage_metadata_keys_types_and_values(processed):
    expected = {"cutoff_hz": ("f", 100.0), "filter_order": ("i", 2), "pre_samples": ("i", 10),
                "post_samples": ("i", 40), "spike_limit": ("i", 10_000), "duration_s": ("f", 120.0),
                "skip_highpass": ("b", False), "sampling_rate": ("f", processed["truth"]["sampling_rate_hz"])}
    with h5py.File(processed["inputs"].output_path) as h5:
        for unit in processed["truth"]["units"]:
            meta = h5[f"units/{unit['unit_id']}/features/eimage_sta/metadata"]
            for key, (kind, value) in expected.items():
                assert meta[key].shape == () and meta[key].dtype.kind == kind, key
                assert meta[key][()] == value, key
            assert meta["window_range"].dtype == np.int64 and list(meta["window_range"][()]) == [-10, 40]
            for key in ("n_spikes_used", "n_spikes_excluded"):
                assert meta[key].shape == () and meta[key].dtype.kind == "i"


def test_unit_info_and_attributes_are_stored_as_the_lab_does(processed):
    """Numbers as one-element int64/float64 arrays, text as scalar strings (ref 9.1, unit_meta)."""
    def check(dataset, value, name):
        if isinstance(value, bytes) or isinstance(value, str):
            text = value.decode() if isinstance(value, bytes) else value
            assert dataset.shape == () and dataset.asstr()[()] == text, name
        else:
            kind = "i" if np.issubdtype(np.asarray(value).dtype, np.integer) else "f"
            assert dataset.shape == (1,) and dataset.dtype == (np.int64 if kind == "i" else np.float64), name
            assert dataset[0] == value, name

    with h5py.File(processed["inputs"].cmtr_path, "r") as cmtr, \
            h5py.File(processed["inputs"].output_path) as h5:
        for unit in processed["truth"]["units"]:
            group = cmtr[f"Spike Sorter/Unit {unit['unit_number']}"]
            meta = h5[f"units/{unit['unit_id']}/unit_meta"]
            record = group["Unit Info"][0]
            for name in record.dtype.names:
                check(meta[name.lower()], record[name], name)
            for name, value in group.attrs.items():
                check(meta[f"attr_{name.lower()}"], value, name)
            assert meta["row"][0] == unit["row"] and meta["column"][0] == unit["column"]


def test_root_attributes_are_the_files_own(processed):
    with h5py.File(processed["inputs"].output_path) as h5:
        for kind, path in (("cmcr", processed["inputs"].cmcr_path), ("cmtr", processed["inputs"].cmtr_path)):
            with h5py.File(path, "r") as raw:
                attributes = dict(raw.attrs.items())
            stored = h5[f"metadata/{kind}_meta"]
            for name, value in attributes.items():
                value = np.asarray(value).reshape(-1)[0] if np.ndim(value) else value
                if isinstance(value, (bytes, str)):
                    assert stored[name].asstr()[()] == (value.decode() if isinstance(value, bytes) else value)
                else:
                    assert stored[name].shape == () and stored[name][()] == value, name
                    assert stored[name].dtype in (np.int64, np.float64), name
        duration = h5["metadata/cmcr_meta/LB.RecordingDuration"][()]
        assert h5["metadata/cmcr_meta/recording_duration_s"][()] == duration / 1e6


def test_every_output_of_steps_1_to_9_is_marked_and_only_includepeak_is_fixed():
    for step in REGISTRY:
        if REGISTRY.number(step.name) not in (1, 2, 3, 4, 5, 8, 9):
            continue
        for out in step.outputs:
            assert out.origin is not None, out.path
            if out.origin == FIXED:
                assert out.path.startswith("units/{unit}/features/eimage_sta/") and "IncludePeak" in out.fixed
            if out.path.rsplit("/", 1)[-1].rsplit("@", 1)[-1] in ("row", "col", "column", "sensorid", "global_id"):
                assert out.frame == "electrode", out.path
