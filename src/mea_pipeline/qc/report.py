"""A recording's QC report: its figures as PNG files next to the output, and its key numbers.

The report lives in ``<output folder>/<recording_id>.qc/`` (one PNG per topic and ``qc.json``).
Its content comes from the steps' declarations (``Step.qc``: a figure, key numbers, drawn
through the step's own readers). It is cached like a step: its key is the report code version plus
the records of the steps it draws from, kept in ``qc.json``; when the key still matches and every figure exists, nothing is
drawn again. Files are replaced atomically, so a reader never sees half a PNG.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..steps import REGISTRY
from ..steps.registry import Registry
from ..store import OutputFile

VERSION = "3"  # bump when a figure changes, so reports are redrawn
MANIFEST = "qc.json"
DPI = 100  # the narrowest grid figure (6.4 in) is 640 px wide


def sources(registry: Registry = REGISTRY) -> list[str]:
    """Steps whose output the report reads: those that declare a QC part, and their upstream steps."""
    return registry.upstream_closure(step.name for step in registry if step.qc is not None)


def report_folder(output_path: Path) -> Path:
    """``<output folder>/<recording_id>.qc``."""
    return output_path.with_name(output_path.stem + ".qc")


def report_key(output_path: Path, registry: Registry = REGISTRY) -> str:
    """Report code version + the cache key and digest of every source step the file holds."""
    records = OutputFile(output_path).verified_records()
    parts = [VERSION] + [f"{s}:{records[s].cache_key}:{records[s].output_digest}"
                         for s in sources(registry) if s in records]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def cached_report(output_path: Path, registry: Registry = REGISTRY) -> dict | None:
    """The report's manifest when it is up to date with the output file, else None."""
    folder = report_folder(output_path)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("key") != report_key(output_path, registry):
        return None
    if not all((folder / name).is_file() for name in manifest.get("figures", {}).values()):
        return None
    return manifest


def write_report(output_path: Path, registry: Registry = REGISTRY) -> dict:
    """Draw every step's QC figure and collect its key numbers from one output file; returns the manifest.

    Each step that declares a ``qc`` part contributes, in run order, when the file holds its
    record. The manifest holds ``key``, ``recording_id``, ``folder``, ``figures`` (topic -> PNG
    file name) and ``numbers`` (each step's key numbers, e.g. units, spikes, RFs fitted, axons
    tracked, the ONH and DSGC counts).
    """
    output_path = Path(output_path)
    folder = report_folder(output_path)
    folder.mkdir(parents=True, exist_ok=True)
    key = report_key(output_path, registry)
    records = OutputFile(output_path).verified_records()
    written, numbers = {}, {}
    with OutputFile(output_path).open() as h5:
        if h5 is None:
            raise FileNotFoundError(f"{output_path}: no readable output file to draw QC figures from")
        for step in registry:
            if step.qc is None or step.name not in records:
                continue
            if step.qc.figure is not None:
                fig = step.qc.figure(h5)
                if fig is not None:
                    written[step.qc.topic] = _save_png(fig, folder / f"{step.qc.topic}.png")
            if step.qc.numbers is not None:
                numbers |= step.qc.numbers(h5)
    manifest = {"key": key, "recording_id": output_path.stem, "folder": str(folder), "figures": written,
                "numbers": numbers}
    _atomic_write(folder / MANIFEST, json.dumps(manifest, indent=1).encode())
    return manifest


def _save_png(fig, path: Path) -> str:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fig.savefig(tmp, dpi=DPI, format="png")
    os.replace(tmp, path)
    return path.name


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
