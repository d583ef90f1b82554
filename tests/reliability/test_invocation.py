"""Matrix rows R72-R80: flags, the config file and the commands around a batch (docs/reliability.md).

Each is a mistake in how the command was called: one line on stderr, exit code 2, before Prefect
starts and before any file is written.
"""

from __future__ import annotations

import pytest

import matrix
from cli_run import cli


def config_file(tmp, text: str) -> list:
    path = tmp / "pipeline.toml"
    path.write_text(text)
    return ["--config", path]


INVOCATIONS = {
    "R72": (lambda tiny, tmp: ["batch", "--config", tiny["config_file"], "--steps", "13"],
            ("--steps '13': unknown step '13'", "11=dsgc, 12=nwb_export (optional)")),
    "R73": (lambda tiny, tmp: ["batch", "--config", tiny["config_file"], "--concurrency", "0"],
            ("--concurrency 0", "use 1 to")),
    "R74": (lambda tiny, tmp: ["batch", "--config", tmp / "none.toml"], ("config file not found", "none.toml")),
    "R75": (lambda tiny, tmp: ["batch", *config_file(tmp, "stimuli = 'x'\n[batch\n")],
            ("pipeline.toml cannot be parsed", "line 2")),
    "R76": (lambda tiny, tmp: ["batch", *config_file(tmp, "stimulus = 'x'\n")],
            ("unknown key(s) stimulus", "allowed: ")),
    "R77": (lambda tiny, tmp: ["batch", *config_file(tmp, "[steps.load_recording]\nduration_s = '120 s'\n")],
            ("[steps.load_recording]: duration_s = '120 s'; give a number",)),
    "R78": (lambda tiny, tmp: ["batch", "--config", tiny["config_file"], "--path-map", "M:/mnt/m"],
            ("--path-map 'M:/mnt/m'", "PREFIX=REPLACEMENT")),
    "R79": (lambda tiny, tmp: ["resume", tiny["mapping_csv"]], ("is not a readable output file", "run-one")),
    "R80": (lambda tiny, tmp: ["status", "--output", tiny["mapping_csv"]], ("is a file", "give the folder")),
}


@pytest.mark.parametrize("row", sorted(INVOCATIONS))
def test_bad_invocation_is_one_line_and_exit_code_2(row, tiny, tmp_path, capsys):
    make, names = INVOCATIONS[row]
    argv = make(tiny, tmp_path)
    if argv[0] == "batch":
        argv += ["--csv", tiny["mapping_csv"], "--output", tmp_path / "out"]
    code, out, err = cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    matrix.record(row, err, out + err, names=names)
    assert not (tmp_path / "out").exists()
