"""Manual cell-type labels (cell_type_labels) from the lab's folders of sorted unit images.

Layout: ``<labels_root>/<recording_id>/{RGC,AC,Other,Unknown}/**/*_unit<N>.png``. The image's
folder is its class; the search inside a class folder is recursive; a unit filed under several
classes takes the last of RGC, AC, Other, Unknown (the lab's precedence). A missing folder is
not an error but a recorded warning: every unit is then ``'no_label'``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

# Folder names in precedence order: a later class overrides an earlier one for the same unit.
LABEL_CLASSES = ("RGC", "AC", "Other", "Unknown")
NO_LABEL = "no_label"
VOCABULARY = tuple(name.lower() for name in LABEL_CLASSES) + (NO_LABEL,)

_UNIT_FILE = re.compile(r"_unit(\d+)\.png$", re.IGNORECASE)
_MAX_LISTED = 10


@dataclass(frozen=True)
class LabelResult:
    """Labels of one recording and what the folder held.

    Attributes
    ----------
    labels
        Unit number -> one of :data:`VOCABULARY`, for every unit number asked for.
    folder
        ``<labels_root>/<recording_id>``.
    folder_found
        Whether that folder exists.
    n_files
        Label images found (file names ending in ``_unit<N>.png``) in the class folders.
    n_labelled
        Units of the recording with a label other than ``'no_label'``.
    counts
        Label -> number of the recording's units with it, every vocabulary entry present.
    warnings
        Human-readable notes: missing folder, ignored files or folders, labels for units the
        recording does not have.
    """

    labels: dict[int, str]
    folder: Path
    folder_found: bool
    n_files: int
    n_labelled: int
    counts: dict[str, int]
    warnings: list[str] = field(default_factory=list)


def read_labels(labels_root: str | Path, recording_id: str, unit_numbers) -> LabelResult:
    """Label every unit of a recording from its label folder.

    Parameters
    ----------
    labels_root
        Folder holding one sub-folder per recording ID.
    recording_id
        E.g. ``2024.08.08-10.40.20-Rec``; the prefix inside the image file names is not checked.
    unit_numbers
        The recording's unit numbers (``unit_010`` -> 10).

    Returns
    -------
    LabelResult
    """
    folder = Path(labels_root) / recording_id
    numbers = [int(n) for n in unit_numbers]
    if not folder.is_dir():
        labels = {n: NO_LABEL for n in numbers}
        warning = (f"no label folder {folder}: all {len(numbers)} units are '{NO_LABEL}' (expected "
                   f"<labels>/<recording_id>/{{{','.join(LABEL_CLASSES)}}}/**/*_unit<N>.png)")
        return LabelResult(labels, folder, False, 0, 0, _counts(labels), [warning])

    warnings = _unexpected_entries(folder)
    filed: dict[int, str] = {}
    n_files = 0
    ignored: list[str] = []
    for class_name in LABEL_CLASSES:
        class_folder = folder / class_name
        for path in sorted(class_folder.rglob("*")) if class_folder.is_dir() else []:
            if not path.is_file():
                continue
            found = _UNIT_FILE.search(path.name)
            if found is None:
                ignored.append(path.relative_to(folder).as_posix())
                continue
            filed[int(found.group(1))] = class_name.lower()
            n_files += 1
    if ignored:
        warnings.append(f"{len(ignored)} file(s) in {folder} not named '*_unit<N>.png' were ignored: "
                        f"{_listing(ignored)}")
    unknown_units = sorted(set(filed) - set(numbers))
    if unknown_units:
        warnings.append(f"{folder} labels unit number(s) the recording does not have: {_listing(unknown_units)}")

    labels = {n: filed.get(n, NO_LABEL) for n in numbers}
    n_labelled = sum(label != NO_LABEL for label in labels.values())
    if n_files == 0:
        warnings.append(f"label folder {folder} holds no '*_unit<N>.png' file: all units are '{NO_LABEL}'")
    return LabelResult(labels, folder, True, n_files, n_labelled, _counts(labels), warnings)


def listing_fingerprint(labels_root: str | Path, recording_id: str) -> str:
    """SHA-256 of the sorted relative paths and sizes of every file in the recording's label folder.

    ``'absent'`` when the folder does not exist. Cheap (no file is read), and it changes when an
    image is added, removed, renamed or moved to another class folder.
    """
    folder = Path(labels_root) / recording_id
    if not folder.is_dir():
        return "absent"
    entries = sorted(f"{path.relative_to(folder).as_posix()}\t{path.stat().st_size}"
                     for path in folder.rglob("*") if path.is_file())
    return hashlib.sha256("\n".join(entries).encode("utf-8")).hexdigest()


def _unexpected_entries(folder: Path) -> list[str]:
    """Warn about sub-folders the lab's layout does not use (e.g. ``rgc``: names are case-sensitive)."""
    others = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in LABEL_CLASSES)
    if not others:
        return []
    return [f"{folder}: ignored folder(s) {_listing(others)}; class folders are {', '.join(LABEL_CLASSES)}"]


def _counts(labels: dict[int, str]) -> dict[str, int]:
    counts = dict.fromkeys(VOCABULARY, 0)
    for label in labels.values():
        counts[label] += 1
    return counts


def _listing(items: list) -> str:
    shown = ", ".join(str(item) for item in items[:_MAX_LISTED])
    return shown + (f" (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")
