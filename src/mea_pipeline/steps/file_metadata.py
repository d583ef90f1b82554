"""Step 5: CMCR/CMTR root attributes and each unit's ``Unit Info``, attributes, RoiSTAs, Unmixing.

Only metadata is read here: step 1 already read the peaks, and no ``Source`` trace is touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..schema import Out
from .registry import Step, StepContext


@dataclass(frozen=True)
class FileMetadataParams:
    include_roi_stas: bool = True
    include_unmixing: bool = True


def _storable(value):
    """Attribute values as HDF5-friendly scalars/arrays (strings stay strings)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (str, int, float, bool, np.generic)):
        return value
    return np.asarray(value)


def run(ctx: StepContext, p: FileMetadataParams) -> dict:
    # Imported when the step runs: reading the registry (status, schema) stays fast.
    from ..mcs_io import CmcrFile, CmtrFile

    rec = ctx.recording
    with CmcrFile(rec.cmcr_path) as cmcr:
        cmcr_meta = dict(cmcr.root_attributes)
    with CmtrFile(rec.cmtr_path) as cmtr:
        cmtr_meta = dict(cmtr.root_attributes)
        units = cmtr.unit_metadata()
    if "LB.RecordingDuration" in cmcr_meta:
        cmcr_meta["recording_duration_s"] = float(cmcr_meta["LB.RecordingDuration"]) / 1e6
    tx = ctx.tx
    tx.write_tree("metadata/cmcr_meta", {k: _storable(v) for k, v in cmcr_meta.items()})
    tx.write_tree("metadata/cmtr_meta", {k: _storable(v) for k, v in cmtr_meta.items()})
    for unit in units:
        base = f"units/{unit.unit_id}/unit_meta"
        fields = {name.lower(): _storable(value) for name, value in unit.unit_info.items()}
        fields |= {f"attr_{name.lower()}": _storable(value) for name, value in unit.attributes.items()}
        tx.write_tree(base, fields)
        if p.include_roi_stas and unit.roi_stas is not None:
            tx.write(f"{base}/roi_stas", unit.roi_stas.astype(np.float32))
        if p.include_unmixing and unit.unmixing is not None:
            tx.write(f"{base}/unmixing_matrix", unit.unmixing.astype(np.float32))
    return {"n_units": len(units), "cmcr_attributes": len(cmcr_meta), "cmtr_attributes": len(cmtr_meta)}


STEP = Step(
    name="file_metadata", number=5, upstream=("load_recording",), reads=frozenset({"cmcr", "cmtr"}),
    params=FileMetadataParams, version="1", run=run,
    outputs=(
        Out("metadata/cmcr_meta/{attribute}", "any", 0,
            "every CMCR root attribute (names as in the file) + recording_duration_s"),
        Out("metadata/cmtr_meta/{attribute}", "any", 0, "every CMTR root attribute"),
        Out("units/{unit}/unit_meta/roi_stas", "f", 2, "RoiSTAs (ROI sensors x samples)", required=False),
        Out("units/{unit}/unit_meta/unmixing_matrix", "f", 2, "Unmixing (ROI sensors x embedding)",
            required=False),
        Out("units/{unit}/unit_meta/{field}", "any", None,
            "Unit Info fields by name, lower-cased (row, column, sensorid, unitid, snr, ...) and attr_<unit "
            "group attribute>"),
    ),
    description="Root attributes of both files and per-unit sorter metadata (fields by name)",
)
