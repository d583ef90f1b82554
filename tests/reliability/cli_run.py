"""Run the command line in-process and read the mapping CSV of the tiny dataset, for the matrix tests."""

from __future__ import annotations

import pandas as pd

from mea_pipeline.cli.main import main


def cli(capsys, *args) -> tuple[int, str, str]:
    """``mea-pipeline *args`` in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def mapping(tiny) -> pd.DataFrame:
    return pd.read_csv(tiny["mapping_csv"], dtype=str, keep_default_na=False)


def write_csv(tmp_path, table: pd.DataFrame | str):
    path = tmp_path / "mapping.csv"
    if isinstance(table, str):
        path.write_text(table)
    else:
        table.to_csv(path, index=False)
    return path
