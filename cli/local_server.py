"""The local Prefect server a lab runs with ``mea-pipeline server``, and how other commands find it.

``mea-pipeline server`` records its API address in ``<MEA_PIPELINE_HOME>/server.json`` (default
``~/.mea-pipeline``); every other command that runs flows reads it and, when that server answers,
talks to it, so its runs appear in the UI without anybody exporting ``PREFECT_API_URL``. When no
server runs, Prefect starts a temporary one for the command (its runs vanish with it). An
explicitly set ``PREFECT_API_URL`` always wins.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HOME_ENV = "MEA_PIPELINE_HOME"
HEALTH_TIMEOUT_S = 0.5
START_TIMEOUT_S = 120


def home() -> Path:
    return Path(os.environ.get(HOME_ENV) or "~/.mea-pipeline").expanduser()


def server_file() -> Path:
    return home() / "server.json"


def healthy(api_url: str, timeout_s: float = HEALTH_TIMEOUT_S) -> bool:
    """True when the Prefect API at ``api_url`` answers its health check."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout_s) as reply:
            return reply.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


def running_server() -> str | None:
    """API address of the server ``mea-pipeline server`` started, if it is still answering."""
    try:
        url = json.loads(server_file().read_text())["api_url"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return url if healthy(url) else None


def connect() -> str | None:
    """Point this process's Prefect client at the running local server; returns its API address.

    Must run before Prefect is imported. Returns None (Prefect will start a temporary server)
    when none answers; an explicit ``PREFECT_API_URL`` is kept as it is.
    """
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    url = running_server()
    if url:
        os.environ["PREFECT_API_URL"] = url
    return url


def serve_forever(host: str, port: int, database_url: str | None = None) -> int:
    """Run ``prefect server start`` on ``host:port`` until interrupted; returns its exit code.

    The UI is told its own API address (otherwise it talks to port 4200 whatever the port), the
    server's SQLite database lives in ``PREFECT_HOME`` (default ``<MEA_PIPELINE_HOME>/prefect``)
    unless a PostgreSQL URL is given, and ``server.json`` is written once the API answers and
    removed when the server stops.
    """
    api_url = f"http://{host}:{port}/api"
    if healthy(api_url):
        print(f"a Prefect server already answers at {api_url}; UI at http://{host}:{port}")
        return 1
    env = os.environ | {
        "PREFECT_HOME": os.environ.get("PREFECT_HOME") or str(home() / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": host,
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_API_URL": api_url,
        "PREFECT_API_URL": api_url,
    }
    Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)  # SQLite does not create its folder
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    database = "PostgreSQL" if "postgresql" in env.get("PREFECT_API_DATABASE_CONNECTION_URL", "") else \
        f"SQLite in {env['PREFECT_HOME']}"
    process = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", host,
                                "--port", str(port)], env=env)
    # Stopped by a service manager (SIGTERM): the Prefect server stops too, and server.json goes.
    signal.signal(signal.SIGTERM, lambda *_: process.send_signal(signal.SIGTERM))
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not healthy(api_url, timeout_s=2):
            if process.poll() is not None or time.monotonic() > deadline:
                print(f"error: the Prefect server did not start on {host}:{port} (is the port free?)", file=sys.stderr)
                process.terminate()
                return process.wait() or 1
            time.sleep(0.5)
        server_file().parent.mkdir(parents=True, exist_ok=True)
        server_file().write_text(json.dumps({"api_url": api_url, "pid": process.pid}))
        print(f"Prefect UI at http://{host}:{port}  ({database}); every mea-pipeline command on this "
              f"machine now reports to it. Stop with Ctrl-C.", flush=True)
        return process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        return process.wait()
    finally:
        _forget(process.pid)


def _forget(pid: int) -> None:
    try:
        if json.loads(server_file().read_text()).get("pid") == pid:
            server_file().unlink()
    except (OSError, ValueError):
        pass
