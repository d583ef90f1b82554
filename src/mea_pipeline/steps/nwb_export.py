"""nwb_export (optional): the recording's results as a DANDI-ready ``<recording_id>.nwb``.

Off unless enabled: ``[steps.nwb_export] enabled = true`` in the config (the nightly run then
keeps every recording's NWB file current), or ``--steps all,nwb_export`` for one run. The
export is :mod:`mea_pipeline.nwb`, run on the copy of the output file the step works in; the
output file records where the NWB file went and what the export left out.

Every step whose results the NWB file holds is upstream, so a change to any of them reruns the
export; the step counts as done only while its ``.nwb`` exists. The ``.nwb`` is written to a
temporary file and renamed when complete, so a killed export leaves the previous file (or none),
never a partial one. An upstream step recomputed while this step is off leaves the ``.nwb`` as
the export of the earlier results, which its provenance (the step records) names.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..nwb.options import NwbExportParams
from ..schema import OURS, Out
from ..store import OutputFile
from .registry import Step, StepContext

if TYPE_CHECKING:
    from ..config import RecordingInputs

# What the NWB file holds: the spikes, session and sheet metadata, stimulus sections, STAs, and
# every unit feature (soma, RF fit, label, axon, direction selectivity).
EXPORTED = ("load_recording", "section_time", "file_metadata", "gsheet_metadata", "section_spike_times",
            "dense_noise_sta", "rf_geometry", "soma_geometry", "cell_type_labels", "ap_tracking", "dsgc")

NWB_FILE = Out("nwb_export/file", "str", 0,
               "the NWB file written: its path from the output file's folder (absolute when elsewhere)", origin=OURS)
NWB_SIZE = Out("nwb_export/size_bytes", "i", 0, "size of the NWB file written", origin=OURS, units="bytes")
NWB_NOTES = Out("nwb_export/notes", "str", 1, "what the export left out or derived, one sentence each "
                "(empty when nothing)", origin=OURS)


def nwb_path(recording: "RecordingInputs", params: NwbExportParams) -> Path:
    """Where the step writes the recording's NWB file (``folder``, else beside the output file)."""
    home = Path(recording.output_path).parent
    return home / params.folder / f"{recording.recording_id}.nwb"


def run(ctx: StepContext, p: NwbExportParams) -> dict:
    # Imported when the step runs: reading the registry (status, schema) does not load pynwb.
    from ..nwb.export import export_open

    target = nwb_path(ctx.recording, p)
    target.parent.mkdir(parents=True, exist_ok=True)
    records = {name: record for name, record in OutputFile(ctx.recording.output_path).verified_records().items()
               if name in EXPORTED}
    report = export_open(ctx.upstream_file("load_recording"), records, target, p)
    for field in report.missing_subject:
        ctx.warn(f"missing for DANDI: {field}")
    home = Path(ctx.recording.output_path).parent
    shown = target.relative_to(home) if target.is_relative_to(home) else target
    size = target.stat().st_size
    ctx.write({NWB_FILE: str(shown), NWB_SIZE: size, NWB_NOTES: report.notes})
    return {"nwb_mb": round(size / 1e6, 1), "notes": len(report.notes)}


STEP = Step(
    name="nwb_export", position=12, upstream=EXPORTED, reads=frozenset(), params=NwbExportParams, version="1",
    run=run, outputs=(NWB_FILE, NWB_SIZE, NWB_NOTES), optional=True,
    external_outputs=lambda recording, params: (nwb_path(recording, params),),
    description="The results as a DANDI-ready <recording_id>.nwb (NWB 2.x), beside the output file",
)
