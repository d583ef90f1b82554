"""Matrix rows R16-R27: the output folder and the raw files (docs/reliability.md).

A bad output folder stops ``batch`` before Prefect starts (exit code 2). A bad raw file fails only
its recording, at its pre-flight, before any raw data is read; ``check`` shows the same line.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import h5py
import pandas as pd

import matrix
from cli_run import cli, mapping, write_csv
from mea_pipeline.preflight import output as output_check


def test_output_path_that_is_a_file(tiny, tmp_path, capsys):
    target = tmp_path / "results"
    target.write_text("not a folder")
    code, out, err = cli(capsys, "batch", "--config", tiny["config_file"], "--csv", tiny["mapping_csv"],
                         "--output", target)
    assert code == 2 and out == ""
    matrix.record("R16", err, out + err, names=("--output", "results is not a folder"))
    assert target.read_text() == "not a folder"


def test_output_below_a_file(tiny, tmp_path, capsys):
    (tmp_path / "results").write_text("")
    code, out, err = cli(capsys, "batch", "--config", tiny["config_file"], "--csv", tiny["mapping_csv"],
                         "--output", tmp_path / "results" / "out")
    assert code == 2
    matrix.record("R17", err, out + err, names=("is not a folder", "results is a file"))


def test_output_folder_not_writable(tiny, tmp_path, capsys, monkeypatch):
    def denied(**kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(kwargs["dir"]))

    # The tests run as root, which no mode bit stops: the probe meets the error a lab user would.
    monkeypatch.setattr(output_check.tempfile, "TemporaryFile", denied)
    code, out, err = cli(capsys, "batch", "--config", tiny["config_file"], "--csv", tiny["mapping_csv"],
                         "--output", tmp_path / "out")
    assert code == 2
    matrix.record("R18", err, out + err, names=("cannot write in", "permission denied (EACCES)"))


def test_output_drive_nearly_full_is_a_warning(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(output_check.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**12, 10**12, 10**8))
    code, out, err = cli(capsys, "check", "--config", tiny["config_file"], "--csv", tiny["mapping_csv"],
                         "--output", tmp_path / "out")
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("warning: --output"))
    matrix.record("R19", line, out + err, names=("0.10 GB free", "disk full"))


def test_recording_output_path_that_is_a_folder(tiny, tmp_path, capsys):
    rid = mapping(tiny)["recording_id"][0]
    (tmp_path / "out" / f"{rid}.h5").mkdir(parents=True)
    code, out, err = cli(capsys, "check", "--config", tiny["config_file"], "--csv", tiny["mapping_csv"],
                         "--output", tmp_path / "out")
    assert code == 1
    line = next(line for line in out.splitlines() if line.startswith("[1/2]"))
    matrix.record("R20", line, out + err, names=(f"{rid}.h5 is a folder", "move the folder"))


def test_unreadable_existing_output_is_replaced_with_a_warning(tiny, tmp_path, capsys):
    rid = mapping(tiny)["recording_id"][0]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / f"{rid}.h5").write_bytes(b"\x89HDF\r\n\x1a\n truncated by a crashed copy")
    code, out, err = cli(capsys, "check", "--config", tiny["config_file"], "--csv", tiny["mapping_csv"],
                         "--output", tmp_path / "out")
    assert code == 0
    line = next(line for line in out.splitlines() if "HDF5 cannot read it" in line)
    matrix.record("R21", line, out + err, names=(f"{rid}.h5", "move it away first to keep it"))


def damaged(tiny, tmp_path, kind: str, damage) -> tuple[Path, pd.DataFrame]:
    """The mapping with row 1's ``kind`` file replaced by ``damage(source, target)``."""
    table = mapping(tiny)
    source = Path(table.loc[1, f"{kind}_path"])
    target = tmp_path / "raw" / source.name
    target.parent.mkdir(exist_ok=True)
    damage(source, target)
    table.loc[1, f"{kind}_path"] = str(target)
    return write_csv(tmp_path, table), table


def check_row(tiny, tmp_path, capsys, csv) -> tuple[str, str]:
    code, out, err = cli(capsys, "check", "--config", tiny["config_file"], "--csv", csv, "--output", tmp_path / "out")
    assert code == 1, out + err
    assert "[1/2]" in out and "ready" in out.splitlines()[0]  # the other recording is unaffected
    return next(line for line in out.splitlines() if line.startswith("[2/2]")), out + err


def test_missing_raw_file(tiny, tmp_path, capsys):
    csv, _ = damaged(tiny, tmp_path, "cmcr", lambda source, target: None)
    line, output = check_row(tiny, tmp_path, capsys, csv)
    matrix.record("R22", line, output, names=("cmcr file not found", "check the path"))


def test_raw_file_that_is_not_hdf5(tiny, tmp_path, capsys):
    csv, _ = damaged(tiny, tmp_path, "cmtr", lambda source, target: target.write_bytes(b"not an HDF5 file" * 64))
    line, output = check_row(tiny, tmp_path, capsys, csv)
    matrix.record("R23", line, output, names=("is not an HDF5 file", "copy it again"))


def test_raw_file_truncated_by_an_interrupted_copy(tiny, tmp_path, capsys):
    def truncate(source: Path, target: Path) -> None:
        data = source.read_bytes()
        target.write_bytes(data[: len(data) // 2])

    csv, _ = damaged(tiny, tmp_path, "cmtr", truncate)
    line, output = check_row(tiny, tmp_path, capsys, csv)
    matrix.record("R24", line, output, names=("the file is truncated: ", "bytes its header announces", "copy it again"))
    assert "sblock" not in line and "stored_eof" not in line  # no HDF5 internals


def test_cmcr_and_cmtr_swapped(tiny, tmp_path, capsys):
    table = mapping(tiny)
    table.loc[1, ["cmcr_path", "cmtr_path"]] = [table.loc[1, "cmtr_path"], table.loc[1, "cmcr_path"]]
    table.loc[1, "cmtr_path"] = str(tmp_path / "x-Rec-.cmtr")  # a recording ID of its own
    (tmp_path / "x-Rec-.cmtr").symlink_to(table.loc[0, "cmcr_path"])
    line, output = check_row(tiny, tmp_path, capsys, write_csv(tmp_path, table))
    matrix.record("R25", line, output, names=("no 'Acquisition' group", "is this the .cmcr"))


def test_hdf5_file_that_is_not_an_mcs_file(tiny, tmp_path, capsys):
    def foreign(source: Path, target: Path) -> None:
        with h5py.File(target, "w") as h5:
            h5["data"] = [1, 2, 3]

    csv, _ = damaged(tiny, tmp_path, "cmtr", foreign)
    line, output = check_row(tiny, tmp_path, capsys, csv)
    matrix.record("R26", line, output, names=("not an MCS file", "CMOS-MEA-Tools"))


def test_raw_file_without_read_permission(tiny, tmp_path, capsys, monkeypatch):
    from mea_pipeline import mcs_io

    denied_path = Path(mapping(tiny).loc[1, "cmcr_path"])
    real_open = open

    def guarded_open(path, *args, **kwargs):
        if Path(path) == denied_path:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    # As root no mode bit denies a read; the check meets the error a lab user gets on a share.
    monkeypatch.setattr(mcs_io, "open", guarded_open, raising=False)
    line, output = check_row(tiny, tmp_path, capsys, tiny["mapping_csv"])
    matrix.record("R27", line, output, names=("Permission denied", "give this user read access"))
