"""Helpers of the services tests: a ``mea-pipeline server`` run as a lab runs it, commands that
report to it, and what the tests read back from it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SERVER_START_S = 240  # a fresh database is migrated first; slow on a busy 2-core machine
COMMAND_TIMEOUT_S = 600


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A running ``mea-pipeline server`` and the environment of commands that report to it."""

    def __init__(self, folder: Path, port: int):
        self.folder = folder
        self.port = port
        self.ui_url = f"http://127.0.0.1:{port}"
        self.api_url = f"{self.ui_url}/api"
        self.log = folder / "server.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        # No PREFECT_API_URL: mea-pipeline commands find the server through MEA_PIPELINE_HOME.
        self.env = base | {"MEA_PIPELINE_HOME": str(folder / "mea-home"), "PREFECT_HOME": str(folder / "prefect-home"),
                           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}

    def prefect_env(self, **extra) -> dict:
        """Environment of ``prefect`` commands (deploy, worker, deployment run): they need the address."""
        return self.env | {"PREFECT_API_URL": self.api_url} | extra

    def run(self, *args, cwd: Path | None = None, env: dict | None = None, timeout=COMMAND_TIMEOUT_S):
        """Run ``mea-pipeline ...`` or ``prefect ...`` (from this venv) to the end; output captured."""
        command = [str(BIN / args[0]), *map(str, args[1:])]
        env = env or (self.prefect_env() if args[0] == "prefect" else self.env)
        return subprocess.run(command, cwd=cwd or self.folder, env=env, capture_output=True, text=True,
                              timeout=timeout)

    def start(self, *args, log: Path, env: dict | None = None) -> subprocess.Popen:
        """Start a long-running command (serve, worker) in its own process group, output to ``log``."""
        env = env or (self.prefect_env() if args[0] == "prefect" else self.env)
        with open(log, "w") as out:
            return subprocess.Popen([str(BIN / args[0]), *map(str, args[1:])], cwd=self.folder, env=env,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    @contextmanager
    def client(self):
        """A Prefect client of this server, in the test's process (with its auth string, if it has one)."""
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

        auth = Path(self.env["MEA_PIPELINE_HOME"]) / "auth_string"
        updates = {PREFECT_API_URL: self.api_url}
        if auth.is_file():
            updates[PREFECT_API_AUTH_STRING] = auth.read_text().strip()
        with temporary_settings(updates=updates), get_client(sync_client=True) as client:
            yield client


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """Interrupt a process started by :meth:`Server.start` (Ctrl-C, as a user would), then kill its group."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # children it left behind (the Prefect server, flow runs)
    except ProcessLookupError:
        pass
    process.wait()


@contextmanager
def running_server(folder: Path, database_url: str | None = None, *extra_args: str):
    """``mea-pipeline server`` on a free port of 127.0.0.1 with its own homes; stopped afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    server = Server(folder, free_port())
    args = ["mea-pipeline", "server", "--host", "127.0.0.1", "--port", server.port, *extra_args]
    if database_url:
        args += ["--database-url", database_url]
    process = server.start(*args, log=server.log)
    record = Path(server.env["MEA_PIPELINE_HOME"]) / "server.json"
    deadline = time.monotonic() + SERVER_START_S
    try:
        while not record.is_file():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mea-pipeline server did not start:\n{server.log.read_text()[-3000:]}")
            time.sleep(0.5)
        assert json.loads(record.read_text())["api_url"] == server.api_url
        yield server
    finally:
        stop(process)


def write_config(path: Path, dataset: dict, output: Path, csv: Path | None = None, **extra_inputs) -> Path:
    """A config file with the synthetic dataset's inputs, ``[batch]`` csv and output, fast AP tracking.

    Step 10's CNN takes one to two minutes per tiny recording on a busy 2-core machine; these tests
    are about orchestration, so no unit is selected for it (the step still runs and records).
    """
    inputs = {"stimuli": str(dataset["stimuli_dir"]), "playlist": dataset["playlist"],
              "labels": str(dataset["labels_dir"]), "gsheet_csv": str(dataset["gsheet_csv"])} | extra_inputs
    lines = [f"{key} = {json.dumps(value)}" for key, value in inputs.items()]
    lines += ["", "[batch]", f"csv = {json.dumps(str(csv or dataset['mapping_csv']))}",
              f"output = {json.dumps(str(output))}",
              "", "[steps.ap_tracking]", 'cell_type_filter = "no unit has this label"',
              "track_all_when_unlabelled = false"]
    path.write_text("\n".join(lines) + "\n")
    return path


def subflow_runs(client, parent_id) -> dict:
    """The flow runs started by a batch run, by name (``rec-<id>``)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
        parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])))
    return {run.name: run for run in runs}


def task_run_states(client, flow_run_id) -> dict[str, str]:
    """State name of each task run of a flow run, by step (``load_recording-<id>`` -> ``load_recording``)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {run.name.split("-")[0]: run.state.name for run in runs}


def batch_run(client, output: str):
    """The flow run a ``mea-pipeline batch`` printed as its ``In the UI: <url>`` line."""
    line = next(line for line in output.splitlines() if line.startswith("In the UI: "))
    return client.read_flow_run(uuid.UUID(line.rsplit("/", 1)[1]))


def flow_run_id(output: str) -> uuid.UUID:
    """The flow run ``prefect deployment run`` created (its ``UUID:`` line)."""
    line = next(line for line in output.splitlines() if "UUID:" in line)
    return uuid.UUID(line.split("UUID:")[1].strip())
