"""The Prefect UI in headless Chromium shows a batch as the lab should see it.

A batch of the two tiny synthetic recordings runs against ``mea-pipeline server``; then the UI
(Prefect 3.9 serves the React UI under ``/v2``) must show the batch flow run, its ``rec-<id>``
subflow runs, each recording's step task runs, the batch's ``batch-summary-...`` table and a recording's
``qc-...`` markdown artifact with its figures rendered. Every page is saved as a screenshot in
the test's folder and in ``test-artifacts/screenshots/`` of the repository (not committed).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lab_server import ROOT, batch_run, subflow_runs, write_config
from mea_pipeline.steps import REGISTRY

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
# This machine has no network: nothing that phones home, a fresh profile per run.
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
WAIT_MS = 60_000  # the UI's lists load after the page; a busy machine takes its time


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright for Python is missing: .venv/bin/pip install -e '.[dev]'")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), headless=True,
            args=LAUNCH_ARGS, viewport={"width": 1400, "height": 1000})
        yield context.new_page()
        context.close()


@pytest.fixture(scope="module")
def batch(mea_server, synth_dataset, tmp_path_factory):
    """The finished batch: its flow run, its subflow runs and its artifacts, read from the server."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    folder = tmp_path_factory.mktemp("browser")
    config = write_config(folder / "browser.toml", synth_dataset, folder / "out")
    result = mea_server.run("mea-pipeline", "batch", "--config", config, "--concurrency", "2", "--raw-reads", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    ids = [r["recording_id"] for r in synth_dataset["recordings"]]
    with mea_server.client() as client:
        run = batch_run(client, result.stdout)
        subflows = subflow_runs(client, run.id)
        first = subflows[f"rec-{ids[0]}"]
        [summary] = [a for a in client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))) if a.type == "table"]
        [qc] = [a for a in client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[first.id]))) if a.type == "markdown"]
    return {"run": run, "ids": ids, "subflows": subflows, "first": first, "summary": summary, "qc": qc}


def show(page, server, path: str, tmp_path: Path, name: str, *texts: str):
    """Open ``path`` of the UI, wait until every text is visible, save a screenshot as ``name``."""
    from playwright.sync_api import expect

    page.goto(server.ui_url + path, wait_until="networkidle")
    for text in texts:
        expect(page.get_by_text(text, exact=True).first).to_be_visible(timeout=WAIT_MS)
    page.screenshot(path=str(tmp_path / name), full_page=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp_path / name, SCREENSHOTS / name)


def test_runs_page_lists_the_batch_and_one_subflow_per_recording(page, mea_server, batch, tmp_path):
    show(page, mea_server, "/v2/runs", tmp_path, "1-runs.png",
         batch["run"].name, *[f"rec-{rid}" for rid in batch["ids"]])


def test_batch_page_shows_its_subflow_runs_and_the_summary_artifact(page, mea_server, batch, tmp_path):
    run = batch["run"]
    show(page, mea_server, f"/v2/runs/flow-run/{run.id}?tab=SubflowRuns", tmp_path, "2-batch-subflows.png",
         run.name, "2 Subflow runs", *[f"rec-{rid}" for rid in batch["ids"]])
    show(page, mea_server, f"/v2/runs/flow-run/{run.id}?tab=Artifacts", tmp_path, "3-batch-artifacts.png",
         batch["summary"].key, batch["summary"].description)


def test_recording_page_shows_a_task_run_per_step(page, mea_server, batch, tmp_path):
    rid, first = batch["ids"][0], batch["first"]
    names = [f"{name}-{rid}" for name in ["preflight", *(s.name for s in REGISTRY.select(None)), "qc_report"]]
    show(page, mea_server, f"/v2/runs/flow-run/{first.id}?tab=TaskRuns", tmp_path, "4-recording-task-runs.png",
         f"rec-{rid}", f"{len(names)} Task runs", *names)


def test_summary_artifact_is_a_table_of_the_recordings(page, mea_server, batch, tmp_path):
    show(page, mea_server, f"/v2/artifacts/artifact/{batch['summary'].id}", tmp_path, "5-batch-summary.png",
         *batch["ids"])
    assert page.get_by_role("cell", name="success", exact=True).count() == len(batch["ids"])


def test_qc_artifact_renders_its_embedded_figures(page, mea_server, batch, tmp_path):
    rid, qc = batch["ids"][0], batch["qc"]
    show(page, mea_server, f"/v2/artifacts/artifact/{qc.id}", tmp_path, "6-qc-report.png", f"QC of {rid}")
    embedded = qc.data.count("](data:image/png;base64,")
    assert embedded >= 4  # eimage/soma, RF, AP tracking, DSGC
    widths = page.eval_on_selector_all("img[src^='data:image/png']", "images => images.map(i => i.naturalWidth)")
    assert len(widths) == embedded, "the UI dropped embedded (data: URI) figures of the markdown"
    assert all(width > 0 for width in widths), f"figures that did not render: natural widths {widths}"
