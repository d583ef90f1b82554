"""What a batch needs on the Prefect server: the raw-read limit and the zombie-run automation.

Both are created (or adjusted) idempotently when a batch starts, so a fresh server, a temporary
one or a wiped one is always ready.

The automation marks a flow run Crashed when its heartbeats stop (its process was killed or its
machine died): Prefect's OSS server has no other mechanism, and a run left Running would block the
next nightly run (the deployments allow one run at a time). Flow runs send a heartbeat every
``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds (the command line, ``serve`` and the work-pool
deployments set 30); the automation waits three intervals, as Prefect's guide advises, so a slow
heartbeat is not taken for a death. Prefect's own default is 180 s: a run started some other way
with that default would be marked Crashed 90 s after its first heartbeat.
"""

from __future__ import annotations

from datetime import timedelta

from prefect.automations import Automation
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.events import emit_event
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.runtime import flow_run

from mea_pipeline.flows.process_recording import RAW_READS_LIMIT

ZOMBIE_AUTOMATION = "mea-pipeline: crash runs without heartbeat"
HEARTBEAT_GRACE = timedelta(seconds=90)


def zombie_automation() -> Automation:
    return Automation(
        name=ZOMBIE_AUTOMATION,
        description="A flow run whose heartbeats stopped (killed process, dead machine) is marked Crashed",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
                    "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed"},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=HEARTBEAT_GRACE,
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message="no heartbeat for 90 s: the run's process died")],
    )


def prepare_server(raw_reads: int) -> None:
    """Create or resize the raw-read limit; create the zombie-run automation if it is missing."""
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(RAW_READS_LIMIT, max(1, raw_reads))
        if not client.read_automations_by_name(ZOMBIE_AUTOMATION):
            zombie_automation().create()
            _heartbeat_now()


def _heartbeat_now() -> None:
    """Start the new automation's clock for the run that created it.

    The automation sees only heartbeats sent after it exists; the run's first one went out before,
    so without this a run killed before its second heartbeat (30 s later) would stay Running.
    """
    if flow_run.id:
        emit_event(event="prefect.flow-run.heartbeat",
                   resource={"prefect.resource.id": f"prefect.flow-run.{flow_run.id}",
                             "prefect.resource.name": flow_run.name or ""})
