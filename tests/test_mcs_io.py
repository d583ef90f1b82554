"""The .cmcr/.cmtr reader against synthetic ground truth, and inspect_recording."""

import hashlib
import shutil

import h5py
import numpy as np
import pytest
from McsPy.McsCMOSMEA import McsCMOSMEAData

from mea_pipeline.inspect_recording import format_inspection, inspect_recording
from mea_pipeline.mcs_io import (CmcrFile, CmtrFile, McsFormatError, recording_id_from_path, sensor_coordinates,
                                 sensor_frame_index, sensor_id, unit_id)
from mea_pipeline.synth import SynthSpec, load_truth, write_recording, write_stimulus_library


@pytest.fixture(scope="module")
def variant(tmp_path_factory):
    """25 kHz recording with unit-ID gaps and one unit without spikes."""
    folder = tmp_path_factory.mktemp("variant")
    library = write_stimulus_library(folder / "stimuli", "tiny")
    spec = SynthSpec(n_units=6, tick_us=40, unit_id_gaps=True, n_silent_units=1, sensor_seconds=0.1,
                     profile="tiny", seed=3)
    rec = write_recording(folder / "recordings", "2024.03.07-09.36.43-Rec", spec, library)
    return rec, load_truth(rec["truth"])


def first(synth_dataset):
    rec = synth_dataset["recordings"][0]
    return rec, load_truth(rec["truth"])


def assert_units_match(units, truth):
    assert [u.unit_number for u in units] == [t["unit_number"] for t in truth["units"]]
    for unit, expected in zip(units, truth["units"]):
        assert unit.unit_id == expected["unit_id"]
        assert (unit.row, unit.column, unit.sensor_id) == (expected["row"], expected["column"], expected["sensor_id"])
        assert unit.spike_samples.dtype == np.int64
        assert np.array_equal(unit.spike_samples, expected["spike_samples"])
        assert not np.isin(expected["excluded_samples"], unit.spike_samples).any()
        assert unit.peak_amplitudes.dtype == np.float32 and len(unit.peak_amplitudes) == len(unit.spike_samples)


def test_names():
    assert recording_id_from_path("/x/2024.01.17-11.15.41-Rec-.cmtr") == "2024.01.17-11.15.41-Rec"
    assert recording_id_from_path("2024.01.17-11.15.41-Rec.cmcr") == "2024.01.17-11.15.41-Rec"
    assert unit_id(7) == "unit_007" and unit_id(1234) == "unit_1234"


def test_sensor_ids_agree_with_mcspy():
    for row, column in [(1, 1), (65, 1), (1, 65), (7, 40), (65, 65)]:
        sid = sensor_id(row, column)
        assert sid == McsCMOSMEAData.coordinates_to_sensorID(row, column)
        assert sensor_coordinates(sid) == (row, column) == tuple(McsCMOSMEAData.sensorID_to_coordinates(sid))
        # Flattened full-chip frame index is SensorID - 1.
        assert np.ravel_multi_index(sensor_frame_index(row, column), (65, 65)) == sid - 1


def test_cmcr_file(synth_dataset):
    rec, truth = first(synth_dataset)
    with CmcrFile(rec["cmcr"]) as raw:
        assert raw.tick_us == 50 and raw.sampling_rate_hz == 20000.0 and raw.from_us == 0
        assert raw.n_sensor_samples == truth["n_sensor_samples"] == 10_000
        assert raw.sensor.shape == (10_000, 65, 65) and raw.sensor_grid == (65, 65)
        assert raw.analog_labels == ["Light", "FrameSync"]
        analog = raw.analog()
        assert analog.shape == (2, truth["n_samples"]) and analog.dtype == np.int32
        assert raw.n_analog_samples == truth["n_samples"]
        assert raw.duration_s == pytest.approx(truth["n_samples"] / 20000.0)
        assert raw.root_attributes["ProgramName"] == "CMOS-MEA-Control"
        assert raw.root_attributes["FileVersion"] == 2 and isinstance(raw.root_attributes["FileVersion"], int)
    assert raw.sensor is None


def test_units_are_exactly_the_included_peaks(synth_dataset):
    for rec in synth_dataset["recordings"]:
        truth = load_truth(rec["truth"])
        with CmtrFile(rec["cmtr"]) as results:
            units = results.units(truth["tick_us"], truth["from_us"])
            assert results.root_attributes["ProgramName"] == "CMOS-MEA-Tools"
        assert_units_match(units, truth)
        unit = units[0]
        assert unit.waveform.dtype == np.float32 and unit.waveform.shape == (60,)
        assert np.argmin(unit.waveform) == 20   # cutouts: 20 samples before the peak
        assert unit.unit_info["UnitID"] == unit.unit_number and unit.unit_info["Tags"] == ""
        assert isinstance(unit.unit_info["SNR"], float)
        assert unit.attributes["UnitID"] == unit.unit_number and unit.attributes["ID.Type"] == "SingleUnit"
        assert unit.roi_stas.dtype == np.float32 and unit.roi_stas.shape == (25, 60)
        assert unit.unmixing.dtype == np.float32 and unit.unmixing.shape == (25, 8)


def test_spike_samples_use_integer_division(synth_dataset):
    rec, truth = first(synth_dataset)
    with CmtrFile(rec["cmtr"]) as results:
        shifted = results.units(truth["tick_us"], from_us=-30)   # timestamps 30 µs after "From"
    for unit, expected in zip(shifted, truth["units"]):
        assert np.array_equal(unit.spike_samples, expected["spike_samples"])   # floor, never rounded up


def test_unit_id_gaps_silent_unit_and_25_khz(variant):
    rec, truth = variant
    with CmcrFile(rec["cmcr"]) as raw:
        assert raw.tick_us == 40 and raw.sampling_rate_hz == 25000.0
        tick = raw.tick_us
    with CmtrFile(rec["cmtr"]) as results:
        units = results.units(tick)
        metadata = results.unit_metadata()
    assert [u.unit_number for u in units] == [1, 2, 4, 7, 11, 16]
    assert [u.unit_id for u in metadata] == ["unit_001", "unit_002", "unit_004", "unit_007", "unit_011", "unit_016"]
    assert_units_match(units, truth)
    silent = units[-1]
    assert len(silent.spike_samples) == 0 and silent.waveform.size == 0 and len(silent.peak_amplitudes) == 0


def test_cmtr_without_its_cmcr(synth_dataset, tmp_path, capsys):
    rec, truth = first(synth_dataset)
    alone = tmp_path / rec["cmtr"].name
    shutil.copy(rec["cmtr"], alone)
    with CmtrFile(alone) as results:
        units = results.units(truth["tick_us"])
    assert_units_match(units, truth)
    assert capsys.readouterr().out == ""   # McsPy's "Error opening group Acquisition" is not printed


def test_source_traces_are_never_read(synth_dataset, tmp_path):
    rec, truth = first(synth_dataset)
    copy = tmp_path / rec["cmtr"].name
    shutil.copy(rec["cmtr"], copy)
    with h5py.File(copy, "r+") as f:
        for name in f["Spike Sorter"]:
            group = f["Spike Sorter"][name]
            if isinstance(group, h5py.Group) and "Source" in group:
                attrs = dict(group["Source"].attrs)
                del group["Source"]
                # Raw data in a file that does not exist: any read of Source would raise.
                ds = group.create_dataset("Source", shape=(100,), dtype="<f4",
                                          external=[(str(tmp_path / "missing.raw"), 0, 400)])
                ds.attrs.update(attrs)
    with CmtrFile(copy) as results:
        assert_units_match(results.units(truth["tick_us"]), truth)
        assert len(results.unit_metadata()) == len(truth["units"])


def test_close_releases_the_file(synth_dataset, tmp_path):
    rec, _ = first(synth_dataset)
    for cls, name in ((CmcrFile, "cmcr"), (CmtrFile, "cmtr")):
        copy = tmp_path / rec[name].name
        shutil.copy(rec[name], copy)
        reader = cls(copy)
        reader.close()
        with h5py.File(copy, "r+"):   # HDF5 refuses this while the file is still open read-only
            pass


def test_bad_files_raise_mcs_format_error(synth_dataset, tmp_path):
    text = tmp_path / "notes.cmcr"
    text.write_text("not an HDF5 file")
    plain = tmp_path / "plain.cmtr"
    with h5py.File(plain, "w") as f:
        f["x"] = 1
    for reader, path in ((CmcrFile, text), (CmtrFile, plain), (CmcrFile, tmp_path / "missing.cmcr")):
        with pytest.raises(McsFormatError, match=str(path.name)) as info:
            reader(path)
        assert isinstance(info.value, ValueError)
    rec, _ = first(synth_dataset)
    alone = tmp_path / rec["cmtr"].name
    shutil.copy(rec["cmtr"], alone)
    with pytest.raises(McsFormatError, match="Acquisition"):
        CmcrFile(alone)   # a .cmtr whose .cmcr is absent has no sensor data
    with CmtrFile(rec["cmcr"]) as not_sorted, pytest.raises(McsFormatError, match="Spike Sorter"):
        not_sorted.units(50)


def test_inspect_recording_matches_truth(synth_dataset):
    rec, truth = first(synth_dataset)
    d = inspect_recording(rec["cmcr"], rec["cmtr"])
    assert d["recording_id"] == truth["recording_id"]
    assert d["sampling_rate_hz"] == truth["sampling_rate_hz"] and d["n_samples"] == truth["n_samples"]
    assert d["sensor_grid"] == [65, 65] and d["sensor_seconds"] == pytest.approx(0.5)
    assert d["duration_s"] == pytest.approx(truth["n_samples"] / truth["sampling_rate_hz"])
    assert d["analog_channels"] == ["Light", "FrameSync"]
    assert [u["unit_id"] for u in d["units"]] == [u["unit_id"] for u in truth["units"]]
    for got, expected in zip(d["units"], truth["units"]):
        assert (got["row"], got["column"], got["n_spikes"]) == (expected["row"], expected["column"],
                                                                 len(expected["spike_samples"]))
        digest = hashlib.sha256(np.sort(expected["spike_samples"]).astype("<i8").tobytes()).hexdigest()
        assert got["spike_samples_sha256"] == digest
    text = format_inspection(d)
    assert truth["recording_id"] in text and "unit_010" in text
    assert inspect_recording(rec["cmcr"])["units"] == []


def test_missing_analog_data_is_reported_when_read(variant, tmp_path):
    rec, truth = variant
    copy = tmp_path / rec["cmcr"].name
    shutil.copy(rec["cmcr"], copy)
    with h5py.File(copy, "r+") as f:
        del f["Acquisition/Analog Data"]
    with CmcrFile(copy) as raw:
        assert raw.analog_labels == [] and raw.n_analog_samples == 0
        assert raw.duration_s == pytest.approx(truth["n_samples"] * 40 / 1e6)   # from LB.RecordingDuration
        with pytest.raises(McsFormatError, match="ChannelData 1"):
            raw.analog()
