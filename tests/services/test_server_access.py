"""A server that is safe to share, and servers that never take each other's place.

A server that requires its auth string (what ``--host 0.0.0.0`` always does; here ``--require-auth``
on 127.0.0.1, since test servers never listen beyond this machine) answers 401 to a request
without it, while ``mea-pipeline`` commands and ``mea-pipeline prefect`` use the stored string on
their own. A second server started in the same home is refused and the first keeps its record; a
second server with a home of its own runs beside it, and stopping it leaves the first recorded.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lab_server import BIN, batch_run, free_port, running_server, write_config

pytestmark = pytest.mark.services


def status_of(request: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_server_requiring_its_auth_string_refuses_others_and_runs_the_labs_commands(synth_dataset, tmp_path):
    with running_server(tmp_path / "server", None, "--require-auth") as server:
        home = Path(server.env["MEA_PIPELINE_HOME"])
        assert (home / "auth_string").stat().st_mode & 0o777 == 0o600
        filter_runs = f"{server.api_url}/flow_runs/filter"
        assert status_of(urllib.request.Request(filter_runs, data=b"{}", method="POST",
                                                headers={"Content-Type": "application/json"})) == 401
        assert status_of(urllib.request.Request(f"{server.api_url}/deployments/filter", data=b"{}", method="POST",
                                                headers={"Content-Type": "application/json",
                                                         "Authorization": "Basic bWVhOndyb25n"})) == 401
        # The UI asks for the string (its settings say so).
        with urllib.request.urlopen(f"{server.ui_url}/ui-settings", timeout=10) as reply:
            assert json.load(reply)["auth"] == "BASIC"
        config = write_config(tmp_path / "auth.toml", synth_dataset, tmp_path / "out")
        result = server.run("mea-pipeline", "batch", "--config", config, "--end", "1", "--steps", "1-2")
        assert result.returncode == 0, result.stdout + result.stderr
        with server.client() as client:
            run = batch_run(client, result.stdout)
        assert run.state.is_completed()
        inspected = server.run("mea-pipeline", "prefect", "flow-run", "inspect", str(run.id))
        assert inspected.returncode == 0 and run.name in inspected.stdout, inspected.stdout + inspected.stderr


def test_two_servers_on_one_machine_each_keep_their_own_record(tmp_path):
    with running_server(tmp_path / "first") as first:
        record = Path(first.env["MEA_PIPELINE_HOME"]) / "server.json"
        kept = record.read_text()
        refused = subprocess.run([str(BIN / "mea-pipeline"), "server", "--host", "127.0.0.1", "--port",
                                  str(free_port())], env=first.env, capture_output=True, text=True, timeout=120)
        assert refused.returncode == 1
        assert f"a mea-pipeline server already runs at {first.api_url}" in refused.stderr
        assert record.read_text() == kept
        with running_server(tmp_path / "second") as second:
            assert json.loads((Path(second.env["MEA_PIPELINE_HOME"]) / "server.json").read_text())["api_url"] \
                == second.api_url
            assert record.read_text() == kept
        assert record.read_text() == kept  # stopping the second took nothing from the first
        assert first.run("mea-pipeline", "prefect", "flow-run", "ls").returncode == 0
