"""Prefect orchestration: the batch command line, the cache contract, staged runs, isolation."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.settings import PREFECT_API_URL

from mea_pipeline import runner
from mea_pipeline.cli.main import main
from mea_pipeline.config import PipelineConfig
from mea_pipeline.flows.process_recording import process_recording
from mea_pipeline.mapping import recordings
from mea_pipeline.steps import REGISTRY
from mea_pipeline.synth import load_truth

ROOT = Path(__file__).resolve().parents[1]
ALL_STEPS = {step.name for step in REGISTRY.select(None)}  # the dataset config enables no optional step


@pytest.fixture
def body_calls(monkeypatch, prefect_server):
    """Step bodies actually executed (a Cached task run executes none)."""
    calls = []
    real = runner.run_step

    def counting(name, recording, config, force=False, **kwargs):
        calls.append(name)
        return real(name, recording, config, force=force, **kwargs)

    monkeypatch.setattr(runner, "run_step", counting)
    return calls


def batch(dataset, output, *args) -> int:
    return main(["batch", "--csv", str(dataset["mapping_csv"]), "--output", str(output),
                 "--config", str(dataset["config_file"]), *args])


def ui_run_id(out: str) -> str:
    """The flow run a command printed as its ``In the UI: <url>`` line."""
    return re.search(r"^In the UI: \S+/flow-run/([0-9a-f-]{36})$", out, re.MULTILINE)[1]


def task_states(flow_state) -> dict[str, str]:
    """Final state name of each task run of the flow run (the server records them shortly after)."""
    deadline = time.monotonic() + 60
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[flow_state.state_details.flow_run_id])))
            if all(run.state and run.state.is_final() for run in runs) or time.monotonic() > deadline:
                return {run.name.split("-")[0]: run.state.name if run.state else "no state" for run in runs}
            time.sleep(0.5)


@pytest.fixture(scope="module")
def finished(dataset, tmp_path_factory, prefect_server):
    """A finished batch over the whole synthetic dataset."""
    output = tmp_path_factory.mktemp("batch")
    assert batch(dataset, output) == 0
    config = PipelineConfig.load(dataset["config_file"], REGISTRY)
    return {"output": output, "config": config, "recordings": recordings(dataset["mapping_csv"], output)}


def rerun(finished, recording, config=None):
    state = process_recording(recording, config or finished["config"], return_state=True)
    assert state.is_completed(), state.message
    return task_states(state)


def qc_artifacts(flow_state) -> list:
    """The QC markdown artifacts of a recording's run."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return [a for a in client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_state.state_details.flow_run_id])))
                if a.type == "markdown"]


def test_seed_workflow_start_end_then_full_then_overwrite(dataset, tmp_path, capsys, body_calls):
    # Steps 1-9: the row selection, skip and overwrite logic is the same for every step, and the
    # `finished` batch below runs all 11.
    steps = ("--steps", "1-9")
    assert batch(dataset, tmp_path, "--start", "0", "--end", "2", "--debug", *steps) == 0
    out = capsys.readouterr().out
    assert "[1/2] " in out and "[2/2] " in out and "Units: " in out and "Steps: 9 (all computed)" in out
    assert re.search(r"^In the UI: http://127\.0\.0\.1:\d+/runs/flow-run/[0-9a-f-]{36}$", out, re.MULTILINE)
    assert "2 successful, 0 skipped, 0 failed" in out
    assert batch(dataset, tmp_path, *steps) == 0
    assert "1 successful, 2 skipped, 0 failed" in capsys.readouterr().out
    body_calls.clear()
    assert batch(dataset, tmp_path, "--overwrite", *steps) == 0
    assert "3 successful, 0 skipped, 0 failed" in capsys.readouterr().out
    assert len(body_calls) == 3 * 9  # recomputed, not taken from the cache


def test_batch_runs_are_named_by_trigger_time_and_source_and_every_run_carries_the_project_tags(
        dataset, tmp_path, capsys, prefect_server):
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilterParentFlowRunId

    from mea_pipeline.flows.run_labels import summary_key

    names = []
    for _ in range(2):  # two batches over the same rows, as a lab may start them on one day
        assert batch(dataset, tmp_path, "--end", "1", "--steps", "1-2", "--overwrite") == 0
        run_id = ui_run_id(capsys.readouterr().out)
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(run_id)
            assert re.fullmatch(r"cli \d{4}-\d\d-\d\d \d\d:\d\d:\d\d mapping\.csv rows 0-1", run.name), run.name
            assert {"mea-pipeline", "trigger:cli", "csv:mapping.csv", "rows:0-1"} <= set(run.tags)
            recordings = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run.id])))
            [recording] = recordings
            assert {"mea-pipeline", "trigger:cli"} <= set(recording.tags), recording.tags
            [artifact] = [a for a in client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))) if a.type == "table"]
            assert artifact.key == summary_key(run.name) and artifact.key.startswith("batch-summary-cli-")
            assert artifact.description.startswith("0 failed, 1 successful, 0 skipped (of 1) in ")
        names.append(run.name)
        time.sleep(1)  # names are to the second
    assert names[0] != names[1]


def test_a_finished_recordings_line_says_which_steps_were_computed():
    from mea_pipeline.flows.process_recording import counts_line

    done = {"n_units": 6, "completed_steps": ["a", "b", "c"]}
    assert counts_line(done | {"computed": ["c"], "cached": ["a", "b"]}) == "Units: 6, Steps: 3 (computed: c; 2 cached)"
    assert counts_line(done | {"computed": [], "cached": ["a", "b", "c"]}) == "Units: 6, Steps: 3 (all cached)"
    assert counts_line(done) == "Units: 6, Steps: 3"  # a worker's run: the batch reads only the file


def test_the_summary_table_shows_file_names_where_the_message_has_paths():
    from mea_pipeline.flows.batch_report import without_folders

    assert without_folders("/data/2024/a_b/x-.cmtr: truncated; see C:\\lab\\m.npy, 1/2 done") == \
        "x-.cmtr: truncated; see m.npy, 1/2 done"


def test_script_entry_point(dataset, tmp_path, prefect_server):
    env = os.environ | {"PREFECT_API_URL": PREFECT_API_URL.value()}
    result = subprocess.run(
        [sys.executable, str(ROOT / "flows" / "batch_all_steps.py"), "--csv", str(dataset["mapping_csv"]),
         "--output", str(tmp_path), "--stimuli", str(dataset["stimuli_dir"]), "--playlist", dataset["playlist"],
         "--start", "0", "--end", "1", "--steps", "1-2"],
        env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "[1/1] " in result.stdout and "1 successful" in result.stdout


def test_each_recording_run_holds_its_own_step_lines(finished):
    """The batch's recording runs (subflows of its tasks) log their step lines on themselves."""
    from prefect.client.schemas.filters import FlowRunFilterName, LogFilter, LogFilterFlowRunId

    wanted = {f"rec-{r.recording_id}" for r in finished["recordings"]}
    deadline, found = time.monotonic() + 60, {}
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=sorted(wanted))))
        assert {run.name for run in runs} == wanted
        while time.monotonic() < deadline and len(found) < len(wanted):  # logs reach the server in batches
            for run in runs:
                logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
                lines = [log.message for log in logs if log.task_run_id is None]
                if any(line.startswith("load_recording: done in ") for line in lines):
                    found[run.name] = lines
            time.sleep(1)
    assert set(found) == wanted


def test_rerun_of_finished_recording_is_all_cached_and_still_shows_its_qc(finished, body_calls):
    recording = finished["recordings"][0]
    state = process_recording(recording, finished["config"], return_state=True)
    assert task_states(state) == {name: "Cached" for name in ALL_STEPS | {"qc_report"}} | {"preflight": "Completed"}
    assert body_calls == []
    [qc] = qc_artifacts(state)  # the figures come from the cache, the report is on this run too
    assert qc.key == f"qc-{recording.recording_id.lower().replace('.', '-')}"
    assert qc.data.count("](data:image/png;base64,") == 4


def test_recheck_of_finished_batch_runs_no_step_body(dataset, finished, body_calls, capsys):
    assert batch(dataset, finished["output"], "--recheck") == 0
    assert "3 successful" in capsys.readouterr().out
    assert body_calls == []


def test_changed_parameter_reruns_step_and_dependents_only(finished, body_calls):
    config = dataclasses.replace(finished["config"],
                                 step_params={"section_time": {"edge_threshold": 0.4}})
    states = rerun(finished, finished["recordings"][1], config)
    assert sorted(body_calls) == sorted(["section_time", *ALL_STEPS.intersection(REGISTRY.dependents("section_time"))])
    assert states["load_recording"] == states["file_metadata"] == "Cached"
    assert states["section_time"] == "Completed"


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_damaged_output_never_hits_the_cache(finished, body_calls, damage):
    recording = finished["recordings"][2]
    if damage == "deleted":
        recording.output_path.unlink()
    else:
        data = recording.output_path.read_bytes()
        recording.output_path.write_bytes(data[: len(data) // 3])
    states = rerun(finished, recording)
    assert sorted(body_calls) == sorted(ALL_STEPS)
    assert "Cached" not in [states[name] for name in ALL_STEPS]


def test_edited_output_reruns_the_edited_step(finished, body_calls):
    recording = finished["recordings"][0]
    with h5py.File(recording.output_path, "r+") as h5:
        unit = next(iter(h5["units"]))
        noise = next(k for k in h5[f"units/{unit}/features"] if k.startswith("sta_"))
        h5[f"units/{unit}/features/{noise}/data"][0, 0, 0] += 1.0
    states = rerun(finished, recording)
    assert body_calls == ["dense_noise_sta", *(s for s in REGISTRY.dependents("dense_noise_sta") if s in ALL_STEPS)]
    assert states["dense_noise_sta"] == "Completed" and states["load_recording"] == "Cached"


def test_enabled_nwb_export_runs_in_the_flow_cached_and_after_an_upstream_change(finished, body_calls):
    recording = finished["recordings"][0]
    nwb = recording.output_path.with_suffix(".nwb")
    assert not nwb.exists()  # off by default: the batch wrote none
    enabled = dataclasses.replace(finished["config"], enabled_steps=("nwb_export",))
    states = rerun(finished, recording, enabled)
    assert body_calls == ["nwb_export"] and states["nwb_export"] == "Completed"
    assert {states[name] for name in ALL_STEPS} == {"Cached"}
    exported = nwb.stat().st_mtime_ns

    body_calls.clear()
    states = rerun(finished, recording, enabled)
    assert body_calls == [] and states["nwb_export"] == "Cached" and nwb.stat().st_mtime_ns == exported

    changed = dataclasses.replace(enabled, step_params={"dsgc": {"n_permutations": 500}})
    body_calls.clear()
    states = rerun(finished, recording, changed)
    assert body_calls == ["dsgc", "nwb_export"] and states["nwb_export"] == "Completed"
    assert nwb.stat().st_mtime_ns != exported
    # Without the step, a rerun neither runs nor removes it.
    body_calls.clear()
    states = rerun(finished, recording, dataclasses.replace(changed, enabled_steps=()))
    assert body_calls == [] and "nwb_export" not in states and nwb.is_file()


def test_batch_steps_all_plus_the_optional_export_then_skips_complete_outputs(dataset, finished, capsys):
    assert batch(dataset, finished["output"], "--steps", "all,nwb_export") == 0
    assert "3 successful, 0 skipped, 0 failed" in capsys.readouterr().out
    enabled = dataclasses.replace(finished["config"], enabled_steps=("nwb_export",))
    for recording in finished["recordings"]:
        assert recording.output_path.with_suffix(".nwb").is_file()
        assert runner.is_complete(recording, enabled)
    assert batch(dataset, finished["output"], "--steps", "all,nwb_export") == 0
    assert "0 successful, 3 skipped, 0 failed" in capsys.readouterr().out


def test_a_step_stopped_by_its_time_limit_names_the_setting_that_raises_it(finished):
    from mea_pipeline.runner import StepFailed
    from mea_pipeline.store import OutputFile

    recording = finished["recordings"][2]
    limited = dataclasses.replace(finished["config"], timeouts={"rf_geometry": 0.2},
                                  step_params={"rf_geometry": {"threshold_fraction": 0.45}})  # not cached
    state = process_recording(recording, limited, return_state=True)
    assert state.is_failed()
    with pytest.raises(StepFailed) as failure:
        state.result()
    reason = "time limit: stopped after 0.2 s; raise it with [timeouts] rf_geometry = <seconds> in the config"
    assert (failure.value.step, failure.value.reason) == ("rf_geometry", reason)
    assert OutputFile(recording.output_path).step_states()["rf_geometry"] == f"failed: {reason}"


def test_staged_run_without_raw_files(dataset, tmp_path, prefect_server, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    source = dataset["recordings"][0]
    cmcr, cmtr = shutil.copy(source["cmcr"], raw), shutil.copy(source["cmtr"], raw)
    csv = tmp_path / "mapping.csv"
    pd.DataFrame({"cmcr_path": [cmcr], "cmtr_path": [cmtr], "matched": [True]}).to_csv(csv, index=False)
    staged = dataset | {"mapping_csv": csv}
    assert batch(staged, tmp_path / "out", "--steps", "1-5") == 0
    shutil.rmtree(raw)
    assert batch(staged, tmp_path / "out", "--steps", "6-9") == 0
    assert "1 successful" in capsys.readouterr().out
    assert batch(staged, tmp_path / "out", "--steps", "10-11") == 0
    assert "1 successful" in capsys.readouterr().out
    with h5py.File(tmp_path / "out" / f"{source['recording_id']}.h5") as h5:
        assert [s.decode() for s in h5["pipeline/completed_steps"][()]] == [s.name for s in REGISTRY.select(None)]


def test_sheet_is_fetched_once_per_batch_with_gspread_and_falls_back_to_the_csv(dataset, tmp_path, prefect_server,
                                                                                 capsys, monkeypatch):
    from google_standin import GoogleStandin, make_private_key_pem, tabs_of, write_credentials
    from mea_pipeline.sheet.source import API_BASE_ENV
    from mea_pipeline.sheet.table import read_table

    pem, public_key = make_private_key_pem()
    out = tmp_path / "out"
    tabs = tabs_of(read_table(dataset["gsheet_csv"]))
    with GoogleStandin(tabs, public_key=public_key) as standin:
        monkeypatch.setenv(API_BASE_ENV, standin.base_url)
        credentials = write_credentials(tmp_path, pem, standin)
        assert batch(dataset, out, "--steps", "8", "--gsheet-credentials", str(credentials)) == 0
        counts = dict(standin.counts)
    # One fetch for the 3 recordings: one token, one lookup, the metadata, one values read per Data_ tab.
    assert counts == {"token": 1, "drive_files": 1, "spreadsheet": 2, "values": len(tabs)}
    assert "sheet: fetched 'MEA dashboard' (3 rows)" in capsys.readouterr().out
    snapshots = list(out.glob("gsheet_snapshot_*.csv"))
    assert len(snapshots) == 1
    for record in dataset["recordings"]:
        with h5py.File(out / f"{record['recording_id']}.h5") as h5:
            assert h5["metadata/gsheet_match/source"].asstr()[()] == "gspread"
            assert h5["metadata/gsheet_match/table"].asstr()[()] == str(snapshots[0])
            assert h5["metadata/gsheet_row/Center_xy"].asstr()[()] == load_truth(record["truth"])["sheet"]["center_xy"]
    # The stand-in is gone: the batch reads the CSV export and says so, in its output and in the files.
    assert batch(dataset, out, "--steps", "8", "--overwrite", "--gsheet-credentials", str(credentials)) == 0
    assert "using --gsheet-csv" in capsys.readouterr().out
    with h5py.File(out / f"{dataset['recordings'][0]['recording_id']}.h5") as h5:
        assert h5["metadata/gsheet_match/source"].asstr()[()].startswith("csv (gspread failed")


def test_corrupt_cmtr_fails_alone(dataset, tmp_path, prefect_server, capsys):
    bad = tmp_path / Path(dataset["recordings"][1]["cmtr"]).name
    bad.write_bytes(b"this is not an HDF5 file" * 100)
    table = pd.read_csv(dataset["mapping_csv"])
    table.loc[1, "cmtr_path"] = str(bad)
    csv = tmp_path / "mapping.csv"
    table.to_csv(csv, index=False)
    # Steps 1-5: the failure is in step 1; the good recordings only need to finish around it.
    assert batch(dataset | {"mapping_csv": csv}, tmp_path / "out", "--concurrency", "2", "--steps", "1-5") == 1
    out = capsys.readouterr().out
    assert "2 successful, 0 skipped, 1 failed" in out
    failed_id = dataset["recordings"][1]["recording_id"]
    # Its pre-flight finds the file is not HDF5 before any raw read, and records that on step 1.
    assert f"FAILED {failed_id} at preflight" in out and str(bad.name) in out
    assert main(["status", "--output", str(tmp_path / "out")]) == 1  # a failure is recorded
    status = capsys.readouterr().out
    assert f"{failed_id} load_recording: failed: pre-flight: " in status
    assert status.splitlines()[0].split()[1:] == [s.name for s in REGISTRY]  # no name cut short
    # The refused recording is a red run of its own, the reason (naming the file) its state message.
    from prefect.client.schemas.filters import FlowRunFilterName

    with get_client(sync_client=True) as client:
        runs = [run for run in client.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(any_=[f"rec-{failed_id}"]))) if str(bad) in (run.state.message or "")]
    assert len(runs) == 1 and runs[0].state.is_failed(), [(r.name, r.state) for r in runs]
    assert f"{failed_id}: refused by pre-flight: {bad}" in runs[0].state.message
    assert task_states(runs[0].state) == {"preflight": "Failed"}  # no step ran
    # The batch's task of that recording says why once: no repr of its state, no stray traceback.
    from prefect.client.schemas.filters import LogFilter, LogFilterTaskRunId, TaskRunFilter, TaskRunFilterName

    batch_id = ui_run_id(out)
    deadline = time.monotonic() + 60
    with get_client(sync_client=True) as client:
        [task_run] = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[batch_id])),
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(any_=[f"recording-{failed_id}"])))
        while True:  # logs reach the server in batches
            logs = [log.message for log in client.read_logs(log_filter=LogFilter(
                task_run_id=LogFilterTaskRunId(any_=[task_run.id])))]
            if any(line.startswith("Finished in state") for line in logs) or time.monotonic() > deadline:
                break
            time.sleep(1)
    assert sum(str(bad) in line for line in logs) == 1, logs
    assert not any("result={" in line or "NoneType: None" in line for line in logs), logs
    # The refused recording's own run says it without the engine's traceback, once per run and task.
    from prefect.client.schemas.filters import LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        logs = [log.message for log in client.read_logs(log_filter=LogFilter(
            flow_run_id=LogFilterFlowRunId(any_=[runs[0].id])))]
    assert not any("Traceback" in line for line in logs), logs
    assert sum(str(bad) in line for line in logs) <= 2, logs
    # Rerunning the failed one links the two batches (it fails again: the file is still damaged).
    assert batch(dataset | {"mapping_csv": csv}, tmp_path / "out", "--only-failed", "--steps", "1-5") == 1
    rerun_out = capsys.readouterr().out
    rerun_id = ui_run_id(rerun_out)
    with get_client(sync_client=True) as client:
        first, again = client.read_flow_run(batch_id), client.read_flow_run(rerun_id)
    assert f"reruns the failures of: {first.name}" in rerun_out
    assert f"rerun-of:{first.name}" in again.tags and f"rerun-in:{again.name}" in first.tags


def test_resume_adds_the_steps_a_file_lacks(dataset, tmp_path, prefect_server, capsys):
    assert batch(dataset, tmp_path, "--start", "2", "--steps", "1-2") == 0
    output = tmp_path / f"{dataset['recordings'][2]['recording_id']}.h5"
    assert main(["resume", str(output), "--config", str(dataset["config_file"])]) == 0
    assert f"Steps: {len(ALL_STEPS)}" in capsys.readouterr().out
    assert main(["resume", str(output)]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_deployment_flow_applies_the_config_batch_options(dataset, tmp_path, prefect_server):
    """A deployment passes only config_file: [batch] path_map, concurrency and start reach the flow."""
    from mea_pipeline.flows.batch_all_steps import batch_all_steps

    table = pd.read_csv(dataset["mapping_csv"])
    folder = Path(table.loc[0, "cmcr_path"]).parent
    for column in ("cmcr_path", "cmtr_path"):
        table[column] = [f"Q:\\lab\\{Path(p).name}" for p in table[column]]
    csv = tmp_path / "windows.csv"
    table.to_csv(csv, index=False)
    config = tmp_path / "pipeline.toml"
    config.write_text(
        f'stimuli = "{dataset["stimuli_dir"]}"\nplaylist = "{dataset["playlist"]}"\n[batch]\n'
        f'csv = "{csv}"\noutput = "{tmp_path / "out"}"\nstart = 1\nconcurrency = 2\nsteps = "1-2"\n'
        f'path_map = ["Q:\\\\lab\\\\={folder}/"]\n')
    state = batch_all_steps(config_file=str(config), return_state=True)
    summary = state.result()
    assert summary["options"]["concurrency"] == 2 and summary["options"]["start"] == 1
    assert summary["total"] == 2 and summary["success"] == 2
    with get_client(sync_client=True) as client:  # named after the CSV [batch] gives, not the config file
        run = client.read_flow_run(state.state_details.flow_run_id)
    assert re.fullmatch(r"run \d{4}-\d\d-\d\d \d\d:\d\d:\d\d windows\.csv rows 1-end", run.name), run.name
    assert {"mea-pipeline", "csv:windows.csv", "rows:1-end"} <= set(run.tags)
