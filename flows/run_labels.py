"""How a batch run is told apart in the UI: its name, its tags, the key of its summary.

A batch run is named ``<trigger> <date> <time> <source>``, e.g. ``nightly 2026-12-07 02:00:00
mapping.csv rows 0-end``: what started it (``cli``, or the deployment: ``nightly``,
``rerun-failed``, ``manual``), when it was due (local time, to the second: two batches of one day
never share a name) and which recordings it reads (the CSV or the scanned folders, and the
rows). The name a run gets when it starts knows only what started it and when; once the batch
options are resolved (``[batch]`` of the config file included) the run is renamed with its
source, and tagged with it. Every run, the recording runs included, carries the project tag
``mea-pipeline`` and its batch's trigger, so a tag filter shows them all. A batch that reruns
failed recordings (``only_failed``: the rerun-failed deployment) and the batches where those
recordings last failed tag each other (``rerun-of:<name>``, ``rerun-in:<name>``).
"""

from __future__ import annotations

from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter
from prefect.context import FlowRunContext
from prefect.runtime import flow_run

from mea_pipeline.batch_options import BatchOptions
from mea_pipeline.tasks.artifact_keys import artifact_key

PROJECT_TAG = "mea-pipeline"
TRIGGER_PREFIX = "trigger:"
SUMMARY_KEY = "batch-summary"


def trigger_tags(trigger: str) -> list[str]:
    """The tags every run started by ``trigger`` carries from its start."""
    return [PROJECT_TAG, f"{TRIGGER_PREFIX}{trigger}"]


def source_tags(options: BatchOptions) -> list[str]:
    """Tags naming the batch's recordings: the CSV (or the scanned folders) and the rows."""
    kind, name = _source(options)
    return [f"{kind}:{name}", f"rows:{_rows(options)}"]


def _source(options: BatchOptions) -> tuple[str, str]:
    """What the batch reads its recordings from: ``("csv", file name)`` or ``("scan", folders)``."""
    if options.scan_roots:
        return "scan", ",".join(Path(root).name for root in options.scan_roots)
    return "csv", Path(options.csv).name if options.csv else "?"


def _rows(options: BatchOptions) -> str:
    return f"{options.start}-{'end' if options.end is None else options.end}"


def trigger_of(tags) -> str:
    """What started the run, from its ``trigger:`` tag (``run`` when it has none: a plain Python call)."""
    return next((tag.removeprefix(TRIGGER_PREFIX) for tag in tags if tag.startswith(TRIGGER_PREFIX)), "run")


def _due() -> str:
    """When the run was due, local time to the second (a nightly run: its schedule's time)."""
    return flow_run.scheduled_start_time.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def batch_run_name() -> str:
    """The name a batch run starts with: ``<trigger> <date> <time>`` (see :func:`label_batch_run`)."""
    return f"{trigger_of(flow_run.tags)} {_due()}"


def label_batch_run(options: BatchOptions) -> list[str]:
    """Add the batch's source to the running batch's name and tags; returns the tags its
    recording runs get (the project and the trigger, so a tag filter finds them all)."""
    context = FlowRunContext.get()
    run = context.flow_run
    name = f"{trigger_of(run.tags)} {_due()} {_source(options)[1]} rows {_rows(options)}"
    tags = sorted(set(run.tags) | set(source_tags(options)) | {PROJECT_TAG})
    with get_client(sync_client=True) as client:
        client.update_flow_run(run.id, name=name, tags=tags)
    run.name, run.tags = name, tags
    return trigger_tags(trigger_of(tags))


RERUN_LINKS_MAX = 50  # recordings looked up when linking a rerun to the batches it reruns


def link_rerun(recording_ids: list[str]) -> list[str]:
    """Tag this rerun and the batch runs where ``recording_ids`` last failed with each other's
    names; returns those batches' names (oldest first)."""
    from prefect.client.schemas.filters import FlowRunFilterName, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    run = FlowRunContext.get().flow_run
    names = [f"rec-{rid}" for rid in recording_ids[:RERUN_LINKS_MAX]]
    if not names:
        return []
    with get_client(sync_client=True) as client:
        failed = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=names), state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType.FAILED, StateType.CRASHED]))),
            sort=FlowRunSort.START_TIME_DESC)
        latest = {}
        for recording_run in failed:  # newest first: the last failure of each recording
            latest.setdefault(recording_run.name, recording_run)
        batches = {}
        for recording_run in latest.values():
            if recording_run.parent_task_run_id is None:
                continue
            parent = client.read_task_run(recording_run.parent_task_run_id).flow_run_id
            if parent and parent != run.id and parent not in batches:
                batches[parent] = client.read_flow_run(parent)
        for batch in batches.values():
            client.update_flow_run(batch.id, tags=sorted(set(batch.tags) | {f"rerun-in:{run.name}"}))
        ordered = sorted(batches.values(), key=lambda b: b.start_time or b.expected_start_time)
        tags = sorted(set(run.tags) | {f"rerun-of:{batch.name}" for batch in ordered})
        client.update_flow_run(run.id, tags=tags)
    run.tags = tags
    return [batch.name for batch in ordered]


def summary_key(run_name: str) -> str:
    """The key of a batch run's summary artifact: one per run (``batch-summary-nightly-2026-12-07-020000-...``).

    The time's colons are dropped, not turned into dashes: ``02:00:00`` reads ``020000``.
    """
    return artifact_key(SUMMARY_KEY, run_name.replace(":", ""))[:200].rstrip("-")
