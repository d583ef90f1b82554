"""Issue 10's checks through a running server, with the deployments served by ``mea-pipeline serve``
(a subprocess, as a lab keeps it running) and started with ``prefect deployment run``.

The lab's sequence: recording A is processed; a batch over A and B whose config limits step 7
to 0.2 s skips A (complete) and fails B at step 7 (its time limit); ``rerun-failed`` reruns B
alone, from step 7 (steps 1-6 come back Cached); a recording C is added to the CSV and the nightly run processes it alone.
The tests run in this order, each on the state the previous one left.
"""

from __future__ import annotations

import shutil
import time

import pandas as pd
import pytest

from lab_server import batch_run, flow_run_id, stop, subflow_runs, task_run_states, write_config
from mea_pipeline.store import OutputFile
from mea_pipeline.synth import SynthSpec
from mea_pipeline.synth.dataset import write_recording

pytestmark = pytest.mark.services

BEFORE_RF = ["load_recording", "section_time", "section_spike_times", "dense_noise_sta", "file_metadata",
             "soma_geometry"]
FROM_RF = ["rf_geometry", "gsheet_metadata", "cell_type_labels", "ap_tracking", "dsgc"]
# The spec of the session's `synth_dataset` (tests/conftest.py), for one more recording like them.
SPEC = SynthSpec(n_units=10, profile="tiny", sensor_seconds=0.5)
SERVE_READY_S = 120


@pytest.fixture(scope="module")
def lab(mea_server, synth_dataset, tmp_path_factory):
    """A's output complete, B's failed at rf_geometry (stopped by its time limit); the second batch's output."""
    folder = tmp_path_factory.mktemp("lab")
    csv = shutil.copy(synth_dataset["mapping_csv"], folder / "mapping.csv")
    config = write_config(folder / "lab.toml", synth_dataset, folder / "out", csv)
    first = mea_server.run("mea-pipeline", "batch", "--config", config, "--end", "1")
    assert first.returncode == 0, first.stdout + first.stderr
    # A step stopped by its time limit is a failure a pre-flight cannot foresee (a corrupt model
    # file, say, stops the whole batch before it starts: tests/reliability).
    limited = folder / "lab-step7-limit.toml"
    limited.write_text(config.read_text() + "\n[timeouts]\nrf_geometry = 0.2\n")
    second = mea_server.run("mea-pipeline", "batch", "--config", limited)
    a, b = (r["recording_id"] for r in synth_dataset["recordings"])
    return {"folder": folder, "csv": csv, "config": config, "a": a, "b": b, "second": second,
            "output": lambda rid: folder / "out" / f"{rid}.h5"}


@pytest.fixture(scope="module")
def served(mea_server, lab):
    """``mea-pipeline serve --config lab.toml`` running, its deployments registered."""
    from prefect.exceptions import ObjectNotFound

    # The runner polls for runs every 10 s by default; 2 s keeps the test short.
    process = mea_server.start("mea-pipeline", "serve", "--config", lab["config"], log=lab["folder"] / "serve.log",
                               env=mea_server.env | {"PREFECT_RUNNER_POLL_FREQUENCY": "2"})
    deadline = time.monotonic() + SERVE_READY_S
    with mea_server.client() as client:
        while True:
            try:
                client.read_deployment_by_name("batch_all_steps/nightly")
                break
            except ObjectNotFound:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"serve did not register its deployments:\n{(lab['folder'] / 'serve.log').read_text()}")
                time.sleep(1)
    yield process
    stop(process)


def run_deployment(server, name: str):
    """``mea-pipeline prefect deployment run NAME --watch``, as the README writes it; the finished flow run."""
    result = server.run("mea-pipeline", "prefect", "deployment", "run", name, "--watch", "--watch-timeout", "600")
    assert "UUID:" in result.stdout, result.stdout + result.stderr
    with server.client() as client:
        return client.read_flow_run(flow_run_id(result.stdout))


def test_batch_with_a_step_timeout_skips_the_complete_recording_and_names_the_failed_one(lab):
    second = lab["second"]
    assert second.returncode == 1, second.stdout + second.stderr
    assert f"{lab['a']}: skipped (output complete)" in second.stdout
    assert f"FAILED {lab['b']} at rf_geometry: time limit: stopped after 0.2 s; raise it with [timeouts] " \
           f"rf_geometry = <seconds> in the config" in second.stdout
    states = OutputFile(lab["output"](lab["b"])).step_states()
    assert [states[name] for name in BEFORE_RF] == ["done"] * len(BEFORE_RF)
    assert states["rf_geometry"].startswith("failed: time limit: stopped after 0.2 s")


def test_rerun_failed_reruns_only_the_failed_recording_from_its_failed_step(mea_server, lab, served):
    a_before = lab["output"](lab["a"]).stat().st_mtime_ns
    run = run_deployment(mea_server, "batch_all_steps/rerun-failed")
    assert run.state.is_completed(), run.state.message
    assert run.state.message == "1 successful, 0 skipped"
    with mea_server.client() as client:
        failed_batch = batch_run(client, lab["second"].stdout)  # where B failed: the two name each other
        assert f"rerun-of:{failed_batch.name}" in run.tags and f"rerun-in:{run.name}" in failed_batch.tags
        assert {"mea-pipeline", "trigger:rerun-failed"} <= set(run.tags)
        subflows = subflow_runs(client, run.id)
        assert list(subflows) == [f"rec-{lab['b']}"]
        states = task_run_states(client, subflows[f"rec-{lab['b']}"].id)
    assert states == {**{name: "Cached" for name in BEFORE_RF}, **{name: "Completed" for name in FROM_RF},
                      "qc_report": "Completed", "preflight": "Completed"}
    assert set(OutputFile(lab["output"](lab["b"])).step_states().values()) == {"done"}
    assert lab["output"](lab["a"]).stat().st_mtime_ns == a_before


def test_nightly_processes_a_new_recording_and_skips_the_finished_ones(mea_server, synth_dataset, lab, served):
    new = write_recording(lab["folder"] / "new", "2024.01.19-09.30.00-Rec", SPEC, synth_dataset["stimuli_dir"],
                          synth_dataset["labels_dir"])
    table = pd.read_csv(lab["csv"])
    row = {"cmcr_path": str(new["cmcr"]), "cmtr_path": str(new["cmtr"]), "matched": True}
    pd.concat([table, pd.DataFrame([row])], ignore_index=True).to_csv(lab["csv"], index=False)

    run = run_deployment(mea_server, "batch_all_steps/nightly")
    assert run.state.is_completed(), run.state.message
    assert run.state.message == "1 successful, 2 skipped"
    assert "trigger:nightly" in run.tags
    with mea_server.client() as client:
        assert list(subflow_runs(client, run.id)) == [f"rec-{new['recording_id']}"]
    assert set(OutputFile(lab["output"](new["recording_id"])).step_states().values()) == {"done"}
