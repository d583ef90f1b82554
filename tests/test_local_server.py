"""Commands find the server `mea-pipeline server` started, and fall back when it is gone."""

from __future__ import annotations

import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mea_pipeline.cli import local_server


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/api/health" else 404)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args):
        pass


@pytest.fixture
def api(monkeypatch, tmp_path):
    """A stand-in answering Prefect's health check on 127.0.0.1, recorded as the running server."""
    monkeypatch.setenv(local_server.HOME_ENV, str(tmp_path))
    monkeypatch.setenv("PREFECT_API_URL", "")  # unset for connect(); restored after the test
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api"
    (tmp_path / "server.json").write_text(json.dumps({"api_url": url, "pid": 1}))
    yield url, server
    server.shutdown()


def test_a_command_connects_to_the_recorded_server(api):
    url, _ = api
    assert local_server.connect() == url
    assert os.environ["PREFECT_API_URL"] == url


def test_an_explicit_api_url_wins(api, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    assert local_server.connect() == "http://127.0.0.1:9/api"


def test_a_stopped_server_means_a_temporary_one(api):
    url, server = api
    server.shutdown()
    server.server_close()
    assert local_server.running_server() is None
    assert local_server.connect() is None


def test_a_server_other_machines_reach_always_requires_an_auth_string(tmp_path, monkeypatch):
    from mea_pipeline.cli import server_auth

    monkeypatch.delenv(server_auth.AUTH_ENV, raising=False)
    monkeypatch.delenv("PREFECT_SERVER_API_AUTH_STRING", raising=False)
    for host in ("127.0.0.1", "localhost", "::1"):
        assert server_auth.server_auth_string(host, tmp_path) is None
        assert "PREFECT_SERVER_API_AUTH_STRING" not in local_server.server_environment(host, 4200, None, None)
    assert not (tmp_path / "auth_string").exists()
    generated = server_auth.server_auth_string("0.0.0.0", tmp_path)
    assert generated and len(generated) > 30
    assert (tmp_path / "auth_string").stat().st_mode & 0o777 == 0o600
    assert server_auth.server_auth_string("192.168.1.20", tmp_path) == generated  # generated once
    assert server_auth.server_auth_string("127.0.0.1", tmp_path, require=True) == generated
    env = local_server.server_environment("0.0.0.0", 4200, None, generated)
    assert env["PREFECT_SERVER_API_AUTH_STRING"] == env["PREFECT_API_AUTH_STRING"] == generated
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:4200/api"
    assert "0.0.0.0" not in env["PREFECT_UI_API_URL"]  # other desks' browsers cannot use it
    # A string given in the environment replaces the stored one, stored owner-only too.
    monkeypatch.setenv(server_auth.AUTH_ENV, "lab:chosen")
    assert server_auth.server_auth_string("0.0.0.0", tmp_path) == "lab:chosen"
    (tmp_path / "auth_string").chmod(0o644)  # loosened by hand: read, and made owner-only again
    assert server_auth.read_auth_string(tmp_path) == "lab:chosen"
    assert (tmp_path / "auth_string").stat().st_mode & 0o777 == 0o600


def test_a_command_sends_the_auth_string_a_recorded_server_requires(api, monkeypatch, tmp_path):
    url, _ = api
    monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
    (tmp_path / "server.json").write_text(json.dumps({"api_url": url, "pid": 1, "auth": True}))
    (tmp_path / "auth_string").write_text("mea:secret\n")
    assert local_server.connect() == url
    assert os.environ["PREFECT_API_AUTH_STRING"] == "mea:secret"


def test_a_second_server_of_one_home_is_refused_and_the_first_keeps_its_record(api, capsys):
    url, _ = api
    record = (local_server.home() / "server.json").read_text()
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert local_server.serve_forever("127.0.0.1", port) == 1
    error = capsys.readouterr().err
    assert f"a mea-pipeline server already runs at {url}" in error and "MEA_PIPELINE_HOME=<folder>" in error
    assert (local_server.home() / "server.json").read_text() == record


def test_prefect_command_without_a_server_says_how_to_start_one(tmp_path, monkeypatch, capsys):
    from mea_pipeline.cli.main import main

    monkeypatch.setenv(local_server.HOME_ENV, str(tmp_path))
    monkeypatch.setenv("PREFECT_API_URL", "")
    assert main(["prefect", "deployment", "ls"]) != 0
    assert "start one with `mea-pipeline server`" in capsys.readouterr().err
