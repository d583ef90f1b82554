"""The NWB Subject from the recording's sheet row: age at the session, sex, genotype, species, ID."""

from __future__ import annotations

from datetime import date, datetime

from pynwb.file import Subject

from ..steps import gsheet_metadata
from .options import NwbOptions
from .source import Source

# Date forms the lab's sheet uses for DOB (US month/day first, as Google Sheets exports it).
DATE_FORMATS = ("%m/%d/%Y", "%m/%d/%y", "%Y-%m-%d", "%d.%m.%Y", "%Y/%m/%d")
SEX_CODES = {"m": "M", "male": "M", "f": "F", "female": "F", "u": "U", "unknown": "U", "o": "O", "other": "O"}
# Sheet columns that hold an animal ID, if the lab adds one.
ID_COLUMNS = ("Subject_ID", "Animal_ID", "Mouse_ID", "Subject", "Animal", "Mouse")


def parse_date(text: str) -> date | None:
    """A sheet date, None when empty or in no known form."""
    for form in DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), form).date()
        except ValueError:
            continue
    return None


def iso_age(born: date, session: date) -> str:
    """ISO 8601 duration of the age in days, e.g. ``P109D``."""
    return f"P{(session - born).days}D"


def sex_code(text: str) -> str | None:
    """M, F, U or O from the sheet's Sex cell; None when the cell says nothing usable."""
    return SEX_CODES.get(text.strip().lower())


def make_subject(source: Source, options: NwbOptions, session: date, notes: list[str],
                 missing: list[str]) -> Subject:
    """The Subject; fields DANDI requires that cannot be filled are appended to ``missing``."""
    def cell(column: str) -> str:
        value = gsheet_metadata.cell(source.h5, column) if source.has("gsheet_metadata") else None
        return (value or "").strip()

    if not source.has("gsheet_metadata") or not source.text(gsheet_metadata.MATCH_FILE_NAME):
        notes.append("subject: the output file holds no sheet row (gsheet_metadata)")
    born = parse_date(cell("DOB"))
    age = None
    if born is None:
        missing.append(f"subject age: the sheet's DOB {cell('DOB')!r} is not a date")
    elif born > session:
        missing.append(f"subject age: DOB {born} is after the session ({session})")
    else:
        age = iso_age(born, session)
    sex = sex_code(cell("Sex"))
    if sex is None:
        missing.append(f"subject sex: the sheet's Sex {cell('Sex')!r} is not M/F/U/O")
    subject_id = options.subject_id or next((cell(c) for c in ID_COLUMNS if cell(c)), "")
    if not subject_id and born is not None:
        # One retina per animal and day is the lab's practice: birth date + recording day name the animal.
        subject_id = f"dob{born:%Y%m%d}-rec{session:%Y%m%d}"
        notes.append(f"subject_id: none given or in the sheet; derived as {subject_id} "
                     "(give --subject-id, or subject_id in [steps.nwb_export])")
    if not subject_id:
        missing.append("subject_id: none given, none in the sheet, and no DOB to derive one from")
    subject_id = subject_id.replace("/", "-")  # DANDI forbids slashes in IDs
    return Subject(subject_id=subject_id or None, species=options.species, sex=sex or "U", age=age,
                   date_of_birth=None, genotype=cell("Genotype") or None,
                   description="Mouse whose retina was recorded; fields from the lab's sheet row.")
