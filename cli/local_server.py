"""The local Prefect server a lab runs with ``mea-pipeline server``, and how other commands find it.

``mea-pipeline server`` records its API address in ``<MEA_PIPELINE_HOME>/server.json`` (default
``~/.mea-pipeline``); every other command that runs flows reads it and, when that server answers,
talks to it (with its auth string, :mod:`server_auth`), so its runs appear in the UI without
anybody exporting ``PREFECT_API_URL``; ``mea-pipeline prefect ...`` runs Prefect's own command line
the same way. When no server runs, Prefect starts a temporary one for the command (its runs
vanish with it). An explicitly set ``PREFECT_API_URL`` always wins.

One home, one server: a second server started while the recorded one answers is refused (a
second server on the machine gets a home of its own, ``MEA_PIPELINE_HOME``), so no server ever
takes another's record, and stopping one never leaves the other unrecorded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .server_auth import auth_file, read_auth_string, server_auth_string

HOME_ENV = "MEA_PIPELINE_HOME"
HEALTH_TIMEOUT_S = 0.5
START_TIMEOUT_S = 120
WILDCARD_HOSTS = ("0.0.0.0", "::")


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


def server_record() -> dict | None:
    """What ``server.json`` records (``api_url``, ``pid``, ``auth``), if that server still answers."""
    try:
        record = json.loads(server_file().read_text())
        url = record["api_url"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record if healthy(url) else None


def running_server() -> str | None:
    """API address of the server ``mea-pipeline server`` started, if it is still answering."""
    record = server_record()
    return record["api_url"] if record else None


def connect() -> str | None:
    """Point this process's Prefect client at the running local server; returns its API address.

    Must run before Prefect is imported. Returns None (Prefect will start a temporary server)
    when none answers; an explicit ``PREFECT_API_URL`` is kept as it is. A server that requires
    an auth string gets the stored one (unless ``PREFECT_API_AUTH_STRING`` is set).
    """
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    record = server_record()
    if not record:
        return None
    os.environ["PREFECT_API_URL"] = record["api_url"]
    if record.get("auth") and not os.environ.get("PREFECT_API_AUTH_STRING"):
        stored = read_auth_string(home())
        if stored:
            os.environ["PREFECT_API_AUTH_STRING"] = stored
    return record["api_url"]


def server_environment(host: str, port: int, database_url: str | None, auth_string: str | None) -> dict:
    """Environment of ``prefect server start`` on ``host:port``.

    The UI is told its API address (otherwise it talks to port 4200 whatever the port): on a
    wildcard address (``0.0.0.0``) the machine's name, which other desks reach. The SQLite
    database lives in ``PREFECT_HOME`` (default ``<MEA_PIPELINE_HOME>/prefect``) unless a
    PostgreSQL URL is given.
    """
    public = socket.getfqdn() if host in WILDCARD_HOSTS else host
    env = os.environ | {
        "PREFECT_HOME": os.environ.get("PREFECT_HOME") or str(home() / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": host,
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_API_URL": os.environ.get("PREFECT_UI_API_URL") or f"http://{public}:{port}/api",
        "PREFECT_API_URL": local_api_url(host, port),
    }
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    if auth_string:
        env |= {"PREFECT_SERVER_API_AUTH_STRING": auth_string, "PREFECT_API_AUTH_STRING": auth_string}
    else:
        env.pop("PREFECT_SERVER_API_AUTH_STRING", None)
    return env


def local_api_url(host: str, port: int) -> str:
    """The API address commands on this machine use (loopback for a wildcard address)."""
    return f"http://{'127.0.0.1' if host in WILDCARD_HOSTS else host}:{port}/api"


def serve_forever(host: str, port: int, database_url: str | None = None, require_auth: bool = False) -> int:
    """Run ``prefect server start`` on ``host:port`` until interrupted; returns its exit code.

    On an address other machines reach (or with ``require_auth``) the API requires an auth
    string (:func:`server_auth.server_auth_string`). ``server.json`` is written once the API
    answers and removed when the server stops.
    """
    api_url = local_api_url(host, port)
    if healthy(api_url):
        print(f"a Prefect server already answers at {api_url}; UI at {api_url.removesuffix('/api')}")
        return 1
    other = server_record()
    if other:
        print(f"error: a mea-pipeline server already runs at {other['api_url']} (pid {other.get('pid')}, recorded "
              f"in {server_file()}), and every command of this home reports to it. Stop it first, or give this "
              f"one a home of its own: {HOME_ENV}=<folder> mea-pipeline server --port {port}", file=sys.stderr)
        return 1
    auth_string = server_auth_string(host, home(), require_auth)
    env = server_environment(host, port, database_url, auth_string)
    Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)  # SQLite does not create its folder
    database = "PostgreSQL" if "postgresql" in env.get("PREFECT_API_DATABASE_CONNECTION_URL", "") else \
        f"SQLite in {env['PREFECT_HOME']}"
    print(f"starting the Prefect server on {host}:{port} (a new database is created first: up to a minute)",
          flush=True)
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
        server_file().write_text(json.dumps({"api_url": api_url, "pid": process.pid, "auth": bool(auth_string)}))
        print(f"Prefect UI at {env['PREFECT_UI_API_URL'].removesuffix('/api')}  ({database}); every mea-pipeline "
              f"command on this machine now reports to it. Stop with Ctrl-C.", flush=True)
        if auth_string:
            print(f"The API and the UI ask for the auth string in {auth_file(home())} (readable by you only); "
                  f"this machine's mea-pipeline commands use it. A worker elsewhere: PREFECT_API_URL="
                  f"{env['PREFECT_UI_API_URL']} PREFECT_API_AUTH_STRING=<that string> prefect worker start ...",
                  flush=True)
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
