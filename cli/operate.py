"""``mea-pipeline server``, ``serve`` and ``prefect``: the lab's long-lived Prefect server, its
deployments, and Prefect's own command line pointed at that server."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from mea_pipeline.batch_options import DEFAULT_OUTPUT, BatchOptions
from mea_pipeline.errors import PipelineError

from . import local_server
from .common import ConfigOpt, load_config, prefect_environment, with_input_options


def server(
    host: str = typer.Option(
        "127.0.0.1", "--host",
        help="Address to listen on; 0.0.0.0 lets other desks open the UI, and then the API requires an auth string"),
    port: int = typer.Option(4200, "--port"),
    database_url: Optional[str] = typer.Option(
        None, "--database-url", help="postgresql+asyncpg://user:pw@host:5432/db (default: SQLite in PREFECT_HOME)"),
    require_auth: bool = typer.Option(
        False, "--require-auth", help="Require the auth string on 127.0.0.1 too (always required on other addresses)"),
):
    """Run a local Prefect server with its UI; every mea-pipeline command on this machine reports to it.

    On an address other machines reach, the API and the UI require an auth string: the one in
    MEA_PIPELINE_AUTH_STRING, or one generated once, kept in <MEA_PIPELINE_HOME>/auth_string
    (readable by its owner only), where this machine's commands find it.
    """
    prefect_environment(False)
    raise typer.Exit(local_server.serve_forever(host, port, database_url, require_auth))


def prefect(context: typer.Context):
    """Run Prefect's own command line against the server `mea-pipeline server` runs (its address
    and auth string), e.g. `mea-pipeline prefect deployment run 'batch_all_steps/rerun-failed'`."""
    url = local_server.connect()
    if not url and not set(context.args) & {"--help", "-h"}:
        raise PipelineError(f"no mea-pipeline server answers (none recorded in {local_server.server_file()}): "
                            "start one with `mea-pipeline server`, or set PREFECT_API_URL")
    os.execv(sys.executable, [sys.executable, "-m", "prefect", *context.args])


@with_input_options
def serve(
    csv: Optional[Path] = typer.Option(None, "--csv", help="Mapping CSV (default: [batch] csv of --config)"),
    output: Optional[Path] = typer.Option(None, "--output", help=f"Output folder (default: [batch] output, else {DEFAULT_OUTPUT})"),
    scan_root: Optional[list[Path]] = typer.Option(
        None, "--scan-root", help="Scan this data folder each night instead of reading a CSV (repeatable)"),
    config_file: Optional[Path] = ConfigOpt,
    cron: str = typer.Option("0 2 * * *", "--cron", help="Nightly schedule (cron)"),
    timezone: str = typer.Option("Europe/Berlin", "--timezone", help="Time zone of the schedule"),
    dask_address: Optional[str] = typer.Option(None, "--dask-address", help="tcp://host:port of a Dask scheduler"),
    inputs: Optional[dict] = None,
):
    """Serve the nightly, rerun-failed and batch deployments; keep it running (stopping it pauses them)."""
    scan_roots = [str(p) for p in scan_root] if scan_root else None
    # One clear line now, not at 02:00.
    options = BatchOptions.load(config_file, csv=str(csv) if csv else None, output=str(output) if output else None,
                                scan_roots=scan_roots, dask_address=dask_address)
    load_config(config_file, inputs)
    prefect_environment(False)
    if not os.environ.get("PREFECT_API_URL"):
        raise PipelineError("serve needs a running server: start `mea-pipeline server` first "
                            "(or set PREFECT_API_URL)")
    from mea_pipeline.deployments.serve import serve_deployments

    base = {"csv": str(csv) if csv else None, "output": str(output) if output else None, "scan_roots": scan_roots,
            "config_file": str(config_file) if config_file else None, "inputs": inputs or None}
    runner = None
    if options.dask_address:
        from prefect_dask import DaskTaskRunner

        runner = DaskTaskRunner(address=options.dask_address)
    print(f"serving batch_all_steps/nightly ({cron}, {timezone}), /rerun-failed and /batch on "
          f"{os.environ['PREFECT_API_URL']}; keep this running for the schedule to fire", flush=True)
    serve_deployments({k: v for k, v in base.items() if v}, cron, timezone, runner)


def register(app: typer.Typer) -> None:
    app.command()(server)
    app.command()(serve)
    # Every argument goes to Prefect as it is (its --help included).
    app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                  "help_option_names": []})(prefect)
