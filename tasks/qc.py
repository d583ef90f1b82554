"""A recording's QC report as a Prefect task: cached like a step, shown as a markdown artifact.

The figures are PNG files next to the output (:mod:`mea_pipeline.qc.report`); the artifact shows
them (embedded, so the UI needs no access to the output folder) with the recording's key numbers.
The task draws (or, cached, skips drawing); :func:`publish_qc` then shows the report on the
recording's run every time, a rerun whose figures come from the cache included.
"""

from __future__ import annotations

import base64
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact

from mea_pipeline.config import RecordingInputs
from mea_pipeline.qc.report import cached_report, report_key, write_report

from .artifact_keys import artifact_key
from .caching import storage_folder

NUMBER_LABELS = {"units": "units", "spikes": "spikes", "rfs_fitted": "RFs fitted", "axons_tracked": "axons tracked",
                 "onh": "ONH (x = col, y = row)", "dsgc_sectioned": "DSGC units", "dsgc_p_below_0_05": "DSGC p < 0.05"}


def qc_cache_key(context, parameters: dict) -> str | None:
    """The report's key; a stale Prefect record is removed so a hit always means "the files are there"."""
    output = parameters["recording"].output_path
    if not output.is_file():
        return None
    key = f"qc_report-{parameters['recording'].recording_id}-{report_key(output)}"
    if cached_report(output) is None:
        folder = storage_folder(context.task)
        if folder is not None:
            (folder / key).unlink(missing_ok=True)
    return key


def markdown(manifest: dict) -> str:
    numbers = manifest["numbers"]
    shown = [k for k in NUMBER_LABELS if k in numbers]
    lines = [f"## QC of {manifest['recording_id']}", "",
             "| " + " | ".join(NUMBER_LABELS[k] for k in shown) + " |",
             "|" + "---|" * len(shown),
             "| " + " | ".join("-" if numbers[k] is None else str(numbers[k]) for k in shown) + " |", "",
             f"Figures: `{manifest['folder']}`", ""]
    folder = Path(manifest["folder"])
    for topic, name in manifest["figures"].items():
        data = base64.b64encode((folder / name).read_bytes()).decode()
        lines += [f"**{topic}**", "", f"![{topic}](data:image/png;base64,{data})", ""]
    return "\n".join(lines)


@task(name="qc_report", task_run_name="qc_report-{recording.recording_id}", cache_key_fn=qc_cache_key,
      persist_result=True, description="QC figures (PNG next to the output) and key numbers of a recording")
def qc_report(recording: RecordingInputs) -> dict:
    """The report's manifest (figures, numbers, folder), drawn now."""
    return write_report(recording.output_path)


def publish_qc(manifest: dict) -> None:
    """The report as a markdown artifact of the current run (figures embedded from its folder)."""
    create_markdown_artifact(key=artifact_key("qc", manifest["recording_id"]), markdown=markdown(manifest),
                             description=f"QC of {manifest['recording_id']}")
