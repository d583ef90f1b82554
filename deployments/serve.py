"""The pipeline's deployments, served from one long-lived process.

* ``batch_all_steps/nightly``: on a cron schedule, every recording without a complete output.
* ``batch_all_steps/rerun-failed``: exactly the recordings whose output records a failed step.

Both can be started by hand from the UI or with
``prefect deployment run 'batch_all_steps/rerun-failed' --param concurrency=2``.
"""

from __future__ import annotations

from pathlib import Path

from prefect import serve
from prefect.schedules import Cron

from mea_pipeline.flows.batch_all_steps import batch_all_steps


def deployments(csv: Path | None = None, output: Path | None = None, config_file: Path | None = None,
                cron: str = "0 2 * * *", timezone: str = "Europe/Berlin") -> list:
    # Only what the command line gave: every other batch option comes from the config's [batch].
    base = {k: str(v) for k, v in {"csv": csv, "output": output, "config_file": config_file}.items() if v}
    nightly = batch_all_steps.to_deployment(
        name="nightly", schedules=[Cron(cron, timezone=timezone)], parameters=base,
        concurrency_limit=1, tags=["mea-pipeline"],
        description="Nightly: process every recording that has no complete output yet",
    )
    rerun = batch_all_steps.to_deployment(
        name="rerun-failed", parameters=base | {"only_failed": True}, concurrency_limit=1,
        tags=["mea-pipeline"], description="Rerun exactly the recordings whose output records a failed step",
    )
    return [nightly, rerun]


def serve_deployments(**kwargs) -> None:
    serve(*deployments(**kwargs))
