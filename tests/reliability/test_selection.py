"""Matrix rows R01-R15: the mapping CSV and the row selection (docs/reliability.md).

A bad CSV or selection stops ``batch`` before Prefect starts: one line on stderr, exit code 2.
"""

from __future__ import annotations

import pandas as pd
import pytest

import matrix
from cli_run import cli, mapping, write_csv


def edited(tiny, column: str, row: int, value: str) -> pd.DataFrame:
    table = mapping(tiny)
    table.loc[row, column] = value
    return table


BAD_CSVS = {
    "R01": (lambda tiny, tmp: tmp / "no_such.csv", ("mapping CSV not found", "no_such.csv")),
    "R02": (lambda tiny, tmp: tmp, ("is a folder, not a file",)),
    "R03": (lambda tiny, tmp: write_csv(tmp, ""), ("mapping.csv is empty", "cmcr_path,cmtr_path,matched")),
    "R04": (lambda tiny, tmp: write_csv(tmp, "cmcr_path,cmtr_path,matched\n"), ("header but no rows",)),
    "R05": (lambda tiny, tmp: write_csv(tmp, mapping(tiny).drop(columns="matched")), ("missing column(s) matched",)),
    "R06": (lambda tiny, tmp: write_csv(tmp, edited(tiny, "matched", 1, "1")), ("line 3", "matched = '1'",
                                                                                 "True or False")),
    "R07": (lambda tiny, tmp: write_csv(tmp, edited(tiny, "matched", 0, "yes")), ("line 2", "matched = 'yes'")),
    "R08": (lambda tiny, tmp: write_csv(tmp, edited(tiny, "cmcr_path", 0, "")), ("line 2", "cmcr_path is empty")),
    "R09": (lambda tiny, tmp: write_csv(tmp, mapping(tiny).assign(matched="False")), ("no row with matched = True",)),
}


@pytest.mark.parametrize("row", sorted(BAD_CSVS))
def test_bad_mapping_csv_stops_the_batch_in_one_line(row, tiny, tmp_path, capsys):
    make, names = BAD_CSVS[row]
    code, out, err = cli(capsys, "batch", "--config", tiny["config_file"], "--csv", make(tiny, tmp_path),
                         "--output", tmp_path / "out")
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    matrix.record(row, err, out + err, names=names)
    assert not (tmp_path / "out").exists()


SELECTIONS = {
    "R10": (("--start", "-1"), ("--start -1", "counted from 0")),
    "R11": (("--start", "1", "--end", "1"), ("--start 1 --end 1 selects none", "rows 0 to 1")),
    "R12": (("--start", "5"), ("--start 5 selects none of the 2 matched rows",)),
}


@pytest.mark.parametrize("row", sorted(SELECTIONS))
def test_selection_of_no_rows_is_an_error_not_a_silent_success(row, tiny, tmp_path, capsys):
    args, names = SELECTIONS[row]
    code, out, err = cli(capsys, "batch", "--config", tiny["config_file"], "--csv", tiny["mapping_csv"],
                         "--output", tmp_path / "out", *args)
    assert code == 2 and out == ""
    matrix.record(row, err, out + err, names=names)


def test_windows_paths_without_path_map_suggest_it(tiny, tmp_path, capsys):
    table = mapping(tiny)
    for column in ("cmcr_path", "cmtr_path"):
        table[column] = [f"Q:\\lab\\{p.rsplit('/', 1)[-1]}" for p in table[column]]
    code, out, err = cli(capsys, "batch", "--config", tiny["config_file"], "--csv", write_csv(tmp_path, table),
                         "--output", tmp_path / "out")
    assert code == 2
    matrix.record("R13", err, out + err, names=("Windows path", "--path-map 'Q:\\=/mnt/q/'"))


def test_duplicate_row_is_announced_and_runs_once(tiny, tmp_path, capsys):
    table = mapping(tiny)
    code, out, err = cli(capsys, "check", "--config", tiny["config_file"],
                         "--csv", write_csv(tmp_path, pd.concat([table, table.iloc[[0]]])), "--output", tmp_path / "out")
    assert code == 0
    line = next(line for line in out.splitlines() if "named by 2 rows" in line)
    matrix.record("R14", line, out + err, names=(table["recording_id"][0], "runs once"))


def test_one_unmapped_windows_path_fails_that_recording_with_the_hint(tiny, tmp_path, capsys):
    table = mapping(tiny)
    table.loc[1, "cmcr_path"] = "M:\\20240226\\x-Rec.cmcr"
    code, out, err = cli(capsys, "check", "--config", tiny["config_file"], "--csv", write_csv(tmp_path, table),
                         "--output", tmp_path / "out")
    assert code == 1
    assert f"[1/2] {table['recording_id'][0]}: ready" in out
    line = next(line for line in out.splitlines() if line.startswith("[2/2]"))
    matrix.record("R15", line, out + err, names=("cmcr file not found", "--path-map 'M:\\=/mnt/m/'"))


def test_a_batch_asks_each_question_once(tiny, tmp_path, prefect_server, capsys, monkeypatch):
    """One CLI batch loads the config once, runs the batch's pre-flight once and asks each
    recording's completeness once (the plan's answer reaches the per-recording guard)."""
    from mea_pipeline import batch_plan, config as config_module, runner
    from mea_pipeline.cli import checks
    from mea_pipeline.flows import recording_guard
    from mea_pipeline.tasks import preflight as preflight_task

    asked = {"config": 0, "preflight": 0, "complete": 0}

    def counting(key, real):
        def count(*args, **kwargs):
            asked[key] += 1
            return real(*args, **kwargs)
        return count

    real_load = config_module.PipelineConfig.load.__func__
    monkeypatch.setattr(config_module.PipelineConfig, "load", classmethod(counting("config", real_load)))
    monkeypatch.setattr(checks, "check_batch", counting("preflight", checks.check_batch))
    monkeypatch.setattr(preflight_task, "check_batch", counting("preflight", preflight_task.check_batch))
    complete = counting("complete", runner.is_complete)
    monkeypatch.setattr(batch_plan, "is_complete", complete)
    monkeypatch.setattr(recording_guard, "is_complete", complete)
    args = ("batch", "--config", tiny["config_file"], "--csv", tiny["mapping_csv"], "--output", tmp_path / "out",
            "--steps", "1")
    code, out, err = cli(capsys, *args)
    assert code == 0, out + err
    # No output yet: nothing to ask about completeness; the outputs the batch wrote are its own.
    assert asked == {"config": 1, "preflight": 1, "complete": 0}
    asked.update(dict.fromkeys(asked, 0))
    code, out, err = cli(capsys, *args)
    assert code == 0 and "0 successful, 2 skipped" in out
    assert asked == {"config": 1, "preflight": 0, "complete": 2}
