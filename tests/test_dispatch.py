"""Handing recordings to Prefect workers (``--via-deployment``): the per-recording flow's parameters
survive JSON, a worker's failure is read from the output file, mistakes are one line.

The workers themselves run in ``tests/services/test_workers.py`` (``make test-services``).
"""

from __future__ import annotations

import dataclasses
import json

from prefect.client.schemas.actions import DeploymentFlowRunCreate
from prefect.states import Crashed, Failed

from mea_pipeline.cli.main import main
from mea_pipeline.flows.dispatch import recorded_failure
from mea_pipeline.flows.process_recording import process_recording
from mea_pipeline.runner import plan_step
from mea_pipeline.steps import REGISTRY
from mea_pipeline.store import OutputFile
from output_copy import copy_output


def test_recording_and_config_survive_a_flow_runs_json_parameters(processed):
    """What run_deployment sends (JSON) and the worker's flow validates back: equal, same cache keys."""
    recording = processed["inputs"]
    config = dataclasses.replace(processed["config"], step_params={"section_time": {"edge_threshold": 0.4}},
                                 timeouts={"load_recording": 60.0})
    sent = DeploymentFlowRunCreate(parameters={"recording": recording, "config": config}).model_dump(mode="json")
    received = process_recording.validate_parameters(json.loads(json.dumps(sent["parameters"])))
    assert received["recording"] == recording and received["config"] == config
    assert [plan_step(step, received["recording"], received["config"]).cache_key for step in REGISTRY] == \
        [plan_step(step, recording, config).cache_key for step in REGISTRY]


def test_a_workers_failure_is_read_from_the_output_file(processed, tmp_path):
    output = copy_output(processed, tmp_path).output_path
    OutputFile(output).record_failure("dsgc", "ValueError: an older failure")
    OutputFile(output).record_failure("ap_tracking", "ModelError: bad weights")
    # The first selected step in run order holds this run's failure; later ones may be older.
    assert recorded_failure(Failed(), output, None) == ("ap_tracking", "ModelError: bad weights")
    assert recorded_failure(Failed(), output, "11") == ("dsgc", "ValueError: an older failure")
    # Nothing recorded (the worker's process died): the run's state says what happened.
    assert recorded_failure(Crashed(message="process exited with -9"), processed["inputs"].output_path, None) == \
        ("", "process exited with -9")


def test_via_deployment_mistakes_are_one_line(dataset, prefect_server, capsys):
    assert main(["batch", "--csv", "x.csv", "--via-deployment", "workers"]) == 2
    assert capsys.readouterr().err.strip() == ("error: --via-deployment 'workers': give it as <flow>/<deployment>, "
                                               "e.g. process_recording/workers")
    assert main(["batch", "--config", str(dataset["config_file"]), "--output", str(dataset["out_dir"] / "none"),
                 "--via-deployment", "process_recording/nowhere"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: deployment process_recording/nowhere not found on the Prefect server: deploy it with `prefect "
        "--no-prompt deploy --all --prefect-file deployments/prefect.yaml` "
        "(docs/operations.md, 'Scale-out: Prefect workers')")
