"""Recordings processed by Prefect workers: the batch hands each one to a deployment of the per-recording flow.

With ``via_deployment`` (``--via-deployment process_recording/workers``) the batch's wrapper task
does not run the recording's subflow in its own process: it creates a flow run of that
deployment (shown under the batch in the UI), which exactly one worker of the deployment's work
pool claims (the server accepts one Pending transition per run) and runs, and waits for it. The
outcome is read from the recording's output file, which every machine shares: the worker's
process keeps no result the batch could fetch.
"""

from __future__ import annotations

from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.context import TagsContext
from prefect.client.schemas.objects import FlowRun, WorkerStatus
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.states import State

from mea_pipeline.config import PipelineConfig, RecordingInputs
from mea_pipeline.errors import InputError
from mea_pipeline.steps import REGISTRY
from mea_pipeline.store import OutputFile

POLL_S = 2


def check_deployment(name: str, logger) -> None:
    """Fail the batch at once (one line) when the deployment is missing; warn when no worker is online."""
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(name)
        except ObjectNotFound:
            raise InputError(
                f"deployment {name} not found on the Prefect server: deploy it with `prefect --no-prompt deploy "
                "--all --prefect-file deployments/prefect.yaml` "
                "(docs/operations.md, 'Scale-out: Prefect workers')") from None
        pool = deployment.work_pool_name
        if pool is None:
            return
        workers = client.read_workers_for_work_pool(pool)
    if not any(worker.status == WorkerStatus.ONLINE for worker in workers):
        logger.warning(f"no worker of work pool '{pool}' is online: the recordings wait until one starts "
                       f"(`prefect worker start --pool {pool}`)")


def run_on_deployment(name: str, recording: RecordingInputs, config: PipelineConfig, steps: str | None,
                      force: bool) -> FlowRun:
    """Run one recording as a flow run of deployment ``name``; returns the run once it is final.

    The run carries the batch's tags (``run_deployment`` does not read them from the context).
    """
    return run_deployment(
        name, parameters={"recording": recording, "config": config, "steps": steps, "force": force},
        tags=sorted(TagsContext.get().current_tags),
        flow_run_name=f"rec-{recording.recording_id}", timeout=None, poll_interval=POLL_S,
    )


def recorded_failure(state: State, output_path: Path, steps: str | None,
                     enabled: tuple[str, ...] = ()) -> tuple[str, str]:
    """Failed step and message of a recording run elsewhere, as a local run reports them.

    The first selected step, in run order, whose record holds an error (a later one may hold an
    older failure); the run's state message when none does (e.g. the worker's process died).
    """
    states = OutputFile(output_path).step_states(verify=False)
    for name in (step.name for step in REGISTRY.select(steps, enabled)):
        if states.get(name, "").startswith("failed: "):
            return name, states[name].removeprefix("failed: ")
    return "", state.message or state.name
