"""Step 8 library: gspread + google-auth against a local stand-in, snapshots, CSV reading, matching."""

import json
import logging
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from google_standin import GoogleStandin, make_private_key_pem, service_account_info, tabs_of, write_credentials
from mea_pipeline.errors import InputError
from mea_pipeline.sheet.fetch import SheetUnavailable, fetch_sheet_table
from mea_pipeline.sheet.table import (canonical_file_name, match_row, read_table, row_digest, row_fields,
                                      sanitize_key, substring_candidates, write_snapshot)
from mea_pipeline.synth.sheet_export import SHEET_COLUMNS, CENTER_CODES, sheet_row_truth, write_sheet_export

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
LAB_CSV = SHARED / "reference" / "gsheet" / "gsheet_table.csv"
TEST_RECORDING = "2024.08.08-10.40.20-Rec"
SYNTH_IDS = ["2024.01.17-11.15.41-Rec", "2024.01.18-11.22.41-Rec", "2025.03.02-09.05.10-Rec"]


@pytest.fixture(scope="module")
def rsa_key():
    return make_private_key_pem()


@pytest.fixture()
def synth_csv(tmp_path):
    rng = np.random.default_rng(8)
    rows = [{**sheet_row_truth(rid, rng), "duration_s": 120.0 + i} for i, rid in enumerate(SYNTH_IDS)]
    return write_sheet_export(tmp_path / "export.csv", rows)


def key_fragments(pem: str) -> list[str]:
    """Lines of the key's base64 body: any of them in a message or log would be a leak."""
    return [line for line in pem.splitlines() if line and "PRIVATE KEY" not in line]


# -- fetching through the real clients ---------------------------------------------------------

def test_fetch_equals_csv_export_and_counts_requests(tmp_path, rsa_key, synth_csv):
    pem, public_key = rsa_key
    exported = read_table(synth_csv)
    tabs = tabs_of(exported)
    assert list(tabs) == ["Data_2024", "Data_2025"]
    tabs["Summary"] = [["Year", "Recordings"], ["2024", "2"]]  # not a Data_ tab: never read
    with GoogleStandin(tabs, public_key=public_key) as standin:
        fetched = fetch_sheet_table(write_credentials(tmp_path, pem, standin),
                                    api_endpoints=standin.api_endpoints, timeout_s=5)
        counts = dict(standin.counts)
    assert counts == {"token": 1, "drive_files": 1, "spreadsheet": 2, "values": 2}
    pd.testing.assert_frame_equal(fetched, exported)
    assert all(isinstance(cell, str) for cell in fetched.to_numpy().ravel())
    for recording_id in SYNTH_IDS:
        from_api, rule_api = match_row(fetched, recording_id)
        from_csv, rule_csv = match_row(exported, recording_id)
        assert rule_api == rule_csv == "exact"
        assert row_fields(from_api) == row_fields(from_csv)
        assert row_fields(from_api)["File_name"] == canonical_file_name(recording_id)


def test_worksheets_with_different_columns_are_aligned(tmp_path, rsa_key):
    pem, public_key = rsa_key
    tabs = {"Data_B": [["File_name", "Chip", ""], ["b.cmcr", "4144", "no header: dropped"], ["c.cmcr"]],
            "Notes": [["anything"]],
            "Data_A": [["File_name", "Bad_lanes"], ["a.cmcr", "53, 59"]],
            "Data_empty": []}
    with GoogleStandin(tabs, public_key=public_key) as standin:
        table = fetch_sheet_table(write_credentials(tmp_path, pem, standin), api_endpoints=standin.api_endpoints)
    assert list(table.columns) == ["File_name", "Chip", "Bad_lanes", "Sheet Name"]
    assert table.values.tolist() == [["b.cmcr", "4144", "", "Data_B"], ["c.cmcr", "", "", "Data_B"],
                                     ["a.cmcr", "", "53, 59", "Data_A"]]


def test_repeated_column_is_reported(tmp_path, rsa_key):
    pem, public_key = rsa_key
    tabs = {"Data_2024": [["File_name", "Note", "Note"], ["a.cmcr", "x", "y"]]}
    with GoogleStandin(tabs, public_key=public_key) as standin:
        with pytest.raises(SheetUnavailable, match="'Data_2024'.*'Note'"):
            fetch_sheet_table(write_credentials(tmp_path, pem, standin), api_endpoints=standin.api_endpoints)


def test_stopped_service_fails_fast_without_leaking_secrets(tmp_path, rsa_key, caplog):
    pem, public_key = rsa_key
    tabs = {"Data_2024": [["File_name"], ["a.cmcr"]]}
    standin = GoogleStandin(tabs, public_key=public_key).start()
    credentials = write_credentials(tmp_path, pem, standin)
    with caplog.at_level(logging.DEBUG):
        fetch_sheet_table(credentials, api_endpoints=standin.api_endpoints, timeout_s=5)  # works while up
        standin.stop()
        started = time.perf_counter()
        with pytest.raises(SheetUnavailable) as failure:
            fetch_sheet_table(credentials, api_endpoints=standin.api_endpoints, timeout_s=2)
        elapsed = time.perf_counter() - started
    message = str(failure.value)
    assert "127.0.0.1" in caplog.text  # the HTTP clients' debug logs were captured
    assert elapsed < 3
    assert "\n" not in message and str(credentials) in message
    assert failure.value.__cause__ is None and failure.value.__suppress_context__
    for text in (message, caplog.text):
        assert "PRIVATE KEY" not in text
        assert standin.access_token not in text
        assert not any(fragment in text for fragment in key_fragments(pem))


def test_api_error_echoing_the_token_is_redacted(tmp_path, rsa_key):
    pem, public_key = rsa_key
    with GoogleStandin({"Data_2024": [["File_name"]]}, public_key=public_key) as standin:
        standin.values_error = "backend failed for {authorization}"
        with pytest.raises(SheetUnavailable, match=r"APIError.*500.*backend failed for Bearer \[redacted\]") as failure:
            fetch_sheet_table(write_credentials(tmp_path, pem, standin), api_endpoints=standin.api_endpoints)
    assert standin.access_token not in str(failure.value)


def test_rejected_credentials(tmp_path, rsa_key):
    pem, public_key = rsa_key
    with GoogleStandin({"Data_2024": [["File_name"]]}, public_key=public_key) as standin:
        standin.reject_token_requests = True
        with pytest.raises(SheetUnavailable, match="RefreshError.*invalid_grant") as failure:
            fetch_sheet_table(write_credentials(tmp_path, pem, standin), api_endpoints=standin.api_endpoints)
        assert dict(standin.counts) == {"token": 1}
    assert not any(fragment in str(failure.value) for fragment in key_fragments(pem))


def test_key_not_matching_the_service_account_is_rejected(tmp_path, rsa_key):
    pem, _ = rsa_key
    _, other_public_key = make_private_key_pem(1024)
    with GoogleStandin({"Data_2024": [["File_name"]]}, public_key=other_public_key) as standin:
        with pytest.raises(SheetUnavailable, match="invalid_grant"):
            fetch_sheet_table(write_credentials(tmp_path, pem, standin), api_endpoints=standin.api_endpoints)


def test_spreadsheet_title_not_found(tmp_path, rsa_key):
    pem, public_key = rsa_key
    with GoogleStandin({"Data_2024": [["File_name"]]}, public_key=public_key) as standin:
        with pytest.raises(SheetUnavailable, match="'Other dashboard' not found.*pipeline@standin-project"):
            fetch_sheet_table(write_credentials(tmp_path, pem, standin), title="Other dashboard",
                              api_endpoints=standin.api_endpoints)
        with pytest.raises(SheetUnavailable, match="no worksheet whose title starts with 'Raw_'"):
            fetch_sheet_table(write_credentials(tmp_path, pem, standin), worksheet_prefix="Raw_",
                              api_endpoints=standin.api_endpoints)


def test_unusable_credentials_files(tmp_path, rsa_key):
    pem, _ = rsa_key
    with pytest.raises(SheetUnavailable, match="does not exist"):
        fetch_sheet_table(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"private_key": ' + json.dumps(pem) + ', "token_uri": ')  # truncated JSON
    with pytest.raises(SheetUnavailable, match="JSONDecodeError") as failure:
        fetch_sheet_table(broken)
    assert not any(fragment in str(failure.value) for fragment in key_fragments(pem))
    incomplete = tmp_path / "incomplete.json"
    incomplete.write_text(json.dumps({"type": "service_account", "private_key": pem}))
    with pytest.raises(SheetUnavailable, match="missing fields") as failure:
        fetch_sheet_table(incomplete)
    assert not any(fragment in str(failure.value) for fragment in key_fragments(pem))


def test_unknown_api_endpoint_name(tmp_path, rsa_key):
    pem, _ = rsa_key
    credentials = tmp_path / "sa.json"
    credentials.write_text(json.dumps(service_account_info(pem, "http://127.0.0.1:9/token")))
    with pytest.raises(InputError, match="unknown API"):
        fetch_sheet_table(credentials, api_endpoints={"gmail": "http://127.0.0.1:9"})


# -- snapshots and CSV reading -------------------------------------------------------------------

def test_snapshot_round_trip_keeps_text(tmp_path):
    table = pd.DataFrame({"File_name": ["2024.01.17.11.15.41.Rec.cmcr", ""],
                          "Quality (1-5)": ["007", "NA"], "Dur(Sec)": ["1199.60", "nan"],
                          "Hour": ["#REF!", "TRUE"], "Max/min/mm2": ["1,5", " padded "]})
    path = write_snapshot(table, tmp_path / "out", today=date(2026, 1, 5))
    assert path == tmp_path / "out" / "gsheet_snapshot_2026-01-05.csv"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left
    pd.testing.assert_frame_equal(read_table(path), table)
    write_snapshot(table.iloc[:1], tmp_path / "out", today=date(2026, 1, 5))
    assert len(read_table(path)) == 1


def test_read_table_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="missing.csv does not exist"):
        read_table(tmp_path / "missing.csv")
    no_key = tmp_path / "no_key.csv"
    no_key.write_text("Chip,Note\n4144,x\n")
    with pytest.raises(InputError, match="no_key.csv has no 'File_name' column"):
        read_table(no_key)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="empty.csv is not a readable CSV"):
        read_table(empty)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"File_name\n\xff\xfe\x00\x81\n")
    with pytest.raises(InputError, match="binary.csv is not a readable CSV"):
        read_table(binary)


# -- matching and keys ----------------------------------------------------------------------------

def test_canonical_name_and_candidates():
    assert canonical_file_name(TEST_RECORDING) == "2024.08.08.10.40.20.Rec.cmcr"
    assert substring_candidates(TEST_RECORDING) == [TEST_RECORDING, "2024.08.08.10.40.20.Rec", "2024.08.08.10.40.20"]


def test_match_rules_in_table_order():
    table = pd.DataFrame({"File_name": ["2024.08.08.10.40.20.test.cmcr", " 2024.08.08.10.40.20.Rec.cmcr ",
                                        "2024.08.08.10.40.20.Rec.cmcr"], "Note": ["decoy", "first exact", "second"]})
    assert match_row(table, TEST_RECORDING) == ({"File_name": " 2024.08.08.10.40.20.Rec.cmcr ",
                                                 "Note": "first exact"}, "exact")
    row, rule = match_row(table.iloc[[0]], TEST_RECORDING)
    assert (rule, row["Note"]) == ("substring", "decoy")
    assert match_row(table, "2023.01.01-00.00.00-Rec") == (None, "none")
    with_nan = pd.DataFrame({"File_name": [np.nan, "2024.08.08.10.40.20.Rec.cmcr"], "Note": ["x", np.nan]})
    assert match_row(with_nan, TEST_RECORDING) == ({"File_name": "2024.08.08.10.40.20.Rec.cmcr", "Note": ""}, "exact")
    with pytest.raises(InputError, match="File_name"):
        match_row(pd.DataFrame({"Chip": ["1"]}), TEST_RECORDING)


def test_keys_fields_and_digest():
    assert sanitize_key("Max/min/mm2") == "Max_min_mm2"
    assert sanitize_key("Max_Count/sec") == "Max_Count_sec"
    assert sanitize_key("a\\b") == "a_b"
    for kept in ("Quality (1-5)", "Dur(Sec)", "Sheet Name", "event per min"):
        assert sanitize_key(kept) == kept
    row = {"File_name": "x.cmcr", "Max/min/mm2": "3", "Note": ""}
    assert row_fields(row) == {"File_name": "x.cmcr", "Max_min_mm2": "3", "Note": ""}
    with pytest.raises(InputError, match="'A/B' and 'A_B'"):
        row_fields({"A/B": "1", "A_B": "2"})
    assert row_digest(row) == row_digest(dict(row)) and len(row_digest(row)) == 64
    assert row_digest({**row, "Note": "changed"}) != row_digest(row)


def test_synthetic_sheet_truth_and_export(tmp_path):
    first = [sheet_row_truth(rid, np.random.default_rng(4)) for rid in SYNTH_IDS]
    again = [sheet_row_truth(rid, np.random.default_rng(4)) for rid in SYNTH_IDS]
    assert first == again
    rng = np.random.default_rng(0)
    for _ in range(200):
        truth = sheet_row_truth("2024.01.17-11.15.41-Rec", rng)
        lanes = truth["bad_lanes"]
        assert len(lanes) <= 2 and lanes == sorted(lanes) and all(2 <= lane <= 64 for lane in lanes)
        assert len(lanes) < 2 or lanes[1] - lanes[0] > 1
        assert truth["center_xy"] in CENTER_CODES
    rows = [{"recording_id": SYNTH_IDS[0], "bad_lanes": [53, 59], "center_xy": "L, 5, -5", "duration_s": 1199.6},
            {"recording_id": SYNTH_IDS[2], "bad_lanes": [], "center_xy": "", "duration_s": 60}]
    table = read_table(write_sheet_export(tmp_path / "sheet.csv", rows))
    assert tuple(table.columns) == SHEET_COLUMNS and len(SHEET_COLUMNS) == 42
    fields = row_fields(match_row(table, SYNTH_IDS[0])[0])
    assert (fields["Bad_lanes"], fields["Center_xy"], fields["Dur(Sec)"]) == ("53, 59", "L, 5, -5", "1199.6")
    assert (fields["Sheet Name"], fields["Chip"], fields["Date"]) == ("Data_2024", "4144", "1/17/2024")
    assert table["Bad_lanes"].tolist() == ["53, 59", ""]
    assert table["Sheet Name"].tolist() == ["Data_2024", "Data_2025"]


# -- the lab's real CSV export ---------------------------------------------------------------------

needs_lab_csv = pytest.mark.skipif(not LAB_CSV.is_file(), reason=f"lab CSV {LAB_CSV} not available")


@pytest.fixture(scope="module")
def lab_table():
    return read_table(LAB_CSV)


@needs_lab_csv
def test_lab_csv_is_text_with_the_lab_columns(lab_table):
    assert lab_table.shape == (8862, 42)
    assert tuple(lab_table.columns) == SHEET_COLUMNS
    assert all(isinstance(cell, str) for cell in lab_table.to_numpy().ravel())


@needs_lab_csv
def test_lab_csv_exact_match_beats_an_earlier_decoy(lab_table):
    row, rule = match_row(lab_table, TEST_RECORDING)
    assert rule == "exact"
    assert (row["Sheet Name"], row["Center_xy"], row["Bad_lanes"]) == ("Data_2024", "R, -5, 5", "")
    decoy = {column: "" for column in lab_table.columns}
    decoy.update({"File_name": "2024.08.08.10.40.20.Rec.test.cmcr", "Sheet Name": "Data_2025", "Center_xy": "L, 5, 5"})
    with_decoy = pd.concat([pd.DataFrame([decoy]), lab_table], ignore_index=True)
    assert match_row(with_decoy, TEST_RECORDING) == (row, "exact")
    names = with_decoy["File_name"]
    substring_hits = np.flatnonzero([any(c in name for c in substring_candidates(TEST_RECORDING)) for name in names])
    assert substring_hits[0] == 0  # the lab's rule alone would take the decoy


@needs_lab_csv
def test_lab_table_served_by_the_standin_comes_back_identical(tmp_path, rsa_key, lab_table):
    pem, public_key = rsa_key
    tabs = tabs_of(lab_table)
    assert len(tabs) == 8
    with GoogleStandin(tabs, public_key=public_key) as standin:
        fetched = fetch_sheet_table(write_credentials(tmp_path, pem, standin), api_endpoints=standin.api_endpoints)
        assert standin.counts["values"] == 8
    pd.testing.assert_frame_equal(fetched, lab_table)
    assert match_row(fetched, TEST_RECORDING) == match_row(lab_table, TEST_RECORDING)
