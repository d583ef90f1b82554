"""NWB export (issue 21): DANDI checks, exact spike times, trial counts through pynapple, atomicity, partial files."""

from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from mea_pipeline.nwb.export import export_nwb, nwb_name
from mea_pipeline.nwb.options import NwbOptions
from mea_pipeline.steps import dense_noise_sta, load_recording, section_spike_times, section_time

OPTIONS = NwbOptions(institution="Synthetic Retina Lab", experimenter=("Doe, Jane",), timezone="Europe/Berlin")
BLOCKING = {"CRITICAL", "ERROR", "PYNWB_VALIDATION"}


@pytest.fixture(scope="module")
def exported(processed, tmp_path_factory):
    """The processed recording exported once: ``output`` (the .h5), ``nwb`` (the .nwb) and the report."""
    output = processed["inputs"].output_path
    nwb = tmp_path_factory.mktemp("nwb") / nwb_name(output)
    return {"output": output, "nwb": nwb, "report": export_nwb(output, nwb, OPTIONS)}


def findings(path: Path) -> list:
    from nwbinspector import inspect_nwbfile, load_config

    return list(inspect_nwbfile(nwbfile_path=path, config=load_config("dandi")))


def test_dandi_inspection_has_no_critical_or_error(exported):
    messages = findings(exported["nwb"])
    listing = "\n".join(f"{m.importance.name} {m.check_function_name} {m.object_name}: {m.message}" for m in messages)
    assert not [m for m in messages if m.importance.name in BLOCKING], listing
    assert exported["report"].missing_subject == []


def test_spike_times_are_sample_index_over_rate(exported):
    from pynwb import NWBHDF5IO

    with h5py.File(exported["output"], "r") as h5, NWBHDF5IO(str(exported["nwb"]), "r") as io:
        nwbfile = io.read()
        rate = load_recording.sampling_rate(h5)
        units = load_recording.unit_ids(h5)
        table = nwbfile.units
        assert list(table["unit_name"][:]) == units
        assert table.resolution == 1.0 / rate
        for row, unit in enumerate(units):
            expected = load_recording.spike_times(h5, unit).astype(np.float64) / rate
            np.testing.assert_array_equal(table["spike_times"][row], expected)
        assert table["waveform_mean"].data.shape == (len(units), 50, 65 * 65)
        assert nwbfile.session_start_time.tzinfo is not None
        assert nwbfile.subject.age.startswith("P") and nwbfile.subject.sex in {"M", "F"}
        assert len(nwbfile.electrodes) == 65 * 65
        for movie in dense_noise_sta.sta_movies(h5):
            stas = nwbfile.processing["receptive_fields"][f"sta_{movie}"]["sta"].data
            for row, unit in enumerate(units):
                expected = dense_noise_sta.sta(h5, unit, movie)
                if expected is not None:
                    np.testing.assert_array_equal(stas[row], expected)


def test_pynapple_trial_counts_match_sectioned_spikes(exported):
    import pynapple as nap

    data = nap.load_file(str(exported["nwb"]))
    spikes = data["units"]
    key = {name: key for key, name in zip(spikes.index, spikes.metadata["unit_name"])}
    with h5py.File(exported["output"], "r") as h5:
        rate = load_recording.sampling_rate(h5)
        units = load_recording.unit_ids(h5)
        checked = 0
        for movie in section_time.sectioned_movies(h5):
            trials = data[f"trials_{movie}"]
            # NWB intervals are [start, stop) here; pynapple's are closed: stop half a sample early.
            epochs = nap.IntervalSet(trials.start, trials.end - 0.5 / rate)
            counts = spikes.count(ep=epochs)
            for unit in units:
                truth = [len(section_spike_times.trial_spikes(h5, unit, movie, trial)) for trial in range(len(epochs))]
                np.testing.assert_array_equal(np.asarray(counts.loc[key[unit]]), truth, err_msg=f"{unit} {movie}")
                checked += sum(truth)
    assert checked > 0


def test_interrupted_export_leaves_no_nwb(exported, tmp_path, monkeypatch):
    from mea_pipeline.nwb import atomic

    real_write = atomic.write_nwb

    def write_then_fail(nwbfile, path):
        real_write(nwbfile, path)
        raise KeyboardInterrupt("killed mid-export")

    monkeypatch.setattr(atomic, "write_nwb", write_then_fail)
    target = tmp_path / "rec.nwb"
    with pytest.raises(KeyboardInterrupt):
        export_nwb(exported["output"], target, OPTIONS)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def without_dsgc(dataset, tmp_path_factory):
    """Recording 1 of ``dataset`` through every step but gsheet_metadata, ap_tracking and dsgc (no sheet row)."""
    from mea_pipeline.config import PipelineConfig, RecordingInputs
    from mea_pipeline.runner import run_recording
    from mea_pipeline.steps import REGISTRY

    rec = dataset["recordings"][1]
    out = tmp_path_factory.mktemp("partial") / f"{rec['recording_id']}.h5"
    inputs = RecordingInputs(rec["recording_id"], out, rec["cmcr"], rec["cmtr"])
    steps = ",".join(s.name for s in REGISTRY.select(None) if s.name not in ("gsheet_metadata", "ap_tracking", "dsgc"))
    run_recording(inputs, PipelineConfig.load(dataset["config_file"], REGISTRY), steps=steps)
    return out


def test_file_without_dsgc_or_ap_tracking_exports_with_notes(without_dsgc, tmp_path):
    report = export_nwb(without_dsgc, tmp_path / nwb_name(without_dsgc), OPTIONS)
    notes = "\n".join(report.notes)
    assert "no dsgc result" in notes and "no ap_tracking result" in notes and "moving-bar sweeps" in notes
    # Without a sheet row the subject lacks its age and sex: reported, and DANDI's checks say so too.
    assert [field.split(":")[0] for field in report.missing_subject] == ["subject age", "subject sex", "subject_id"]
    blocking = {m.check_function_name for m in findings(report.nwb_path) if m.importance.name in BLOCKING}
    assert blocking <= {"check_subject_age", "check_subject_id_exists", "check_subject_sex"}, blocking


def test_cli_fails_on_missing_subject_fields_only_with_require_dandi(without_dsgc, tmp_path):
    from mea_pipeline.cli.main import app

    args = ["export-nwb", str(without_dsgc), "--out", str(tmp_path), "--timezone", "UTC"]
    lenient = CliRunner().invoke(app, args)
    assert lenient.exit_code == 0, lenient.output
    assert lenient.output.count("missing for DANDI:") == 3 and "note: direction selectivity" in lenient.output
    strict = CliRunner().invoke(app, args + ["--require-dandi"])
    assert strict.exit_code == 1, strict.output


def test_cli_writes_one_line_per_file_and_note(exported, tmp_path):
    from mea_pipeline.cli.main import app

    result = CliRunner().invoke(app, ["export-nwb", str(exported["output"].parent), "--out", str(tmp_path),
                                      "--timezone", "Europe/Berlin", "--require-dandi"])
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / nwb_name(exported['output'])}" in result.output
    assert (tmp_path / nwb_name(exported["output"])).is_file()
    failed = CliRunner().invoke(app, ["export-nwb", str(tmp_path / "missing.h5"), "--out", str(tmp_path)])
    assert failed.exit_code == 1 and "FAILED" in failed.output


def test_waveform_trough_sits_on_the_soma_electrode(exported, processed):
    """Each unit's deepest ``waveform_mean`` point is on the electrode the synthetic cell's soma sits on
    (the truth's MCS SensorID), and that electrode's ``rel_x``/``rel_y`` are the soma columns' position:
    a transposed flattening or swapped position axes moves every off-diagonal soma elsewhere."""
    from pynwb import NWBHDF5IO

    truth = {unit["unit_id"]: unit for unit in processed["truth"]["units"]}
    pitch = 16.0
    with NWBHDF5IO(str(exported["nwb"]), "r") as io:
        nwbfile = io.read()
        electrodes, units = nwbfile.electrodes, nwbfile.units
        sensor, rel_x, rel_y = (np.asarray(electrodes[c][:]) for c in ("sensor_id", "rel_x", "rel_y"))
        names = list(units["unit_name"][:])
        assert sorted(names) == sorted(truth)
        off_diagonal = 0
        for row, name in enumerate(names):
            image = units["waveform_mean"].data[row]   # samples x electrodes
            if truth[name]["silent"]:
                assert np.isnan(image).all(), name
                continue
            electrode = np.unravel_index(np.nanargmin(image), image.shape)[1]
            assert sensor[electrode] == truth[name]["sensor_id"], name
            # MCS Row runs along eimage axis 2 (x), Column along axis 1 (y).
            assert (rel_x[electrode], rel_y[electrode]) == ((truth[name]["row"] - 1) * pitch,
                                                            (truth[name]["column"] - 1) * pitch), name
            assert abs(units["soma_x_um"][row] - rel_x[electrode]) < pitch / 2, name
            assert abs(units["soma_y_um"][row] - rel_y[electrode]) < pitch / 2, name
            off_diagonal += abs(truth[name]["row"] - truth[name]["column"]) > 2
        assert off_diagonal >= len(names) // 2  # enough somas off the diagonal for a swap to show


def test_the_step_writes_the_nwb_beside_the_output_and_records_it(processed):
    """The processed fixture enables nwb_export: its file is the export of the output beside it."""
    from pynwb import NWBHDF5IO

    from mea_pipeline.steps import nwb_export

    output = processed["inputs"].output_path
    nwb = output.with_suffix(".nwb")
    with h5py.File(output, "r") as h5:
        assert h5[nwb_export.NWB_FILE.at()].asstr()[()] == nwb.name
        assert h5[nwb_export.NWB_SIZE.at()][()] == nwb.stat().st_size
        notes = list(h5[nwb_export.NWB_NOTES.at()].asstr()[()])
        units = load_recording.unit_ids(h5)
    assert any(note.startswith("electrode pitch") for note in notes)  # the synthetic raw file gives no pitch
    with NWBHDF5IO(str(nwb), "r") as io:
        nwbfile = io.read()
        assert nwbfile.session_id == processed["inputs"].recording_id
        assert list(nwbfile.units["unit_name"][:]) == units
    assert not list(output.parent.glob("*.tmp-*"))
