"""A synthetic manual-label folder in the lab's layout, with its expected labels.

``<root>/<recording_id>/{RGC,AC,Other,Unknown}/[page_2/]<recording_id>_unit<N>.png``: ganglion
cells go to RGC, the other cells alternate between AC and Other. Three cases of the lab's rules
are always exercised: every second image of a class sits in a nested folder (recursive search),
the first RGC unit is also filed under Unknown (precedence: Unknown wins) and one unit gets no
image (``'no_label'``).
"""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

from mea_pipeline.errors import InputError

NESTED_FOLDER = "page_2"
_THUMBNAIL_SIZE = 8


def write_label_folder(root: str | Path, recording_id: str, units: list[dict], *,
                       overwrite: bool = False) -> dict[str, str]:
    """Write the label images of one recording; return unit_id -> expected label.

    Parameters
    ----------
    root
        Labels root; the images go under ``root/recording_id``.
    recording_id
        Lab-style recording ID, also the prefix of every image name.
    units
        Dicts with ``unit_id`` (``'unit_007'``), ``unit_number`` (7) and ``is_rgc``.
    overwrite
        Replace an existing ``root/recording_id`` folder; without it an existing non-empty
        folder is an error (stale images would contradict the returned truth).

    Returns
    -------
    dict
        ``unit_id`` -> ``'rgc'``, ``'ac'``, ``'other'``, ``'unknown'`` or ``'no_label'``.
    """
    folder = Path(root) / recording_id
    if folder.exists() and any(folder.iterdir()):
        if not overwrite:
            raise InputError(f"label folder {folder} already exists; write synthetic labels into an empty folder "
                             "or pass overwrite=True")
        shutil.rmtree(folder)

    plan = _plan(units)
    written = {name: 0 for name in ("RGC", "AC", "Other", "Unknown")}
    truth: dict[str, str] = {}
    for unit in units:
        classes = plan[unit["unit_id"]]
        for class_name in classes:
            nested = written[class_name] % 2 == 1
            target = folder / class_name / (NESTED_FOLDER if nested else "")
            target.mkdir(parents=True, exist_ok=True)
            (target / f"{recording_id}_unit{int(unit['unit_number'])}.png").write_bytes(
                _png(int(unit["unit_number"])))
            written[class_name] += 1
        truth[unit["unit_id"]] = classes[-1].lower() if classes else "no_label"
    return truth


def _plan(units: list[dict]) -> dict[str, list[str]]:
    """unit_id -> class folders it is filed under, in the lab's precedence order (last wins)."""
    rgc = [u["unit_id"] for u in units if u["is_rgc"]]
    other = [u["unit_id"] for u in units if not u["is_rgc"]]
    # The unit left without an image: the last non-RGC cell, so that step 10 keeps its RGCs.
    unlabelled = other[-1] if other else (rgc[-1] if len(rgc) > 1 else None)
    plan = {unit_id: ["RGC"] for unit_id in rgc}
    for position, unit_id in enumerate(u for u in other if u != unlabelled):
        plan[unit_id] = ["AC" if position % 2 == 0 else "Other"]
    if rgc and rgc[0] != unlabelled:
        plan[rgc[0]].append("Unknown")
    if unlabelled is not None:
        plan[unlabelled] = []
    return plan


def _png(seed: int) -> bytes:
    """A valid 8 x 8 8-bit greyscale PNG whose pixels depend on ``seed`` (files differ per unit)."""
    size = _THUMBNAIL_SIZE
    rows = b"".join(b"\x00" + bytes((seed * 37 + 11 * y + 5 * x) % 256 for x in range(size)) for y in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
