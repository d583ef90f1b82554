"""The command line: user mistakes end in one clear line and exit code 2, before any Prefect start."""

from mea_pipeline.cli.main import main


def test_unknown_flag_is_a_usage_error_not_a_traceback(capsys):
    assert main(["batch", "--bogus"]) == 2
    err = capsys.readouterr().err
    assert "No such option: --bogus" in err and "Traceback" not in err


def test_missing_csv_and_missing_config_are_one_line(capsys, tmp_path):
    assert main(["batch"]) == 2
    assert capsys.readouterr().err.strip() == \
        "error: no mapping CSV: pass --csv FILE (or csv = ... under [batch] in --config)"
    assert main(["batch", "--csv", "x.csv", "--config", str(tmp_path / "none.toml")]) == 2
    assert capsys.readouterr().err.strip() == f"error: config file not found: {tmp_path / 'none.toml'}"
