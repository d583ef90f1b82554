"""The batch's report to the lab: one short message when a batch ends, sent by the Prefect server.

With ``report_webhook`` set (``[batch]`` of the config file), the batch makes sure the server has
a notification block posting Slack-compatible JSON (``{"text": ...}``) to that address and an
automation that sends it, then, when it ends, emits one ``mea-pipeline.batch.finished`` event
carrying the report (counts, each failed recording with its reason, the run's UI page, the
command that reruns the failures). The automation matches the event by a label naming the
address, so each batch's report goes where its own config says and a batch without the option
sends nothing. Prefect's automations service does the sending: a slow or unreachable receiver
never holds up or fails the batch.
"""

from __future__ import annotations

import hashlib
import shlex
from urllib.parse import urlsplit

from prefect.automations import Automation
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.utilities.urls import url_for

from mea_pipeline.batch_options import BatchOptions
from mea_pipeline.flows.batch_report import failures_first

REPORT_EVENT = "mea-pipeline.batch.finished"
REPORT_LABEL = "mea-pipeline.report"
FAILURES_SHOWN = 10


def destination(webhook: str) -> str:
    """A short name of the address (its host and a hash): the label, the block's and the automation's names."""
    digest = hashlib.sha256(webhook.encode()).hexdigest()[:10]
    host = "".join(c if c.isalnum() else "-" for c in (urlsplit(webhook).hostname or "webhook").lower())
    return f"{host}-{digest}"


def prepare_report(webhook: str) -> str:
    """The block and automation that send reports to ``webhook`` (created once per address)."""
    name = destination(webhook)
    block_name, automation_name = f"mea-pipeline-report-{name}", f"mea-pipeline: batch report to {name}"
    with get_client(sync_client=True) as client:
        if client.read_automations_by_name(automation_name):
            return name
    block = CustomWebhookNotificationBlock(name=block_name, url=webhook,
                                           json_data={"text": "{{subject}}\n{{body}}"})
    block_id = block.save(block_name, overwrite=True)
    Automation(
        name=automation_name,
        description=f"Each batch's report, posted to {urlsplit(webhook).hostname} as {{\"text\": ...}}",
        trigger=EventTrigger(
            expect={REPORT_EVENT},
            match=ResourceSpecification({REPORT_LABEL: name}),
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[SendNotification(block_document_id=block_id, subject="{{ event.payload.subject }}",
                                  body="{{ event.payload.body }}")],
    ).create()
    return name


def report_message(summary: dict, run_name: str, ui_link: str | None, rerun: str) -> tuple[str, str]:
    """Subject and body of a batch's report."""
    subject = f"mea-pipeline {run_name}: " + (f"{summary['failed']} of {summary['total']} failed"
                                              if summary["failed"] else "no failure")
    failed = [r for r in summary["recordings"] if r["status"] == "failed"]
    lines = [f"{failures_first(summary)} in {summary['seconds']:.0f} s"]
    lines += [f"FAILED {r['recording_id']} at {r.get('failed_step') or '?'}: {r.get('message', '')}"
              for r in failed[:FAILURES_SHOWN]]
    if len(failed) > FAILURES_SHOWN:
        lines.append(f"... and {len(failed) - FAILURES_SHOWN} more (the run's summary lists them all)")
    if ui_link:
        lines.append(f"In the UI: {ui_link}")
    if failed:
        lines.append(f"Rerun the failed ones: {rerun}")
    return subject, "\n".join(lines)


def rerun_command(options: BatchOptions, from_deployment: bool, config_file: str | None) -> str:
    """What reruns exactly the failed recordings of this batch, from their failed steps: the
    rerun-failed deployment for a batch a deployment started, else the command line."""
    if from_deployment:
        return "mea-pipeline prefect deployment run 'batch_all_steps/rerun-failed'"
    source = f"--config {shlex.quote(config_file)}" if config_file else \
        f"--csv {shlex.quote(str(options.csv))} --output {shlex.quote(options.output)}"
    return f"mea-pipeline batch {source} --only-failed"


def send_report(summary: dict, options: BatchOptions, config_file: str | None, name: str) -> None:
    """Emit the event the automation for ``name`` turns into the report."""
    run = FlowRunContext.get().flow_run
    subject, body = report_message(summary, run.name, url_for("flow-run", obj_id=run.id),
                                   rerun_command(options, run.deployment_id is not None, config_file))
    emit_event(event=REPORT_EVENT,
               resource={"prefect.resource.id": f"prefect.flow-run.{run.id}", "prefect.resource.name": run.name,
                         REPORT_LABEL: name},
               payload={"subject": subject, "body": body})
