"""Run the command line in-process and read the mapping CSV of the tiny dataset, for the matrix tests."""

from __future__ import annotations

import logging
import sys

import pandas as pd

from mea_pipeline.cli.main import main


def cli(capture, *args) -> tuple[int, str, str]:
    """``mea-pipeline *args`` in this process: (exit code, stdout, stderr) as ``capture`` (capsys)
    saw them, with what Prefect's console log handler prints on a terminal.

    Under pytest Prefect's logging has no console handler; this adds one writing to the captured
    stderr, at the level the command line gives it, as on a terminal.
    """
    from prefect.logging.handlers import PrefectConsoleHandler

    console = PrefectConsoleHandler(stream=sys.stderr, level=logging.WARNING)
    root = logging.getLogger()
    root.addHandler(console)
    try:
        code = main([str(a) for a in args])
    finally:
        root.removeHandler(console)
    captured = capture.readouterr()
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
