"""The NWBFile itself: session identity, a time-zone-aware start, experimenters and provenance."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from pynwb import NWBFile

from .. import __version__
from ..steps import file_metadata, gsheet_metadata, load_recording
from .options import NwbOptions
from .source import Source

# CMOS-MEA-Control writes DateTime as "dd.mm.yyyy HH:MM:SS"; ISO text is accepted too.
DATETIME_FORMATS = ("%d.%m.%Y %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")


def parse_local_time(text: str) -> datetime | None:
    """The naive datetime of a raw file's ``DateTime`` text, None when no known form fits."""
    for form in DATETIME_FORMATS:
        try:
            return datetime.strptime(text.strip(), form)
        except ValueError:
            continue
    return None


def session_start(source: Source, options: NwbOptions, notes: list[str]) -> datetime:
    """The recording's start, tz-aware, from the raw file's ``DateTime`` as file_metadata stored it.

    The rig's clock has no zone: ``options.timezone`` names it (this machine's zone when empty,
    said in a note). Without a readable ``DateTime`` the export cannot date the session.
    """
    text = source.text(file_metadata.CMCR_ATTRIBUTE, attribute="DateTime") if source.has("file_metadata") else ""
    local = parse_local_time(text)
    if local is None:
        raise ValueError("the output file holds no readable raw-file DateTime (run file_metadata); "
                         "NWB needs the session start")
    if options.timezone:
        return local.replace(tzinfo=ZoneInfo(options.timezone))
    notes.append("session start: the raw file's clock has no time zone; this machine's zone was used "
                 "(give --timezone, or timezone in [steps.nwb_export], to name the rig's)")
    return local.astimezone()


def experimenters(source: Source, options: NwbOptions) -> list[str]:
    """Experimenters from the options, else the sheet row's ``Experimenter``.

    The cell is split on ';' only: a name in DANDI's "Last, First" form holds a comma.
    """
    if options.experimenter:
        return list(options.experimenter)
    cell = gsheet_metadata.cell(source.h5, "Experimenter") if source.has("gsheet_metadata") else None
    return [name.strip() for name in (cell or "").split(";") if name.strip()]


def provenance(source: Source) -> str:
    """JSON of the pipeline version and every step record (parameters, code version, input fingerprints)."""
    steps = {name: {"status": r.status, "code_version": r.code_version, "pipeline_version": r.pipeline_version,
                    "cache_key": r.cache_key, "parameters": r.parameters, "input_fingerprint": r.input_fingerprint,
                    "output_digest": r.output_digest, "finished_at": r.finished_at, "warnings": r.warnings}
             for name, r in source.records.items()}
    return json.dumps({"pipeline": "mea-pipeline", "pipeline_version": __version__, "steps": steps}, indent=1,
                      default=str)


def new_nwbfile(source: Source, options: NwbOptions, notes: list[str]) -> NWBFile:
    """The NWBFile of the recording, before any table is added."""
    recording_id = source.text(load_recording.DATASET_ID)
    names = experimenters(source, options)
    if not names:
        notes.append("experimenter: neither --experimenter (experimenter in [steps.nwb_export]) nor the sheet's "
                     "Experimenter gives one")
    return NWBFile(
        session_description=f"Retina on a 65 x 65 CMOS-MEA (MCS), recording {recording_id}: spike-sorted "
                            "units, their electrical images and features, and the visual stimulus shown",
        identifier=str(uuid.uuid5(uuid.NAMESPACE_URL, f"mea-pipeline:{recording_id}:{source_digest(source)}")),
        session_start_time=session_start(source, options, notes),
        session_id=recording_id,
        institution=options.institution or None,
        experimenter=names or None,
        keywords=list(options.keywords),
        experiment_description="Ex vivo retina recorded on a high-density CMOS microelectrode array while "
                               "visual stimuli were projected onto it; processed by mea-pipeline.",
        source_script=f"mea-pipeline {__version__}",
        source_script_file_name="mea-pipeline",
        notes=provenance(source),
    )


def source_digest(source: Source) -> str:
    """The output digests of every step: the same outputs give the same NWB identifier."""
    return ",".join(f"{name}={r.output_digest}" for name, r in sorted(source.records.items()))
