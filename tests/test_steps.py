"""Steps 1-5 on synthetic recordings, checked against the generator's ground truth (no Prefect)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from mea_pipeline.config import PipelineConfig, RecordingInputs
from mea_pipeline.mcs_io import sensor_frame_index
from mea_pipeline.runner import FAULT_ENV, StepFailed, is_complete, run_recording, run_step
from mea_pipeline.schema import validate
from mea_pipeline.steps import REGISTRY
from mea_pipeline.store import OutputFile
from output_copy import copy_output


def statuses(result: dict) -> dict:
    return {s["step"]: s["status"] for s in result["steps"]}


def test_all_steps_done_with_records(processed):
    assert set(statuses(processed["result"]).values()) == {"done"}
    records = OutputFile(processed["inputs"].output_path).verified_records()
    assert set(records) == set(REGISTRY.names())
    for record in records.values():
        assert record.code_version and record.cache_key and record.started_at <= record.finished_at
    with h5py.File(processed["inputs"].output_path) as h5:
        assert [s.decode() for s in h5["pipeline/completed_steps"][()]] == REGISTRY.names()


def test_output_matches_schema(processed):
    with h5py.File(processed["inputs"].output_path) as h5:
        assert validate(h5, REGISTRY) == []


def test_spike_times_are_the_truth(processed):
    with h5py.File(processed["inputs"].output_path) as h5:
        for unit in processed["truth"]["units"]:
            np.testing.assert_array_equal(h5[f"units/{unit['unit_id']}/spike_times"][()], unit["spike_samples"])
            assert h5[f"units/{unit['unit_id']}"].attrs["row"] == unit["row"]


def test_eimage_trough_at_soma_electrode(processed):
    checked = 0
    with h5py.File(processed["inputs"].output_path) as h5:
        for unit in processed["truth"]["units"]:
            base = f"units/{unit['unit_id']}/features/eimage_sta"
            data = h5[f"{base}/data"][()]
            assert data.dtype == np.float32 and data.shape == (50, 65, 65)
            if h5[f"{base}/metadata/n_spikes_used"][()] == 0:
                assert np.isnan(data).all()
                continue
            _, axis1, axis2 = np.unravel_index(np.argmin(data), data.shape)
            assert (axis1, axis2) == sensor_frame_index(unit["row"], unit["column"]), unit["unit_id"]
            checked += 1
    assert checked >= len(processed["truth"]["units"]) - 2


def test_silent_unit_gets_nan_and_a_warning(processed):
    silent = [u["unit_id"] for u in processed["truth"]["units"] if u["silent"]]
    assert silent
    record = OutputFile(processed["inputs"].output_path).verified_records()["load_recording"]
    with h5py.File(processed["inputs"].output_path) as h5:
        for unit_id in silent:
            assert np.isnan(h5[f"units/{unit_id}/features/eimage_sta/data"][()]).all()
            assert any(w.startswith(unit_id) for w in record.warnings)


# The truth gives each frame's onset (first sample of its sync pulse); the lab's frame timestamp,
# which every sample-valued section and trial key holds, is the sample before it.
LAB_FRAME_OFFSET = -1


def test_frames_sections_and_trials_equal_truth(processed):
    truth = processed["truth"]
    with h5py.File(processed["inputs"].output_path) as h5:
        np.testing.assert_array_equal(h5["metadata/frame_timestamps"][()], truth["frame_onsets"] + LAB_FRAME_OFFSET)
        assert h5["metadata/frame_qc/difference"][()] == 0
        for movie in truth["movies"]:
            np.testing.assert_array_equal(h5[f"stimulus/section_time/{movie}"][0],
                                          np.add(truth["section_times"][movie], LAB_FRAME_OFFSET))
            unit = truth["units"][0]["unit_id"]
            trials = h5[f"units/{unit}/spike_times_sectioned/{movie}/trials_start_end"][()]
            np.testing.assert_array_equal(trials, np.add(truth["trials"][movie], LAB_FRAME_OFFSET))


def test_trial_spikes_are_cut_from_spike_times(processed):
    truth = processed["truth"]
    movie = truth["movies"][1]
    with h5py.File(processed["inputs"].output_path) as h5:
        for unit in truth["units"]:
            base = f"units/{unit['unit_id']}/spike_times_sectioned/{movie}"
            for n, (start, end) in enumerate(np.add(truth["trials"][movie], LAB_FRAME_OFFSET)):
                spikes = unit["spike_samples"]
                expected = spikes[(spikes >= start) & (spikes < end)]
                np.testing.assert_array_equal(h5[f"{base}/trials_spike_times/{n}"][()], expected)


def test_dense_noise_sta_peaks_at_rf_center(processed):
    truth = processed["truth"]
    noise = next(m for m in truth["movies"] if "dense_noise" in m)
    checked = 0
    with h5py.File(processed["inputs"].output_path) as h5:
        for unit in truth["units"]:
            base = f"units/{unit['unit_id']}/features/sta_{noise}"
            if h5[f"{base}/metadata/n_spikes_used"][()] < 300:
                continue
            sta = h5[f"{base}/data"][()]
            assert sta.dtype == np.float32 and sta.shape[0] == 60
            deviation = np.abs(sta - sta.mean())
            _, row, col = np.unravel_index(np.argmax(deviation), sta.shape)
            assert abs(row - unit["rf_center"][0]) <= 1 and abs(col - unit["rf_center"][1]) <= 1, unit["unit_id"]
            checked += 1
    assert checked >= 3


def test_file_metadata_by_field_name(processed):
    with h5py.File(processed["inputs"].output_path) as h5:
        unit = processed["truth"]["units"][0]
        meta = h5[f"units/{unit['unit_id']}/unit_meta"]
        assert meta["row"][()] == [unit["row"]] and meta["column"][()] == [unit["column"]]
        assert meta["sensorid"][()] == [unit["sensor_id"]]
        assert "roi_stas" in meta and "unmixing_matrix" in meta
        assert "recording_duration_s" in h5["metadata/cmcr_meta"]
        assert h5["metadata/cmtr_meta/ProgramName"][()].decode() == "CMOS-MEA-Tools"


def test_rerun_does_nothing(processed):
    before = processed["inputs"].output_path.stat().st_mtime_ns
    again = run_recording(processed["inputs"], processed["config"])
    assert set(statuses(again).values()) == {"up-to-date"}
    assert processed["inputs"].output_path.stat().st_mtime_ns == before


def test_changed_parameter_reruns_step_and_its_dependents(processed, tmp_path):
    inputs = copy_output(processed, tmp_path)
    config = dataclasses.replace(processed["config"],
                                 step_params={"load_recording": {"spike_limit": 2}})
    # Steps 1-5 here; the registry contract test follows the change through every dependent.
    result = statuses(run_recording(inputs, config, steps="1-5"))
    rerun = {"load_recording", *REGISTRY.dependents("load_recording")}
    assert rerun >= {"section_spike_times", "dense_noise_sta", "file_metadata"} and "section_time" not in rerun
    assert result == {step.name: "done" if step.name in rerun else "up-to-date" for step in REGISTRY.select("1-5")}
    with h5py.File(inputs.output_path) as h5:
        used = [h5[f"units/{u}/features/eimage_sta/metadata/n_spikes_used"][()] for u in h5["units"]]
    assert max(used) <= 2


def test_killed_inside_step3_resumes_without_recomputing(dataset, tmp_path):
    rec = dataset["recordings"][1]
    out = tmp_path / f"{rec['recording_id']}.h5"
    code = (
        "from mea_pipeline.config import PipelineConfig, RecordingInputs\n"
        "from mea_pipeline.runner import run_recording\n"
        f"run_recording(RecordingInputs({rec['recording_id']!r}, {str(out)!r}, {str(rec['cmcr'])!r}, "
        f"{str(rec['cmtr'])!r}), PipelineConfig().with_inputs(stimuli={str(dataset['stimuli_dir'])!r}, "
        f"playlist={dataset['playlist']!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=os.environ | {FAULT_ENV: "section_spike_times"})
    assert result.returncode == -9
    output = OutputFile(out)
    assert set(output.verified_records()) == {"load_recording", "section_time"}
    finished = {k: r.finished_at for k, r in output.verified_records().items()}
    inputs = RecordingInputs(rec["recording_id"], out, rec["cmcr"], rec["cmtr"])
    config = PipelineConfig().with_inputs(stimuli=dataset["stimuli_dir"], playlist=dataset["playlist"])
    result = statuses(run_recording(inputs, config, steps="1-5"))
    assert result["load_recording"] == result["section_time"] == "up-to-date"
    assert result["section_spike_times"] == "done"
    records = output.verified_records()
    assert {k: records[k].finished_at for k in finished} == finished
    assert set(records) == {step.name for step in REGISTRY.select("1-5")}


def test_missing_noise_movie_fails_step4_naming_the_file(processed, tmp_path):
    stimuli = tmp_path / "stimuli"
    shutil.copytree(processed["config"].stimuli, stimuli)
    noise = next(stimuli.glob("*dense_noise*.npy"))
    noise.unlink()
    inputs = copy_output(processed, tmp_path)
    config = processed["config"].with_inputs(stimuli=stimuli)
    with pytest.raises(StepFailed, match=noise.name) as failure:
        run_recording(inputs, config, steps="4")
    assert failure.value.step == "dense_noise_sta"
    states = OutputFile(inputs.output_path).step_states()
    assert states["dense_noise_sta"].startswith("failed") and states["section_spike_times"] == "done"


def test_bad_movie_json_fails_only_that_movie(processed, tmp_path):
    stimuli = tmp_path / "stimuli"
    shutil.copytree(processed["config"].stimuli, stimuli)
    bad_movie = processed["truth"]["movies"][1]
    (stimuli / f"{bad_movie}.json").write_text(json.dumps({"section_kwargs": {"start_frame": 0}}))
    inputs = copy_output(processed, tmp_path)
    config = processed["config"].with_inputs(stimuli=stimuli)
    run_step("section_spike_times", inputs, config)
    record = OutputFile(inputs.output_path).verified_records()["section_spike_times"]
    assert record.summary["failed_movies"] == [bad_movie]
    assert any(bad_movie in w and "trial_length_frame" in w for w in record.warnings)
    with h5py.File(inputs.output_path) as h5:
        unit = next(iter(h5["units"]))
        assert bad_movie not in h5[f"units/{unit}/spike_times_sectioned"]
        assert len(h5[f"units/{unit}/spike_times_sectioned"]) == len(processed["truth"]["movies"]) - 1


def test_unknown_playlist_is_a_clear_error(processed, tmp_path):
    inputs = copy_output(processed, tmp_path)
    config = processed["config"].with_inputs(playlist="no_such_playlist")
    with pytest.raises(StepFailed, match="unknown playlist 'no_such_playlist'"):
        run_step("section_time", inputs, config)


def test_missing_raw_file_is_a_clear_error(processed, tmp_path):
    inputs = RecordingInputs("x-Rec", tmp_path / "x-Rec.h5", tmp_path / "x-Rec.cmcr", tmp_path / "x-Rec-.cmtr")
    with pytest.raises(StepFailed, match="cmcr file not found"):
        run_step("load_recording", inputs, processed["config"])


def test_a_step_whose_last_attempt_failed_runs_again(processed, tmp_path):
    """Outputs of an earlier success stay intact after a failed attempt, but the step is not done."""
    inputs, config = copy_output(processed, tmp_path), processed["config"]
    OutputFile(inputs.output_path).record_failure("soma_geometry", "OSError: drive went away")
    assert not is_complete(inputs, config)
    # Step 6 and what reads it (step 11 registers the stimulus to the somas).
    rerun = ["soma_geometry", *REGISTRY.dependents("soma_geometry")]
    result = statuses(run_recording(inputs, config, steps=",".join(rerun)))
    assert result == dict.fromkeys(rerun, "done")
    assert is_complete(inputs, config)
    assert OutputFile(inputs.output_path).step_states()["soma_geometry"] == "done"
