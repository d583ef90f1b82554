"""What the ``mea-pipeline`` commands share: their options, the Prefect environment, the config."""

from __future__ import annotations

import functools
import inspect
import os
from pathlib import Path
from typing import Optional

import typer

from mea_pipeline.batch_options import DEFAULT_OUTPUT
from mea_pipeline.config import PipelineConfig

from . import local_server

HEARTBEAT_S = 30


CsvOpt = typer.Option(None, "--csv", help="Mapping CSV (cmcr_path, cmtr_path, matched)")
OutputOpt = typer.Option(None, "--output", help=f"Output folder (default {DEFAULT_OUTPUT})")
StartOpt = typer.Option(None, "--start", help="First matched row (0-based, default 0)")
EndOpt = typer.Option(None, "--end", help="Stop before this matched row (default: all)")
PathMapOpt = typer.Option(None, "--path-map", help="Rewrite CSV paths, e.g. 'M:\\=/mnt/m/'")
StepsOpt = typer.Option(None, "--steps", help="Steps to run: '1-5', '6-11', '1,3' or names (default all)")
ConfigOpt = typer.Option(None, "--config", help="TOML/YAML file with inputs, [steps.<name>] parameters, [batch]")
DebugOpt = typer.Option(False, "--debug", help="Verbose logging (Prefect INFO logs on the console)")
# The inputs every processing command takes (``INPUT_KEYS``); given ones override the config file.
INPUT_OPTIONS = {
    "stimuli": (Optional[Path], typer.Option(None, "--stimuli", help="Stimulus library folder")),
    "playlist": (Optional[str], typer.Option(None, "--playlist", help="Playlist name in the library's playlist.csv")),
    "labels": (Optional[Path], typer.Option(
        None, "--labels", help="Manual label folder (<labels>/<recording_id>/{RGC,AC,Other,Unknown})")),
    "gsheet_csv": (Optional[Path], typer.Option(None, "--gsheet-csv", help="Local export of the lab's sheet (fallback)")),
    "gsheet_credentials": (Optional[Path], typer.Option(
        None, "--gsheet-credentials", help="Service-account JSON for the Google Sheet")),
    "gsheet_title": (Optional[str], typer.Option(
        None, "--gsheet-title", help="Spreadsheet title (default 'MEA dashboard')")),
    "ap_model": (Optional[Path], typer.Option(
        None, "--ap-model", help="AP-tracking CNN weights (default: the packaged weights)")),
    "on_off_dict": (Optional[Path], typer.Option(
        None, "--on-off-dict", help="The lab's moving-bar crossing pickle (optional)")),
    "device": (Optional[str], typer.Option(None, "--device", help="auto, cpu or cuda (AP-tracking CNN)")),
}


def prefect_environment(debug: bool) -> None:
    """Offline-friendly Prefect settings and the local server; must run before Prefect is imported.

    Runs log at INFO (the UI shows the batch's lines); the terminal shows Prefect's own messages
    from WARNING up unless ``--debug``. Flow runs send heartbeats, so a run whose process was
    killed is marked Crashed on the server.
    """
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "INFO" if debug else "WARNING")
    os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(HEARTBEAT_S))
    local_server.connect()


def registry():
    # Imported on use: the steps pull in torch and McsPy, which `inspect`/`scan` do not need.
    from mea_pipeline.steps import REGISTRY

    return REGISTRY


def with_input_options(command):
    """Give a command the input options (``--stimuli`` ... ``--device``, :data:`INPUT_OPTIONS`).

    The command declares an ``inputs`` parameter instead and receives the options that were
    given, as config values (paths as text; those not given are left to the config file).
    """
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "inputs"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)
             for name, (annotation, option) in INPUT_OPTIONS.items()]

    @functools.wraps(command)
    def run(**arguments):
        flags = {name: arguments.pop(name) for name in INPUT_OPTIONS}
        given = {k: str(v) if isinstance(v, Path) else v for k, v in flags.items() if v is not None}
        return command(**arguments, inputs=given)

    run.__signature__ = inspect.Signature(own + added)
    return run


def load_config(config_file: Optional[Path], inputs: dict) -> PipelineConfig:
    return PipelineConfig.load(config_file, registry(), inputs)
