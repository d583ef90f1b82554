"""The raw recordings: the ``.cmcr`` (sensor data, analog channels) and the spike-sorted ``.cmtr``.

Fingerprint: size, mtime and a hash of the first 64 KiB (cheap on 80 GB files on a network
drive). They come from the mapping CSV, not from a flag; pre-flight reads each file's header.
"""

from __future__ import annotations

import re
from pathlib import Path

from .declaration import ExternalInput, file_fingerprint

_WINDOWS_PREFIX = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\[^\\]+\\[^\\]+\\)")


def windows_path_hint(path: str | Path | None) -> str:
    r"""How to fix a CSV path that is an unmapped Windows path (``M:\data\x.cmcr``); '' for other paths."""
    match = _WINDOWS_PREFIX.match(str(path or ""))
    if not match:
        return ""
    prefix = match.group(0)
    mount = f"/mnt/{prefix[0].lower()}/" if prefix[1] == ":" else "/mnt/share/"
    return f"; it is a Windows path: map it with --path-map '{prefix}={mount}' (where that share is mounted)"


def _header_check(kind: str):
    def check(report, rec, config) -> None:
        from ..mcs_io import McsFormatError, check_header

        path = getattr(rec, f"{kind}_path")
        try:
            check_header(path, kind)
        except McsFormatError as exc:
            hint = windows_path_hint(path) if path is None or not Path(path).exists() else ""
            report.error(f"{rec.recording_id}: {exc}{hint}")

    return check


CMCR = ExternalInput(
    "cmcr", "raw .cmcr recording (sensor data, analog channels)",
    fingerprint=lambda rec, config: file_fingerprint(rec.cmcr_path, "cmcr"),
    raw=True, check_recording=_header_check("cmcr"))
CMTR = ExternalInput(
    "cmtr", "spike-sorted .cmtr file",
    fingerprint=lambda rec, config: file_fingerprint(rec.cmtr_path, "cmtr"),
    raw=True, check_recording=_header_check("cmtr"))
