"""What the caller of an NWB export chooses, and what the export reports back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SPECIES = "Mus musculus"
DEFAULT_KEYWORDS = ("retina", "retinal ganglion cells", "CMOS-MEA", "high-density microelectrode array",
                    "spike sorting", "receptive field", "direction selectivity")


@dataclass(frozen=True)
class NwbOptions:
    """Choices of one export (``export-nwb``'s flags; with :class:`NwbExportParams`, the step's parameters).

    Attributes
    ----------
    species : str
        Subject species, Latin binomial (DANDI wants this form).
    institution : str
        Institution of the lab; empty leaves the field unset.
    experimenter : tuple of str
        Experimenters as "Last, First"; empty takes the sheet row's ``Experimenter``.
    subject_id : str
        Subject ID; empty takes an ID column of the sheet row, else one derived from the date of
        birth and the recording day (reported as a note).
    timezone : str
        IANA zone the rig's clock runs in (the raw file's ``DateTime`` has none); empty = this
        machine's local zone.
    electrode_pitch_um : float
        Electrode spacing used when the raw file does not give one (16 um on the 65 x 65 CMOS-MEA).
    keywords : tuple of str
        Keywords of the file.
    """

    species: str = DEFAULT_SPECIES
    institution: str = ""
    experimenter: tuple[str, ...] = ()
    subject_id: str = ""
    timezone: str = ""
    electrode_pitch_um: float = 16.0
    keywords: tuple[str, ...] = DEFAULT_KEYWORDS


@dataclass(frozen=True)
class NwbExportParams(NwbOptions):
    """Parameters of the optional ``nwb_export`` step: the export's choices and where the file goes.

    Attributes
    ----------
    folder : str
        Folder of the ``<recording_id>.nwb`` files; empty = the output folder, a relative path is
        taken from the output folder.
    """

    folder: str = ""


@dataclass
class ExportReport:
    """What one export wrote and what it had to leave out.

    Attributes
    ----------
    nwb_path : Path
        The file written.
    notes : list of str
        Parts skipped or derived, one sentence each (e.g. a step the output file lacks).
    missing_subject : list of str
        Subject fields DANDI requires that the export could not fill (``--require-dandi`` fails on them).
    """

    nwb_path: Path
    notes: list[str] = field(default_factory=list)
    missing_subject: list[str] = field(default_factory=list)
