"""The lab hears about a batch without opening the UI: one report per batch, posted by the server.

A receiver on 127.0.0.1 records what it is sent. A batch whose config names it as
``report_webhook`` (one recording with a damaged ``.cmtr``) makes the server post one
Slack-compatible message: the counts, the failed recording with its reason, the run's UI page,
the rerun command. The next batch sends its own; a batch without the option sends nothing.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from lab_server import batch_run, write_config

pytestmark = pytest.mark.services

REPORT_WAIT_S = 120  # the server's automations service acts within seconds; a busy machine takes longer
QUIET_WAIT_S = 20


class Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Receiver.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", Receiver.received
    server.shutdown()


def wait_for(received: list, count: int, seconds: float) -> list:
    deadline = time.monotonic() + seconds
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.5)
    return list(received)


def test_each_batch_sends_one_report_with_its_failures_link_and_rerun_command(mea_server, synth_dataset, receiver,
                                                                             tmp_path):
    url, received = receiver
    a, b = (r["recording_id"] for r in synth_dataset["recordings"])
    damaged = tmp_path / Path(synth_dataset["recordings"][1]["cmtr"]).name
    shutil.copy(synth_dataset["recordings"][1]["cmtr"], damaged)
    with open(damaged, "r+b") as handle:  # an interrupted copy
        handle.truncate(damaged.stat().st_size // 3)
    table = pd.read_csv(synth_dataset["mapping_csv"])
    table.loc[1, "cmtr_path"] = str(damaged)
    csv = tmp_path / "mapping.csv"
    table.to_csv(csv, index=False)
    plain = write_config(tmp_path / "plain.toml", synth_dataset, tmp_path / "out", csv)
    config = tmp_path / "report.toml"
    config.write_text(plain.read_text().replace("[batch]\n", f'[batch]\nreport_webhook = "{url}"\n'))

    first = mea_server.run("mea-pipeline", "batch", "--config", config, "--steps", "1-2")
    assert first.returncode == 1, first.stdout + first.stderr
    [report] = wait_for(received, 1, REPORT_WAIT_S)
    with mea_server.client() as client:
        run = batch_run(client, first.stdout)
    text = report["text"]
    assert text.startswith(f"mea-pipeline {run.name}: 1 of 2 failed\n"), text
    assert "1 failed, 1 successful, 0 skipped (of 2)" in text
    assert f"FAILED {b} at preflight: " in text and str(damaged) in text and a not in text
    assert f"In the UI: {mea_server.ui_url}/runs/flow-run/{run.id}" in text
    assert f"Rerun the failed ones: mea-pipeline batch --config {config} --only-failed" in text

    second = mea_server.run("mea-pipeline", "batch", "--config", config, "--steps", "1-2")
    assert second.returncode == 1
    reports = wait_for(received, 2, REPORT_WAIT_S)
    assert len(reports) == 2 and "0 successful, 1 skipped (of 2)" in reports[1]["text"], reports

    quiet = mea_server.run("mea-pipeline", "batch", "--config", plain, "--steps", "1-2")
    assert quiet.returncode == 1
    assert len(wait_for(received, 3, QUIET_WAIT_S)) == 2  # no option, no report
