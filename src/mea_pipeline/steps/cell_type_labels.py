"""cell_type_labels: manual cell-type labels from the lab's folders of sorted unit images.

Layout and precedence are those of :mod:`mea_pipeline.labels`. Every unit gets
``auto_label/axon_type`` (``rgc``, ``ac``, ``other``, ``unknown`` or ``no_label``); the record counts
the labelled units, so ap_tracking can say why it tracked none. A missing folder (or no ``--labels``) is
a recorded warning, never a failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..labels import NO_LABEL, VOCABULARY, read_labels
from ..schema import LAB, OURS, Out, outs
from . import load_recording
from .registry import Step, StepContext, reader

SUMMARY = "metadata/cell_type_labels"
AXON_TYPE = Out("units/{unit}/auto_label/axon_type", "str", 0,
                "rgc, ac, other, unknown (from <labels>/<recording_id>/{RGC,AC,Other,Unknown}/**/*_unit<N>.png; "
                "a unit in several folders takes the last) or no_label", origin=LAB)
FOLDER = Out(f"{SUMMARY}/folder", "str", 0, "the recording's label folder ('' without --labels)", origin=OURS)
FOLDER_FOUND = Out(f"{SUMMARY}/folder_found", "i", 0, "1 if that folder exists", origin=OURS)
N_FILES = Out(f"{SUMMARY}/n_files", "i", 0, "label images found", origin=OURS, units="files")
N_LABELLED = Out(f"{SUMMARY}/n_labelled", "i", 0, "units with a label other than no_label", origin=OURS, units="units")
# One count per label of the vocabulary, by label.
COUNTS = {out.key(): out for out in outs(f"{SUMMARY}/counts", VOCABULARY, "i", 0, "units labelled {name}",
                                         origin=OURS, units="units")}
_UNIT_NUMBER = re.compile(r"unit_(\d+)$")


@dataclass(frozen=True)
class CellTypeLabelsParams:
    """The labels have no parameters: layout and precedence are the lab's."""


@reader("cell_type_labels")
def axon_types(h5) -> dict[str, str]:
    """Unit ID -> label of every unit cell_type_labels labelled."""
    paths = {unit: AXON_TYPE.at(unit=unit) for unit in load_recording.unit_ids(h5)}
    return {unit: h5[path].asstr()[()] for unit, path in paths.items() if path in h5}


@reader("cell_type_labels")
def n_labelled(h5) -> int:
    """Units with a label other than ``no_label``."""
    return int(h5[N_LABELLED.at()][()])


def run(ctx: StepContext, p: CellTypeLabelsParams) -> dict:
    units = load_recording.unit_ids(ctx)
    numbers = {unit: int(_UNIT_NUMBER.search(unit).group(1)) for unit in units}
    labels_root = ctx.config.labels
    if labels_root is None:
        labels = {unit: NO_LABEL for unit in units}
        folder, found, n_files = "", False, 0
        ctx.warn(f"no --labels folder given: all {len(units)} units are '{NO_LABEL}'")
    else:
        result = read_labels(labels_root, ctx.recording.recording_id, numbers.values())
        labels = {unit: result.labels[numbers[unit]] for unit in units}
        folder, found, n_files = str(result.folder), result.folder_found, result.n_files
        for warning in result.warnings:
            ctx.warn(warning)
    for unit, label in labels.items():
        ctx.tx.write(AXON_TYPE.at(unit=unit), label)
    counts = {label: sum(v == label for v in labels.values()) for label in VOCABULARY}
    labelled = len(units) - counts[NO_LABEL]
    for out, value in ((FOLDER, folder), (FOLDER_FOUND, int(found)), (N_FILES, n_files), (N_LABELLED, labelled)):
        ctx.tx.write(out.at(), value)
    for label, count in counts.items():
        ctx.tx.write(COUNTS[label].at(), count)
    return {"n_labelled": labelled, "counts": counts}


STEP = Step(
    name="cell_type_labels", position=9, upstream=("load_recording",), reads=frozenset({"labels"}),
    params=CellTypeLabelsParams, version="1", run=run,
    outputs=(AXON_TYPE, FOLDER, FOLDER_FOUND, N_FILES, N_LABELLED, *COUNTS.values()),
    description="Manual cell-type label of every unit from the lab's label folders",
)
