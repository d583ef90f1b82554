"""The command line: user mistakes end in one clear line and exit code 2, before any Prefect start."""

from mea_pipeline.cli.main import main
from mea_pipeline.steps import REGISTRY


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


def test_status_reads_the_records_without_torch_or_prefect(processed, tmp_path, capsys):
    """`status` is a quick look: no torch, no Prefect, no server; --verify re-reads the digests."""
    import shutil
    import subprocess
    import sys

    import h5py

    output = tmp_path / "out"
    output.mkdir()
    shutil.copy(processed["inputs"].output_path, output)
    code = ("import sys; from mea_pipeline.cli.main import main; code = main(['status', '--output', sys.argv[1]]); "
            "print('HEAVY', sorted(m for m in ('torch', 'prefect', 'McsPy') if m in sys.modules)); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code, str(output)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.startswith(processed["inputs"].recording_id))
    assert row.split()[1:] == ["done"] * len(REGISTRY.names())  # the fixture enables the optional steps too
    with h5py.File(output / processed["inputs"].output_path.name, "r+") as h5:
        h5["metadata/gsheet_row/Note"][()] = "edited by hand"
    assert main(["status", "--output", str(output), "--verify"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["recording", *REGISTRY.names()]  # no step name cut short
    row = lines[1].split()
    assert row[8] == "edited" and row.count("done") == len(REGISTRY.names()) - 1  # gsheet_metadata, the 8th step
    from mea_pipeline.store import OutputFile

    OutputFile(output / processed["inputs"].output_path.name).record_failure("dsgc", "OSError: drive went away")
    assert main(["status", "--output", str(output)]) == 1  # a recorded failure is a non-zero exit
    assert capsys.readouterr().out.splitlines()[-1].endswith("dsgc: failed: OSError: drive went away")


def test_input_options_reach_the_command_as_the_given_config_values(tmp_path):
    """Every processing command takes the same input flags; only those given override the config."""
    from pathlib import Path
    from typing import Optional

    import typer
    from typer.testing import CliRunner

    from mea_pipeline.cli.common import input_options, with_input_options
    from mea_pipeline.inputs import options

    received = {}
    app = typer.Typer()

    @app.command()
    @with_input_options
    def command(steps: Optional[str] = typer.Option(None, "--steps"), inputs: Optional[dict] = None):
        received.update(steps=steps, inputs=inputs)

    result = CliRunner().invoke(app, ["--playlist", "set6", "--stimuli", str(tmp_path), "--steps", "1-5"])
    assert result.exit_code == 0, result.output
    assert received == {"steps": "1-5", "inputs": {"playlist": "set6", "stimuli": str(Path(tmp_path))}}
    assert set(input_options()) == set(options())
    help_text = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    assert all(option.param_decls[0] in help_text for _, option in input_options().values())


def test_a_warning_every_recording_records_is_one_summary_line_with_its_count():
    from mea_pipeline.runner import warning_lines
    from mea_pipeline.steps.ap_tracking import PACKAGED_WEIGHTS_WARNING

    weights = ["ap_tracking", PACKAGED_WEIGHTS_WARNING]
    recordings = [[weights, ["soma_geometry", f"unit_00{i}: no soma geometry"]] for i in range(37)]
    recordings[0].append(weights)   # twice in one record still counts one recording
    recordings.append([["gsheet_metadata", "sheet row matched by substring only"]])
    lines = warning_lines(recordings, limit=5)
    assert lines[0] == f"warning: ap_tracking on 37 recordings: {PACKAGED_WEIGHTS_WARNING}"
    assert sum("--ap-model" in line for line in lines) == 1
    assert lines[1:5] == [f"warning: soma_geometry on 1 recording: unit_00{i}: no soma geometry"
                          for i in range(4)]
    # 33 more soma warnings and the sheet's: counted in one line, each still in its recording's record
    assert len(lines) == 6 and lines[5].startswith("warning: 34 other step warning(s)")
    assert warning_lines([[], []]) == []


def test_step_warnings_reach_the_log_file_but_not_the_terminal(tmp_path):
    """Each recording logs its step warnings; the terminal gets them once, from the summary."""
    import io
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    from mea_pipeline.cli.run_log import run_log
    from mea_pipeline.runner import STEP_WARNING

    terminal = io.StringIO()
    console = PrefectConsoleHandler(stream=terminal)
    logging.getLogger().addHandler(console)
    try:
        with run_log(tmp_path) as path:
            run = {"flow_run_name": "rec-x", "flow_run_id": "0"}   # what Prefect's run logger adds
            logger = logging.getLogger("prefect.flow_runs")
            logger.warning("ap_tracking: packaged weights", extra=run | {STEP_WARNING: True})
            logger.warning("waiting for a raw-read slot", extra=run)
    finally:
        logging.getLogger().removeHandler(console)
    assert "waiting for a raw-read slot" in terminal.getvalue() and "packaged weights" not in terminal.getvalue()
    assert "ap_tracking: packaged weights" in path.read_text()


def test_help_shows_every_option_text_whole():
    """Help text is not read as markup: '[batch]' and '[steps.<name>]' stay (rich used to drop them)."""
    import typer
    from typer.testing import CliRunner

    from mea_pipeline.cli.main import app

    command = typer.main.get_command(app)
    checked = 0
    for name, sub in command.commands.items():
        if name == "prefect":
            continue  # every argument goes to Prefect's own command line, --help included
        result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "400"})
        assert result.exit_code == 0, result.output
        text = " ".join(result.output.split())
        for param in sub.params:
            if getattr(param, "param_type_name", "") == "option" and getattr(param, "help", None):
                assert " ".join(param.help.split()) in text, f"{name} {param.opts[0]}"
                checked += 1
    assert checked > 50
