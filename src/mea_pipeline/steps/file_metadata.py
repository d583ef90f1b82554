"""file_metadata: CMCR/CMTR root attributes and each unit's ``Unit Info``, attributes, RoiSTAs, Unmixing.

Only metadata is read here: load_recording already read the peaks, and no ``Source`` trace is touched.
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

@dataclass(frozen=True)
class FileMetadataParams:
    """Which of the spike sorter's per-unit matrices are copied.

    Attributes
    ----------
    include_roi_stas : bool
        Copy each unit's ``RoiSTAs`` (ROI sensors x samples) to ``unit_meta/roi_stas``.
    include_unmixing : bool
        Copy each unit's ``Unmixing`` matrix to ``unit_meta/unmixing_matrix``.
    """

    include_roi_stas: bool = True
    include_unmixing: bool = True


# The outputs, each declared once: the writer and the readers name paths through these. Attribute
# and Unit Info names vary with the MCS software version, hence the placeholders; the names every
# file has (McsPy reads ID.Type and FileVersion, the spike sorter's UnitID) are declared by name.
CMCR_ATTRIBUTE = Out("metadata/cmcr_meta/{attribute}", "any", 0,
                     "every other CMCR root attribute, names as in the file (LB.RecordingDuration in microseconds): "
                     "text, int64 or float64 scalars, longer arrays as arrays; a file `mea-pipeline synth` wrote also "
                     "carries MeaPipelineSynth ('mea-pipeline synth <version>'), which ap_tracking reads", origin=LAB)
CMTR_ATTRIBUTE = Out("metadata/cmtr_meta/{attribute}", "any", 0,
                     "every other CMTR root attribute, stored as the CMCR's", origin=LAB)
CMCR_DURATION = Out(CMCR_ATTRIBUTE.at(attribute="recording_duration_s"), "f", 0,
                    "LB.RecordingDuration / 1e6 (absent when the CMCR has no LB.RecordingDuration)", required=False,
                    origin=LAB, units="s")
CMCR_ID_TYPE, CMTR_ID_TYPE = (Out(out.at(attribute="ID.Type"), "str", 0, "root ID.Type (MCS file type)", origin=LAB)
                              for out in (CMCR_ATTRIBUTE, CMTR_ATTRIBUTE))
CMCR_FILE_VERSION, CMTR_FILE_VERSION = (Out(out.at(attribute="FileVersion"), "i", 0, "root FileVersion, int64",
                                            origin=LAB) for out in (CMCR_ATTRIBUTE, CMTR_ATTRIBUTE))
UNIT_FIELD = Out("units/{unit}/unit_meta/{field}", "any", None,
                 "the other Unit Info fields by name, lower-cased (snr, ...), and attr_<unit group attribute, "
                 "lower-cased>: numbers as one-element int64/float64 arrays, text as scalar strings", origin=LAB)
ROI_STAS = Out("units/{unit}/unit_meta/roi_stas", "f", 2,
               "RoiSTAs (ROI sensors x samples; absent when the unit has none or include_roi_stas is false)",
               required=False, origin=LAB, units="ICA source units (no physical unit)")
UNMIXING = Out("units/{unit}/unit_meta/unmixing_matrix", "f", 2,
               "Unmixing (ROI sensors x embedding; absent when the unit has none or include_unmixing is false)",
               required=False, origin=LAB)
# A unit's Unit Info table (and so these fields) is absent in some sorter outputs.
UNIT_INFO_ROW = Out("units/{unit}/unit_meta/row", "i", 1, "Unit Info Row, one-element int64", required=False,
                    origin=LAB, units="electrode (1-based)", frame=ELECTRODE)
UNIT_INFO_COLUMN = Out("units/{unit}/unit_meta/column", "i", 1, "Unit Info Column, one-element int64",
                       required=False, origin=LAB, units="electrode (1-based)", frame=ELECTRODE)
UNIT_INFO_SENSORID = Out("units/{unit}/unit_meta/sensorid", "i", 1, "Unit Info SensorID = 65 * (Column - 1) + Row, "
                         "one-element int64", required=False, origin=LAB, units="sensor number (1-based)",
                         frame=ELECTRODE)
UNIT_INFO_UNITID = Out("units/{unit}/unit_meta/unitid", "i", 1, "Unit Info UnitID, one-element int64",
                       required=False, origin=LAB)
UNIT_ATTR_UNITID = Out("units/{unit}/unit_meta/attr_unitid", "i", 1,
                       "the unit group's UnitID attribute (CMTR UnitID), one-element int64", origin=LAB)


def run(ctx: StepContext, p: FileMetadataParams) -> dict:
    # Imported when the step runs: reading the registry (status, schema) stays fast.
    from ..mcs_io import CmcrFile, CmtrFile

    rec = ctx.recording
    with CmcrFile(rec.cmcr_path) as cmcr:
        cmcr_meta = {name: root_attribute(value) for name, value in cmcr.raw_root_attributes.items()}
    with CmtrFile(rec.cmtr_path) as cmtr:
        cmtr_meta = {name: root_attribute(value) for name, value in cmtr.raw_root_attributes.items()}
        units = cmtr.unit_metadata()
    tx = ctx.tx
    for name, value in cmcr_meta.items():
        tx.write(CMCR_ATTRIBUTE.at(attribute=name), value)
    if "LB.RecordingDuration" in cmcr_meta:
        tx.write(CMCR_DURATION.at(), float(cmcr_meta["LB.RecordingDuration"]) / 1e6)
    for name, value in cmtr_meta.items():
        tx.write(CMTR_ATTRIBUTE.at(attribute=name), value)
    for unit in units:
        fields = {name.lower(): unit_field(value) for name, value in unit.raw_unit_info.items()}
        fields |= {f"attr_{name.lower()}": unit_field(value) for name, value in unit.raw_attributes.items()}
        for name, value in fields.items():
            tx.write(UNIT_FIELD.at(unit=unit.unit_id, field=name), value)
        if p.include_roi_stas and unit.roi_stas is not None and unit.roi_stas.size:
            tx.write(ROI_STAS.at(unit=unit.unit_id), unit.roi_stas.astype(np.float32))
        if p.include_unmixing and unit.unmixing is not None and unit.unmixing.size:
            tx.write(UNMIXING.at(unit=unit.unit_id), unit.unmixing.astype(np.float32))
    return {"n_units": len(units), "cmcr_attributes": len(cmcr_meta), "cmtr_attributes": len(cmtr_meta)}


@reader("file_metadata")
def written_by_synth(h5) -> bool:
    """Whether ``mea-pipeline synth`` wrote the recording (its ``.cmcr`` carries the synth mark)."""
    from ..mcs_io import SYNTH_MARK  # imported here (mcs_io loads McsPy): reading the registry stays fast

    return CMCR_ATTRIBUTE.at(attribute=SYNTH_MARK) in h5


STEP = Step(
    name="file_metadata", position=5, upstream=("load_recording",), reads=frozenset({"cmcr", "cmtr"}),
    params=FileMetadataParams, version="2", run=run,
    # Outputs named in full come before the placeholder that would also match them (the validator
    # checks a path against the first declaration it matches).
    outputs=(CMCR_DURATION, CMCR_ID_TYPE, CMCR_FILE_VERSION, CMCR_ATTRIBUTE, CMTR_ID_TYPE, CMTR_FILE_VERSION,
             CMTR_ATTRIBUTE, ROI_STAS, UNMIXING, UNIT_INFO_ROW, UNIT_INFO_COLUMN, UNIT_INFO_SENSORID, UNIT_INFO_UNITID,
             UNIT_ATTR_UNITID, UNIT_FIELD),
    description="Root attributes of both files and per-unit sorter metadata (fields by name)",
)
