"""Which step records of an output file are verified, remembered by the file's identity.

Checking a record's digest re-reads every output of the step (minutes at 400 units: tens of
thousands of datasets). A record verified against the file as it is now stays verified until the
file changes, and every change, a commit (a new inode) or another program's edit, changes the
file's identity: inode, size, modification time and status-change time (which no program can set
back). The verified records are remembered in memory, and in the side file ``.<name>.verified``
next to the output as (cache key, digest) per step, so a new process (the next batch asking
whether a recording is complete) does not re-read the outputs either. A side file that is
missing, unreadable or of another identity only means the digests are checked again.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import h5py

from .digest import digest_paths
from .records import BOOKKEEPING, STEPS_GROUP, StepRecord

_MEMORY: dict[tuple, dict] = {}
_MEMORY_SIZE = 256


def verified_records(path: Path) -> dict[str, StepRecord]:
    """Records of steps that are done and whose outputs still match their digest.

    Checking a digest re-reads the step's outputs, so the answer is remembered for the file's
    identity: any write, ours (a new file) or an edit, changes it, and the outputs are read again.
    """
    identity = file_identity(path)
    if identity is None:
        return {}
    remembered = recall(path, identity)
    if remembered is not None:
        return remembered
    t0 = time.perf_counter()
    vouches = vouched(path, identity)
    try:
        h5 = h5py.File(path, "r")
    except OSError:  # unreadable (e.g. truncated): nothing is verified
        return {}
    with h5:
        if STEPS_GROUP not in h5:
            return {}
        verified = {}
        for name in h5[STEPS_GROUP]:
            record = StepRecord.read(h5, name)
            if record and record.status == "done" and (
                    vouches.get(name) == (record.cache_key, record.output_digest)
                    or digest_paths(h5, record.outputs) == record.output_digest):
                verified[name] = record
    if file_identity(path) == identity:  # not replaced while we read it
        remember(path, identity, verified,
                 write_side_file=vouches != {n: (r.cache_key, r.output_digest) for n, r in verified.items()})
    BOOKKEEPING.add("verify", time.perf_counter() - t0)
    return dict(verified)


def file_identity(path: Path) -> tuple | None:
    """(inode, size, mtime, ctime) in ns, or None when the file does not exist."""
    try:
        stat = path.stat()
    except (FileNotFoundError, NotADirectoryError):  # no file there (the folder may be a file)
        return None
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def side_file(path: Path) -> Path:
    return path.with_name(f".{path.name}.verified")


def recall(path: Path, identity: tuple) -> dict | None:
    """The verified records remembered in this process for the file at ``identity``."""
    records = _MEMORY.get((str(path.resolve()), identity))
    return None if records is None else dict(records)


def vouched(path: Path, identity: tuple) -> dict[str, tuple[str, str]]:
    """(cache key, digest) of each step the side file vouches for at ``identity``."""
    try:
        data = json.loads(side_file(path).read_text())
        if tuple(data["identity"]) != identity:
            return {}
        return {name: tuple(pair) for name, pair in data["verified"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def remember(path: Path, identity: tuple, records: dict, write_side_file: bool = True) -> None:
    """Remember ``records`` (StepRecords by step) as verified for the file at ``identity``.

    The side file is best effort: a read-only folder or a full disk only means the next process
    checks the digests again.
    """
    if len(_MEMORY) >= _MEMORY_SIZE:
        _MEMORY.pop(next(iter(_MEMORY)))
    _MEMORY[(str(path.resolve()), identity)] = dict(records)
    if not write_side_file:
        return
    target = side_file(path)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    body = {"identity": list(identity),
            "verified": {name: [r.cache_key, r.output_digest] for name, r in records.items()}}
    try:
        tmp.write_text(json.dumps(body))
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)
