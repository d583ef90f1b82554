"""The pipeline's deployments, served from one long-lived process (``mea-pipeline serve``).

The served deployments of :data:`~mea_pipeline.deployments.specs.DEPLOYMENTS`:

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

from mea_pipeline.deployments.specs import BATCH_FLOW, DEPLOYMENTS, NIGHTLY_CRON, NIGHTLY_TIMEZONE, TAGS
from mea_pipeline.flows.batch_all_steps import batch_all_steps


def deployments(base: dict, cron: str = NIGHTLY_CRON, timezone: str = NIGHTLY_TIMEZONE, task_runner=None) -> list:
    """The served deployments; ``base`` holds the parameters every run gets (csv, output, config_file, inputs)."""
    flow = batch_all_steps if task_runner is None else batch_all_steps.with_options(task_runner=task_runner)
    served = [spec for spec in DEPLOYMENTS if spec.served]
    if any(spec.entrypoint != BATCH_FLOW for spec in served):
        raise ValueError("serve serves the batch flow's deployments only")
    return [flow.to_deployment(
        name=spec.name, description=spec.description, parameters=base | spec.parameters,
        schedules=[Cron(cron, timezone=timezone)] if spec.nightly else None,
        concurrency_limit=spec.concurrency_limit, tags=[*TAGS, *spec.tags],
    ) for spec in served]


def serve_deployments(base: dict, cron: str, timezone: str, task_runner=None) -> None:
    serve(*deployments(base, cron, timezone, task_runner))
