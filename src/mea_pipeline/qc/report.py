"""A recording's QC report: its figures as PNG files next to the output, and its key numbers.

The report lives in ``<output folder>/<recording_id>.qc/`` (one PNG per topic and ``qc.json``).
It is cached like a step: its key is the figure code version plus the records of the steps it
draws from, kept in ``qc.json``; when the key still matches and every figure exists, nothing is
drawn again. Files are replaced atomically, so a reader never sees half a PNG.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..steps import load_recording, rf_geometry
from ..store import OutputFile
from . import figures

VERSION = "1"
# Steps whose output the figures and numbers read.
SOURCES = ("load_recording", "dense_noise_sta", "soma_geometry", "rf_geometry", "ap_tracking", "dsgc")
MANIFEST = "qc.json"
DPI = 80


def report_folder(output_path: Path) -> Path:
    """``<output folder>/<recording_id>.qc``."""
    return output_path.with_name(output_path.stem + ".qc")


def report_key(output_path: Path) -> str:
    """Figure code version + the cache key and digest of every source step the file holds."""
    records = OutputFile(output_path).verified_records()
    parts = [VERSION] + [f"{s}:{records[s].cache_key}:{records[s].output_digest}" for s in SOURCES if s in records]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def cached_report(output_path: Path) -> dict | None:
    """The report's manifest when it is up to date with the output file, else None."""
    folder = report_folder(output_path)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("key") != report_key(output_path):
        return None
    if not all((folder / name).is_file() for name in manifest.get("figures", {}).values()):
        return None
    return manifest


def write_report(output_path: Path) -> dict:
    """Draw the figures and count the key numbers of one output file; returns the manifest.

    The manifest holds ``key``, ``recording_id``, ``folder``, ``figures`` (topic -> PNG file name)
    and ``numbers`` (units, spikes, RFs fitted, axons tracked, ONH, DSGC counts).
    """
    output_path = Path(output_path)
    folder = report_folder(output_path)
    folder.mkdir(parents=True, exist_ok=True)
    key = report_key(output_path)
    written = {}
    with OutputFile(output_path).open() as h5:
        if h5 is None:
            raise FileNotFoundError(f"{output_path}: no readable output file to draw QC figures from")
        rf_movie = next(iter(rf_geometry.rf_movies(h5)), None)
        bar_movie = h5["metadata/dsgc/movie"].asstr()[()] if "metadata/dsgc/movie" in h5 else None
        drawings = {
            "eimage_soma": lambda: figures.eimage_figure(h5),
            "rf": lambda: figures.rf_figure(h5, rf_movie) if rf_movie else None,
            "ap_tracking": lambda: figures.ap_figure(h5),
            "dsgc": lambda: figures.dsgc_figure(h5, bar_movie) if bar_movie else None,
        }
        for topic, draw in drawings.items():
            fig = draw()
            if fig is not None:
                written[topic] = _save_png(fig, folder / f"{topic}.png")
        numbers = key_numbers(h5, rf_movie, bar_movie)
    manifest = {"key": key, "recording_id": output_path.stem, "folder": str(folder), "figures": written,
                "numbers": numbers}
    _atomic_write(folder / MANIFEST, json.dumps(manifest, indent=1).encode())
    return manifest


def key_numbers(h5, rf_movie: str | None, bar_movie: str | None) -> dict:
    """Units, spikes, RFs fitted, axons tracked, the ONH and DSGC counts of an output file."""
    units = load_recording.unit_ids(h5) if "units" in h5 else []
    numbers = {"units": len(units),
               "spikes": int(sum(h5[f"units/{u}/spike_times"].shape[0] for u in units if "spike_times" in h5[f"units/{u}"]))}
    if rf_movie:
        numbers["rfs_fitted"] = sum(
            h5[f"units/{u}/features/sta_{rf_movie}/sta_geometry/gaussian_fit/fit_status"].asstr()[()] == "ok"
            for u in units if f"units/{u}/features/sta_{rf_movie}/sta_geometry/gaussian_fit" in h5)
    if "metadata/ap_tracking" in h5:
        numbers["axons_tracked"] = sum(
            h5[f"units/{u}/features/ap_tracking/status"].asstr()[()] == "tracked"
            for u in units if f"units/{u}/features/ap_tracking/status" in h5)
        onh = h5.get("metadata/ap_tracking/all_ap_intersection")
        numbers["onh"] = None if onh is None else [round(float(onh["x"][()]), 2), round(float(onh["y"][()]), 2)]
    if bar_movie:
        groups = [h5[f"units/{u}/features/{bar_movie}/dsgc"] for u in units
                  if f"units/{u}/features/{bar_movie}/dsgc/status" in h5]
        ok = [g for g in groups if g["status"].asstr()[()] == "ok"]
        numbers["dsgc_sectioned"] = len(ok)
        numbers["dsgc_p_below_0_05"] = sum(bool(np.asarray(g["p_value"][()]) < 0.05) for g in ok)
    return numbers


def _save_png(fig, path: Path) -> str:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fig.savefig(tmp, dpi=DPI, format="png")
    os.replace(tmp, path)
    return path.name


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
