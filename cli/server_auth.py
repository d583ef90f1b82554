"""The auth string that keeps a shared ``mea-pipeline server`` closed to the network.

Prefect 3.9's self-hosted server checks HTTP basic authentication when it is started with
``PREFECT_SERVER_API_AUTH_STRING`` (every API request but the health check needs it; the UI asks
for it); its clients send ``PREFECT_API_AUTH_STRING``. A server bound to an address other machines
can reach always has one: given in ``MEA_PIPELINE_AUTH_STRING``, or generated once. Either way
it is kept in ``<MEA_PIPELINE_HOME>/auth_string``, readable by its owner only, where every
``mea-pipeline`` command on the machine finds it. A loopback server needs none (only this
machine reaches it) unless asked for one.

Not covered by Prefect's check: the events websocket (``/api/events/in``, Prefect issue 17687).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import stat
from pathlib import Path

AUTH_ENV = "MEA_PIPELINE_AUTH_STRING"
AUTH_FILE = "auth_string"
USER = "mea"  # the UI's login asks for the whole string; the user part only makes it look like one


def is_loopback(host: str) -> bool:
    """True for an address only this machine reaches (127.0.0.0/8, ::1, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: others may resolve it to this machine
        return False


def auth_file(home: Path) -> Path:
    return home / AUTH_FILE


def server_auth_string(host: str, home: Path, require: bool = False) -> str | None:
    """The auth string a server on ``host`` requires, stored for the commands; None on loopback.

    ``MEA_PIPELINE_AUTH_STRING`` when set (then stored), else the stored one, else a new one.
    """
    given = os.environ.get(AUTH_ENV)
    if not given and is_loopback(host) and not require:
        return None
    path = auth_file(home)
    if given:
        _write_private(path, given)
        return given
    stored = read_auth_string(home)
    if stored:
        return stored
    generated = f"{USER}:{secrets.token_urlsafe(24)}"
    _write_private(path, generated)
    return generated


def read_auth_string(home: Path) -> str | None:
    """The stored auth string, made owner-only if it was not."""
    path = auth_file(home)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(0o600)  # written by hand, say: nobody else may read it
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file only its owner can read (never a moment readable by others)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text + "\n")
    os.replace(temporary, path)
