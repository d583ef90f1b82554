"""``export_nwb``: one finished output file to one ``<recording_id>.nwb``."""

from __future__ import annotations

from pathlib import Path

from ..steps import load_recording
from ..store import OutputFile, StepRecord
from .atomic import write_atomically
from .electrodes import add_electrodes, electrode_pitch
from .options import ExportReport, NwbOptions
from .receptive_fields import add_receptive_fields
from .session import new_nwbfile
from .source import Source
from .stimulus import add_stimulus
from .subject import make_subject
from .units import add_units


def nwb_name(output_h5: Path) -> str:
    """``<recording_id>.nwb`` for ``<recording_id>.h5``."""
    return Path(output_h5).stem + ".nwb"


def export_nwb(output_h5: Path, nwb_path: Path, options: NwbOptions = NwbOptions()) -> ExportReport:
    """Export one output file as an NWB 2.x file, atomically.

    Parameters
    ----------
    output_h5 : Path
        A finished ``<recording_id>.h5``; it needs load_recording and file_metadata (spikes and the
        session's date). Every other step it lacks is skipped with a note.
    nwb_path : Path
        The file to write (its folder must exist); replaced only when the export succeeds.
    options : NwbOptions
        Species, institution, experimenters, subject ID, time zone, pitch default, keywords.

    Returns
    -------
    ExportReport
        The path written, the notes (parts skipped or derived) and the subject fields DANDI
        needs that are missing.

    Raises
    ------
    ValueError
        When the output file lacks spikes or the session's date.
    """
    output_h5 = Path(output_h5)
    with OutputFile(output_h5).open() as h5:
        if h5 is None:
            raise ValueError(f"{output_h5}: not a readable output file")
        return export_open(h5, OutputFile(output_h5).verified_records(), nwb_path, options)


def export_open(h5, records: dict[str, StepRecord], nwb_path: Path,
                options: NwbOptions = NwbOptions()) -> ExportReport:
    """:func:`export_nwb` of an open output file whose verified step records are ``records``.

    Only the steps in ``records`` are exported (the ``nwb_export`` step passes its upstream
    steps' records and the open copy of the file it runs in).
    """
    nwb_path = Path(nwb_path)
    report = ExportReport(nwb_path)
    source = Source(h5, records)
    if not source.has("load_recording"):
        raise ValueError(f"{h5.filename}: no verified load_recording result (no spikes to export)")
    rate = load_recording.sampling_rate(h5)
    nwbfile = new_nwbfile(source, options, report.notes)
    nwbfile.subject = make_subject(source, options, nwbfile.session_start_time.date(), report.notes,
                                   report.missing_subject)
    pitch = electrode_pitch(source, options.electrode_pitch_um, report.notes)
    add_electrodes(nwbfile, pitch)
    units = add_units(nwbfile, source, rate, pitch, report.notes)
    add_stimulus(nwbfile, source, units, rate, report.notes)
    add_receptive_fields(nwbfile, source, units, report.notes)
    # The electrical images are read from the output file while the NWB file is written.
    write_atomically(nwbfile, nwb_path)
    return report
