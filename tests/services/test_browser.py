"""The Prefect UI in headless Chromium shows a night's batches as the lab should see them.

Two batches run against ``mea-pipeline server`` over the two tiny synthetic recordings and a
third whose ``.cmtr`` is truncated (an interrupted copy): the first processes the good ones and
refuses the damaged one, the second skips the good ones and refuses it again. Then the UI
(Prefect 3.9 serves the React UI under ``/v2``) must show: both batches under their own names
and every run with the project tag (issue 22, item 4); the refused recording as a red run of its
own whose page names the damaged file (item 1); a recording's page with its step log lines
(item 2) and task runs; the batch's summary table; the QC artifact with its figures rendered,
each at least 640 px wide (item 6). Every page is saved as a screenshot in the test's folder and
in ``test-artifacts/screenshots/`` of the repository (not committed).
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


DAMAGED_ID = "2024.02.01-10.00.00-Rec"


@pytest.fixture(scope="module")
def batch(mea_server, synth_dataset, tmp_path_factory):
    """The two batches: their flow runs, the first one's recording runs and artifacts, read from the server."""
    import pandas as pd
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    folder = tmp_path_factory.mktemp("browser")
    source = synth_dataset["recordings"][1]
    cmcr, cmtr = folder / f"{DAMAGED_ID}.cmcr", folder / f"{DAMAGED_ID}-.cmtr"
    shutil.copy(source["cmcr"], cmcr)
    shutil.copy(source["cmtr"], cmtr)
    with open(cmtr, "r+b") as handle:  # an interrupted copy
        handle.truncate(cmtr.stat().st_size // 3)
    table = pd.read_csv(synth_dataset["mapping_csv"])
    row = {"cmcr_path": str(cmcr), "cmtr_path": str(cmtr), "matched": True}
    csv = folder / "mapping.csv"
    pd.concat([table, pd.DataFrame([row])], ignore_index=True).to_csv(csv, index=False)
    config = write_config(folder / "browser.toml", synth_dataset, folder / "out", csv)
    results = [mea_server.run("mea-pipeline", "batch", "--config", config, "--concurrency", "2", "--raw-reads", "2")
               for _ in range(2)]
    assert [r.returncode for r in results] == [1, 1], results[0].stdout + results[0].stderr
    ids = [r["recording_id"] for r in synth_dataset["recordings"]]
    with mea_server.client() as client:
        runs = [batch_run(client, result.stdout) for result in results]
        subflows = subflow_runs(client, runs[0].id)
        first = subflows[f"rec-{ids[0]}"]
        [summary] = [a for a in client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[runs[0].id]))) if a.type == "table"]
        [qc] = [a for a in client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[first.id]))) if a.type == "markdown"]
        every_run = client.read_flow_runs()
    return {"runs": runs, "run": runs[0], "ids": ids, "subflows": subflows, "first": first,
            "refused": subflows[f"rec-{DAMAGED_ID}"], "damaged": cmtr, "summary": summary, "qc": qc,
            "every_run": every_run}


def show(page, server, path: str, tmp_path: Path, name: str, *texts: str):
    """Open ``path`` of the UI, wait until every text is visible, save a screenshot as ``name``."""
    from playwright.sync_api import expect

    page.goto(server.ui_url + path, wait_until="networkidle")
    for text in texts:
        expect(page.get_by_text(text, exact=True).first).to_be_visible(timeout=WAIT_MS)
    page.screenshot(path=str(tmp_path / name), full_page=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp_path / name, SCREENSHOTS / name)


def test_runs_page_shows_each_batch_under_its_own_name_and_every_run_with_the_project_tag(
        page, mea_server, batch, tmp_path):
    names = [run.name for run in batch["runs"]]
    assert names[0] != names[1]
    show(page, mea_server, "/v2/runs", tmp_path, "1-runs.png",
         *names, *[f"rec-{rid}" for rid in [*batch["ids"], DAMAGED_ID]])
    # Every run on the server carries the project tag (a tag filter finds them all).
    assert len(batch["every_run"]) <= 100  # one page of the list
    assert page.get_by_text("mea-pipeline", exact=True).count() == len(batch["every_run"])


def test_a_refused_recording_is_a_red_run_of_its_own_whose_page_names_the_file(page, mea_server, batch, tmp_path):
    from playwright.sync_api import expect

    refused = batch["refused"]
    assert refused.state.is_failed() and str(batch["damaged"]) in refused.state.message
    show(page, mea_server, f"/v2/runs/flow-run/{refused.id}", tmp_path, "2-refused-recording.png",
         f"rec-{DAMAGED_ID}", "Failed")
    expect(page.get_by_text(f"{batch['damaged']}: the file is truncated").first).to_be_visible(timeout=WAIT_MS)
    assert page.get_by_text("Traceback").count() == 0


def test_a_recordings_page_holds_its_step_log_lines(page, mea_server, batch, tmp_path):
    from playwright.sync_api import expect

    first = batch["first"]
    show(page, mea_server, f"/v2/runs/flow-run/{first.id}?tab=Logs", tmp_path, "3-recording-logs.png",
         f"rec-{batch['ids'][0]}")
    for step in REGISTRY.select(None):
        line = page.get_by_text(f"{step.name}: done in ").first
        for _ in range(20):  # the log list loads more lines as it is scrolled
            if line.is_visible():
                break
            page.mouse.move(700, 900)  # over the log list
            page.mouse.wheel(0, 2000)
            page.wait_for_timeout(500)
        expect(line).to_be_visible(timeout=WAIT_MS)
    page.screenshot(path=str(tmp_path / "3-recording-logs-end.png"), full_page=True)


def test_batch_page_shows_its_subflow_runs_and_the_summary_artifact(page, mea_server, batch, tmp_path):
    run = batch["run"]
    show(page, mea_server, f"/v2/runs/flow-run/{run.id}?tab=SubflowRuns", tmp_path, "4-batch-subflows.png",
         run.name, "3 Subflow runs", *[f"rec-{rid}" for rid in [*batch["ids"], DAMAGED_ID]])
    show(page, mea_server, f"/v2/runs/flow-run/{run.id}?tab=Artifacts", tmp_path, "5-batch-artifacts.png",
         batch["summary"].key, batch["summary"].description)


def test_recording_page_shows_a_task_run_per_step(page, mea_server, batch, tmp_path):
    rid, first = batch["ids"][0], batch["first"]
    names = [f"{name}-{rid}" for name in ["preflight", *(s.name for s in REGISTRY.select(None)), "qc_report"]]
    show(page, mea_server, f"/v2/runs/flow-run/{first.id}?tab=TaskRuns", tmp_path, "6-recording-task-runs.png",
         f"rec-{rid}", f"{len(names)} Task runs", *names)


def test_summary_artifact_is_a_table_of_the_recordings(page, mea_server, batch, tmp_path):
    show(page, mea_server, f"/v2/artifacts/artifact/{batch['summary'].id}", tmp_path, "7-batch-summary.png",
         *batch["ids"], DAMAGED_ID)
    assert page.get_by_role("cell", name="success", exact=True).count() == len(batch["ids"])
    assert page.get_by_role("cell", name="failed", exact=True).count() == 1


def test_qc_artifact_renders_its_figures_large_enough_to_read(page, mea_server, batch, tmp_path):
    rid, qc = batch["ids"][0], batch["qc"]
    show(page, mea_server, f"/v2/artifacts/artifact/{qc.id}", tmp_path, "8-qc-report.png", f"QC of {rid}")
    embedded = qc.data.count("](data:image/png;base64,")
    assert embedded == 4  # eimage/soma, RF, AP tracking, DSGC
    widths = page.eval_on_selector_all("img[src^='data:image/png']", "images => images.map(i => i.naturalWidth)")
    assert len(widths) == embedded, "the UI dropped embedded (data: URI) figures of the markdown"
    assert min(widths) >= 520 and sorted(widths)[1] >= 640, widths  # the AP map is square, 520 px
