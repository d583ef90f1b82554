"""``mea-pipeline export-nwb FILE_OR_FOLDER... --out DIR``: finished output files as DANDI-ready NWB files."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from mea_pipeline.nwb.options import NwbOptions

DEFAULTS = NwbOptions()  # the flags' defaults are the options' (written once, in NwbOptions)


def output_files(paths: list[Path]) -> list[Path]:
    """The ``.h5`` files named, and those directly inside the folders named, in order, once each."""
    found = []
    for path in paths:
        found += sorted(p for p in path.glob("*.h5") if not p.name.startswith(".")) if path.is_dir() else [path]
    return list(dict.fromkeys(found))


def export_nwb(
    paths: List[Path] = typer.Argument(..., help="Output .h5 files, or folders holding them"),
    out: Path = typer.Option(..., "--out", help="Folder the <recording_id>.nwb files go to (created if needed)"),
    require_dandi: bool = typer.Option(False, "--require-dandi",
                                       help="Fail (exit 1) when a subject field DANDI requires is missing"),
    species: str = typer.Option(DEFAULTS.species, "--species", help="Subject species (Latin binomial)"),
    institution: str = typer.Option(DEFAULTS.institution, "--institution", help="Institution of the lab"),
    experimenter: Optional[List[str]] = typer.Option(
        None, "--experimenter", help="'Last, First' (repeat for several); default: the sheet's Experimenter"),
    subject_id: str = typer.Option(DEFAULTS.subject_id, "--subject-id",
                                   help="Subject ID (default: the sheet's, else derived)"),
    timezone: str = typer.Option(DEFAULTS.timezone, "--timezone",
                                 help="IANA zone of the rig's clock (default: this machine's)"),
):
    """Write <recording_id>.nwb for each output file: one line per file written, one per note.

    Steps a file lacks are left out with a note. Exit code 1 when any file fails (or, with
    --require-dandi, lacks a subject field DANDI requires), 0 otherwise.
    """
    from mea_pipeline.nwb.export import export_nwb as export, nwb_name

    options = NwbOptions(species=species, institution=institution, experimenter=tuple(experimenter or ()),
                         subject_id=subject_id, timezone=timezone)
    files = output_files(paths)
    if not files:
        print("no output .h5 files found in " + ", ".join(map(str, paths)))
        raise typer.Exit(1)
    out.mkdir(parents=True, exist_ok=True)
    failed = False
    for file in files:
        try:
            report = export(file, out / nwb_name(file), options)
        except Exception as error:  # one clear line per file; the others still export
            print(f"FAILED {file}: {type(error).__name__}: {error}")
            failed = True
            continue
        print(f"wrote {report.nwb_path}")
        for note in report.notes:
            print(f"  note: {note}")
        for field in report.missing_subject:
            print(f"  missing for DANDI: {field}")
        failed |= require_dandi and bool(report.missing_subject)
    raise typer.Exit(1 if failed else 0)


def register(app: typer.Typer) -> None:
    app.command("export-nwb")(export_nwb)
