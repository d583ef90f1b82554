"""The pipeline's deployments, served from one long-lived process (``mea-pipeline serve``).

* ``batch_all_steps/nightly``: on a cron schedule (default 02:00 Europe/Berlin), every recording of
  the configured mapping CSV, or of the data folders scanned that night, without a complete output.
* ``batch_all_steps/rerun-failed``: exactly the recordings whose output records a failed step, each
  from its failed step on (the steps before it are cached in the file).
* ``batch_all_steps/batch``: a manual run taking every batch parameter.

Each can be started from the UI or with ``prefect deployment run 'batch_all_steps/batch' --param
start=0 --param end=3``. The schedule fires only while ``serve`` runs: stopping it pauses the
deployments. Each run reads ``[batch]`` of the config file when it starts.
"""

from __future__ import annotations

from prefect import serve
from prefect.schedules import Cron

from mea_pipeline.flows.batch_all_steps import batch_all_steps

TAGS = ["mea-pipeline"]


def deployments(base: dict, cron: str = "0 2 * * *", timezone: str = "Europe/Berlin", task_runner=None) -> list:
    """The three deployments; ``base`` holds the parameters every run gets (csv, output, config_file, inputs)."""
    flow = batch_all_steps if task_runner is None else batch_all_steps.with_options(task_runner=task_runner)
    nightly = flow.to_deployment(
        name="nightly", schedules=[Cron(cron, timezone=timezone)], parameters=base,
        concurrency_limit=1, tags=TAGS + ["trigger:nightly"],
        description="Nightly: every recording without a complete output yet",
    )
    rerun = flow.to_deployment(
        name="rerun-failed", parameters=base | {"only_failed": True}, concurrency_limit=1,
        tags=TAGS + ["trigger:rerun-failed"],
        description="Rerun exactly the recordings whose output records a failed step, from that step on",
    )
    manual = flow.to_deployment(
        name="batch", parameters=base, tags=TAGS + ["trigger:manual"],
        description="A batch with any parameters (start, end, steps, overwrite, recording_ids, ...)",
    )
    return [nightly, rerun, manual]


def serve_deployments(base: dict, cron: str, timezone: str, task_runner=None) -> None:
    serve(*deployments(base, cron, timezone, task_runner))
