"""The batch's report: its text, where it goes, the option that turns it on (sending: tests/services)."""

from __future__ import annotations

import pytest

from mea_pipeline.batch_options import BatchOptions
from mea_pipeline.errors import InputError
from mea_pipeline.flows.morning_report import FAILURES_SHOWN, destination, report_message, rerun_command


def summary(failed: int, success: int = 2, skipped: int = 1) -> dict:
    rows = [{"recording_id": f"ok-{i}", "status": "success"} for i in range(success)]
    rows += [{"recording_id": f"bad-{i}", "status": "failed", "failed_step": "dsgc", "message": f"reason {i}"}
             for i in range(failed)]
    rows += [{"recording_id": f"done-{i}", "status": "skipped"} for i in range(skipped)]
    return {"total": len(rows), "success": success, "skipped": skipped, "failed": failed, "seconds": 61.4,
            "recordings": rows}


def test_the_report_names_each_failure_the_page_and_the_rerun_command():
    subject, body = report_message(summary(2), "nightly 2026-12-07 02:00:00 mapping.csv rows 0-end",
                                   "http://lab:4200/runs/flow-run/42", "RERUN")
    assert subject == "mea-pipeline nightly 2026-12-07 02:00:00 mapping.csv rows 0-end: 2 of 5 failed"
    assert body.splitlines() == ["2 failed, 2 successful, 1 skipped (of 5) in 61 s",
                                 "FAILED bad-0 at dsgc: reason 0", "FAILED bad-1 at dsgc: reason 1",
                                 "In the UI: http://lab:4200/runs/flow-run/42", "Rerun the failed ones: RERUN"]


def test_a_clean_batch_reports_no_failure_and_a_long_list_is_cut():
    subject, body = report_message(summary(0), "cli x", None, "RERUN")
    assert subject.endswith(": no failure") and body == "0 failed, 2 successful, 1 skipped (of 3) in 61 s"
    _, body = report_message(summary(FAILURES_SHOWN + 3), "cli x", None, "RERUN")
    assert sum(line.startswith("FAILED ") for line in body.splitlines()) == FAILURES_SHOWN
    assert "... and 3 more" in body


def test_the_rerun_command_follows_whether_a_deployment_started_the_batch():
    options = BatchOptions(csv="/data/map ping.csv", output="/out")
    assert rerun_command(options, True, "/data/p.toml") == \
        "mea-pipeline prefect deployment run 'batch_all_steps/rerun-failed'"
    assert rerun_command(options, False, "/data/p.toml") == "mea-pipeline batch --config /data/p.toml --only-failed"
    assert rerun_command(options, False, None) == \
        "mea-pipeline batch --csv '/data/map ping.csv' --output /out --only-failed"


def test_each_address_gets_its_own_name_and_a_bad_one_is_refused(tmp_path):
    assert destination("https://hooks.slack.com/services/A") != destination("https://hooks.slack.com/services/B")
    assert destination("https://hooks.slack.com/services/A").startswith("hooks-slack-com-")
    config = tmp_path / "p.toml"
    config.write_text('[batch]\ncsv = "m.csv"\nreport_webhook = "hooks.slack.com/services/A"\n')
    with pytest.raises(InputError, match="report_webhook 'hooks.slack.com/services/A': give the address"):
        BatchOptions.load(config)
