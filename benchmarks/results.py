"""benchmarks/results.json: each benchmark merges its own section of figures."""

from __future__ import annotations

import json
import os
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def update_results(section: str, figures: dict, path: str | os.PathLike = "benchmarks/results.json") -> dict:
    """Replace ``section`` of the results file with ``figures``, keeping the other sections.

    Parameters
    ----------
    section : str
        Name of the benchmark's section, e.g. ``"eimage_sta"``.
    figures : dict
        JSON-serialisable figures of that benchmark.
    path : path-like
        Results file; a relative path is taken from the repository root.

    Returns
    -------
    dict
        The whole file's content after the update.
    """
    path = Path(path)
    if not path.is_absolute():
        path = _REPO / path
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[section] = figures
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)  # readers never see a half-written file
    return data
