"""Commands find the server `mea-pipeline server` started, and fall back when it is gone."""

from __future__ import annotations

import json
import os
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
