"""What kind of fault an exception is, and the one line that tells the user what to do.

A read that failed because a network drive hiccupped may succeed a minute later, so it is worth
a retry. A full disk, a denied permission or bad data fail the same way every time: retrying only
delays the report (a disk-full retry used to cost 70 s). Classification goes by ``errno``, also
when h5py gives it only inside its message (``... errno = 28, error message = 'No space left on
device' ...``).
"""

from __future__ import annotations

import errno
import re

from .errors import PipelineError

TRANSIENT = "transient I/O error"
DISK_FULL = "disk full"
PERMISSION = "permission denied"
BAD_INPUT = "bad input"
ERROR = "error"

# Network file systems report a lost or slow server with these; the next attempt may succeed.
TRANSIENT_ERRNOS = frozenset({
    errno.EIO, errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNABORTED, errno.ECONNREFUSED, errno.EHOSTUNREACH,
    errno.EHOSTDOWN, errno.ENETUNREACH, errno.ENETDOWN, errno.ENETRESET, errno.ESTALE, errno.EAGAIN, errno.EINTR,
    errno.ENOLINK, errno.EREMOTEIO,
})
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
PERMISSION_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})

_H5_ERRNO = re.compile(r"errno\s*=\s*(\d+)")

_ADVICE = {
    DISK_FULL: "free space on that drive (a step needs about the output file's size again) and rerun "
               "with --only-failed",
    PERMISSION: "give this user access (read for inputs, write for the output folder) and rerun with --only-failed",
    TRANSIENT: "the drive or network failed; check it and rerun with --only-failed",
}


def os_errno(exc: BaseException) -> int | None:
    """The ``errno`` of an OSError, also when h5py gives it only in its message; None otherwise."""
    if not isinstance(exc, OSError):
        return None
    if exc.errno is not None:
        return exc.errno
    found = _H5_ERRNO.search(str(exc))
    return int(found.group(1)) if found else None


def classify(exc: BaseException) -> str:
    """One of :data:`TRANSIENT`, :data:`DISK_FULL`, :data:`PERMISSION`, :data:`BAD_INPUT`, :data:`ERROR`.

    Errors the user can cause (:class:`~mea_pipeline.errors.PipelineError`, a missing file) and
    files that HDF5 cannot read (an OSError without errno: truncated, not HDF5) are bad input;
    timeouts and the errnos of :data:`TRANSIENT_ERRNOS` are transient.
    """
    if isinstance(exc, PipelineError):
        return BAD_INPUT
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return TRANSIENT
    if not isinstance(exc, OSError):
        return ERROR
    number = os_errno(exc)
    if number in DISK_FULL_ERRNOS:
        return DISK_FULL
    if number in PERMISSION_ERRNOS:
        return PERMISSION
    if number in TRANSIENT_ERRNOS:
        return TRANSIENT
    if number is None or number in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
        return BAD_INPUT
    return ERROR


def is_transient(exc: BaseException) -> bool:
    """True when a retry may help (network or drive hiccup); never for disk full, permissions or bad data."""
    return classify(exc) == TRANSIENT


def describe(exc: BaseException) -> str:
    """One line for the terminal and the step record: the kind of fault, the error, what to do.

    ``'disk full: [Errno 28] No space left on device: '/out/.x.h5.tmp-7'; free space on ...'``;
    errors without advice keep their type: ``'InputError: cmtr file not found: ...'``.
    """
    kind = classify(exc)
    text = " ".join(str(exc).split()) or type(exc).__name__
    if kind in _ADVICE:
        number = os_errno(exc)
        code = f" ({errno.errorcode.get(number, number)})" if number is not None else ""
        return f"{kind}{code}: {text}; {_ADVICE[kind]}"
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
