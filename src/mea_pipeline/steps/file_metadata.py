"""Step 5: CMCR/CMTR root attributes and each unit's ``Unit Info``, attributes, RoiSTAs, Unmixing.

Only metadata is read here: step 1 already read the peaks, and no ``Source`` trace is touched.
Values are stored as the lab's scripts store them (:mod:`mea_pipeline.lab_values`): root
attributes as scalars, a unit's numbers as one-element int64/float64 arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..frames import ELECTRODE
from ..lab_values import root_attribute, unit_field
from ..schema import LAB, Out
from .registry import Step, StepContext, reader

CMCR_META = "metadata/cmcr_meta"


@dataclass(frozen=True)
class FileMetadataParams:
    include_roi_stas: bool = True
    include_unmixing: bool = True


def run(ctx: StepContext, p: FileMetadataParams) -> dict:
    # Imported when the step runs: reading the registry (status, schema) stays fast.
    from ..mcs_io import CmcrFile, CmtrFile

    rec = ctx.recording
    with CmcrFile(rec.cmcr_path) as cmcr:
        cmcr_meta = {name: root_attribute(value) for name, value in cmcr.raw_root_attributes.items()}
    with CmtrFile(rec.cmtr_path) as cmtr:
        cmtr_meta = {name: root_attribute(value) for name, value in cmtr.raw_root_attributes.items()}
        units = cmtr.unit_metadata()
    if "LB.RecordingDuration" in cmcr_meta:
        cmcr_meta["recording_duration_s"] = float(cmcr_meta["LB.RecordingDuration"]) / 1e6
    tx = ctx.tx
    tx.write_tree(CMCR_META, cmcr_meta)
    tx.write_tree("metadata/cmtr_meta", cmtr_meta)
    for unit in units:
        base = f"units/{unit.unit_id}/unit_meta"
        fields = {name.lower(): unit_field(value) for name, value in unit.raw_unit_info.items()}
        fields |= {f"attr_{name.lower()}": unit_field(value) for name, value in unit.raw_attributes.items()}
        tx.write_tree(base, fields)
        if p.include_roi_stas and unit.roi_stas is not None and unit.roi_stas.size:
            tx.write(f"{base}/roi_stas", unit.roi_stas.astype(np.float32))
        if p.include_unmixing and unit.unmixing is not None and unit.unmixing.size:
            tx.write(f"{base}/unmixing_matrix", unit.unmixing.astype(np.float32))
    return {"n_units": len(units), "cmcr_attributes": len(cmcr_meta), "cmtr_attributes": len(cmtr_meta)}


@reader("file_metadata")
def written_by_synth(h5) -> bool:
    """Whether ``mea-pipeline synth`` wrote the recording (its ``.cmcr`` carries the synth mark)."""
    from ..mcs_io import SYNTH_MARK  # imported here (mcs_io loads McsPy): reading the registry stays fast

    return f"{CMCR_META}/{SYNTH_MARK}" in h5


STEP = Step(
    name="file_metadata", position=5, upstream=("load_recording",), reads=frozenset({"cmcr", "cmtr"}),
    params=FileMetadataParams, version="2", run=run,
    outputs=(
        Out(f"{CMCR_META}/recording_duration_s", "f", 0, "LB.RecordingDuration / 1e6", required=False,
            origin=LAB, units="s"),
        Out(f"{CMCR_META}/{{attribute}}", "any", 0,
            "every CMCR root attribute, names as in the file (LB.RecordingDuration in microseconds): text, "
            "int64 or float64 scalars, longer arrays as arrays; a file `mea-pipeline synth` wrote also carries "
            "MeaPipelineSynth ('mea-pipeline synth <version>'), which step 10 reads", origin=LAB),
        Out("metadata/cmtr_meta/{attribute}", "any", 0, "every CMTR root attribute, stored as the CMCR's",
            origin=LAB),
        Out("units/{unit}/unit_meta/roi_stas", "f", 2, "RoiSTAs (ROI sensors x samples)", required=False,
            origin=LAB, units="ICA source units (no physical unit)"),
        Out("units/{unit}/unit_meta/unmixing_matrix", "f", 2, "Unmixing (ROI sensors x embedding)",
            required=False, origin=LAB),
        Out("units/{unit}/unit_meta/row", "i", 1, "Unit Info Row, one-element int64", required=False,
            origin=LAB, units="electrode (1-based)", frame=ELECTRODE),
        Out("units/{unit}/unit_meta/column", "i", 1, "Unit Info Column, one-element int64", required=False,
            origin=LAB, units="electrode (1-based)", frame=ELECTRODE),
        Out("units/{unit}/unit_meta/sensorid", "i", 1, "Unit Info SensorID = 65 * (Column - 1) + Row, "
            "one-element int64", required=False, origin=LAB, units="sensor number (1-based)", frame=ELECTRODE),
        Out("units/{unit}/unit_meta/{field}", "any", None,
            "the other Unit Info fields by name, lower-cased (unitid, snr, ...), and attr_<unit group attribute, "
            "lower-cased>: numbers as one-element int64/float64 arrays, text as scalar strings", origin=LAB),
    ),
    description="Root attributes of both files and per-unit sorter metadata (fields by name)",
)
