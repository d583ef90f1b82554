"""``mea-pipeline server`` stopped by a service manager (SIGTERM to it alone) takes Prefect's server with it."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from lab_server import SERVER_START_S, Server, free_port, stop

pytestmark = pytest.mark.services


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_stops_the_prefect_server_and_forgets_it(tmp_path):
    server = Server(tmp_path, free_port())
    process = server.start("mea-pipeline", "server", "--port", server.port, log=server.log)
    record = Path(server.env["MEA_PIPELINE_HOME"]) / "server.json"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not record.is_file():
            assert process.poll() is None and time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.5)
        prefect_pid = json.loads(record.read_text())["pid"]

        os.kill(process.pid, signal.SIGTERM)  # as systemd stops a service: the main process only
        process.wait(timeout=60)
        deadline = time.monotonic() + 30
        while alive(prefect_pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not alive(prefect_pid), f"Prefect's server (pid {prefect_pid}) outlived mea-pipeline server"
        assert not record.exists(), "server.json still names a stopped server"
    finally:
        stop(process)
