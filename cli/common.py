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
StepsOpt = typer.Option(
    None, "--steps",
    help="Steps to run: names, numbers in run order ('1-5', '1,3') or a stage: 'raw' (steps that read the raw "
         "files) or 'offline' (the rest); default all. 'all' and the stages hold an optional step only where the "
         "config enables it; 'all,<name>' adds one to this run")
ConfigOpt = typer.Option(None, "--config", help="TOML/YAML file with inputs, [steps.<name>] parameters, [batch]")
DebugOpt = typer.Option(False, "--debug", help="Verbose logging (Prefect INFO logs on the console)")



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


def say_ui_link(state) -> None:
    """Print the UI page of the flow run that ended in ``state``, when its runs stay on a server.

    Runs on the temporary server Prefect starts when none is running vanish with the command:
    then there is no page to link.
    """
    from prefect.utilities.urls import url_for

    run_id = state.state_details.flow_run_id
    link = url_for("flow-run", obj_id=run_id) if run_id else None
    if link:
        print(f"In the UI: {link}", flush=True)


def registry():
    # Imported on use: the steps pull in torch and McsPy, which `inspect`/`scan` do not need.
    from mea_pipeline.steps import REGISTRY

    return REGISTRY


def input_options() -> dict[str, tuple[type, typer.models.OptionInfo]]:
    """The input flags of every processing command, one per option the inputs declare
    (:func:`mea_pipeline.inputs.options`), as (annotation, typer option) by config key."""
    from mea_pipeline.inputs import PATH, options

    return {key: (Optional[Path] if option.kind == PATH else Optional[str],
                  typer.Option(None, option.flag, help=option.help))
            for key, option in options().items()}


class with_input_options:
    """Give a command the input options (``--stimuli`` ... ``--device``, :func:`input_options`).

    The command declares an ``inputs`` parameter instead and receives the options that were
    given, as config values (paths as text; those not given are left to the config file). The
    flags are read from the input declarations when the command line is built, so an input a
    step registered at run time declares is a flag too.
    """

    def __init__(self, command):
        functools.update_wrapper(self, command, assigned=("__module__", "__name__", "__qualname__", "__doc__"))
        self._own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "inputs"]

    @property
    def __signature__(self) -> inspect.Signature:
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)
                 for name, (annotation, option) in input_options().items()]
        return inspect.Signature(self._own + added)

    @property
    def __annotations__(self) -> dict:  # typer reads the hints of the callback
        return {p.name: p.annotation for p in self.__signature__.parameters.values()}

    def __call__(self, **arguments):
        flags = {name: arguments.pop(name) for name in input_options() if name in arguments}
        given = {k: str(v) if isinstance(v, Path) else v for k, v in flags.items() if v is not None}
        return self.__wrapped__(**arguments, inputs=given)


def load_config(config_file: Optional[Path], inputs: dict) -> PipelineConfig:
    return PipelineConfig.load(config_file, registry(), inputs)
