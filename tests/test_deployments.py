"""Deployments are defined once (deployments/specs.py): ``serve`` and ``prefect.yaml`` both come from the list."""

from __future__ import annotations

from pathlib import Path

import yaml

from mea_pipeline.cli.main import main
from mea_pipeline.deployments.specs import BATCH_FLOW, DEPLOYMENTS, prefect_yaml

ROOT = Path(__file__).resolve().parents[1]


def test_committed_prefect_yaml_is_the_generated_one(capsys):
    committed = (ROOT / "deployments" / "prefect.yaml").read_text()
    assert committed == prefect_yaml(), "regenerate: mea-pipeline prefect-yaml > deployments/prefect.yaml"
    assert main(["prefect-yaml"]) == 0
    assert capsys.readouterr().out == committed


def test_work_pool_file_holds_every_deployment_with_the_config_from_the_environment():
    entries = {entry["name"]: entry for entry in yaml.safe_load(prefect_yaml())["deployments"]}
    assert list(entries) == [spec.name for spec in DEPLOYMENTS]
    assert entries["workers"]["entrypoint"] == "mea_pipeline.flows.process_recording.process_recording"
    assert entries["rerun-failed"]["parameters"] == {"config_file": "{{ $MEA_PIPELINE_CONFIG }}", "only_failed": True}
    assert entries["nightly"]["schedules"] == [{"cron": "0 2 * * *", "timezone": "Europe/Berlin", "active": True}]
    assert all(entry["work_pool"]["job_variables"]["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30"
               for entry in entries.values())


def test_serve_builds_the_batch_deployments_from_the_same_list():
    from mea_pipeline.deployments.serve import deployments

    base = {"config_file": "/data/pipeline.toml"}
    served = {d.name: d for d in deployments(base, cron="30 1 * * *", timezone="UTC")}
    specs = [spec for spec in DEPLOYMENTS if spec.served]
    assert list(served) == [spec.name for spec in specs] == ["nightly", "rerun-failed", "batch"]
    assert all(spec.entrypoint == BATCH_FLOW for spec in specs)
    for spec in specs:
        deployment = served[spec.name]
        assert deployment.flow_name == "batch_all_steps"
        assert deployment.parameters == base | spec.parameters
        assert deployment.tags == ["mea-pipeline", *spec.tags]
        assert deployment.description == spec.description
        assert (deployment.concurrency_limit or None) == spec.concurrency_limit
        assert [s.schedule.cron for s in deployment.schedules] == (["30 1 * * *"] if spec.nightly else [])
