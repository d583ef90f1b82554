"""``mea-pipeline compare LAB.h5 OURS.h5``: check a migration on a lab's own files, key by key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .common import registry


def compare(
    lab: Path = typer.Argument(..., help="The lab's HDF5 file (written by the lab's scripts)"),
    ours: Path = typer.Argument(..., help="This pipeline's output for the same recording"),
    as_json: bool = typer.Option(False, "--json", help="Print the full per-key report as one JSON object"),
    rtol: Optional[float] = typer.Option(
        None, "--rtol", help="Relative tolerance for every float (default: 1e-6 float64, 1e-4 float32, 1e-2 float16)"),
):
    """Per key: equal, within tolerance, documented (a fixed lab bug), differs, missing, extra.

    Exit code 0 when nothing differs and nothing is missing, 1 otherwise, 2 for a bad file.
    """
    from mea_pipeline.compare import compare_files, format_summary

    report = compare_files(lab, ours, registry(), rtol=rtol)
    print(json.dumps(report.to_json(), indent=1) if as_json else format_summary(report))
    raise typer.Exit(report.exit_code)


def register(app: typer.Typer) -> None:
    app.command()(compare)
