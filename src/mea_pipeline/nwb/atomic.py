"""Writing an NWB file so that an interrupted export leaves no complete-looking ``.nwb``."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from pynwb import NWBHDF5IO, NWBFile

from ..store.atomic import fsync_file, fsync_folder, remove_stale_temporaries


def temporary_path(nwb_path: Path) -> Path:
    """``<name>.nwb.tmp-<pid>`` in the same folder (same file system, so the rename is atomic)."""
    return nwb_path.with_name(f"{nwb_path.name}.tmp-{os.getpid()}")


def write_nwb(nwbfile: NWBFile, path: Path) -> None:
    """Write ``nwbfile`` to ``path`` (overwriting it)."""
    with warnings.catch_warnings():
        # The temporary name ends in .tmp-<pid> on purpose; pynwb's advice about the suffix does not apply.
        warnings.filterwarnings("ignore", message=".*does not end in '.nwb'")
        with NWBHDF5IO(str(path), mode="w") as io:
            io.write(nwbfile)


def write_atomically(nwbfile: NWBFile, nwb_path: Path) -> None:
    """Write to a temporary file, flush it to disk, then rename it over ``nwb_path``.

    On any exception (KeyboardInterrupt included) the temporary file is removed and ``nwb_path``
    is left as it was; a temporary left by a killed export is removed by the next one.
    """
    tmp = temporary_path(nwb_path)
    remove_stale_temporaries(nwb_path.parent, f"{nwb_path.name}.tmp-*")
    try:
        write_nwb(nwbfile, tmp)
        fsync_file(tmp)
        os.replace(tmp, nwb_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(nwb_path.parent)

