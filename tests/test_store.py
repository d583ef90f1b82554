"""The output store: atomic step commits, records, digests, failures."""

import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from mea_pipeline.store import COMPLETED_STEPS, OutputFile, StepRecord


def commit(output: OutputFile, step: str, value, dependents=(), key="k1"):
    with output.transaction(step, dependents, order=("a", "b", "c")) as tx:
        tx.write(f"data/{step}", value)
        tx.set_attrs("units/unit_001", {f"{step}_attr": 1})
        tx.commit(cache_key=key, code_version="1", parameters={"p": 1}, input_fingerprint={},
                  warnings=["w"], summary={"n": 1})


def test_commit_writes_record_and_completed_steps(tmp_path):
    output = OutputFile(tmp_path / "rec.h5")
    commit(output, "b", np.arange(10))
    commit(output, "a", np.arange(5))
    with h5py.File(output.path) as h5:
        assert [s.decode() for s in h5[COMPLETED_STEPS][()]] == ["a", "b"]
        record = StepRecord.read(h5, "b")
    assert record.status == "done" and record.warnings == ["w"] and record.parameters == {"p": 1}
    assert record.outputs == ["data/b", "units/unit_001@b_attr"]
    assert set(output.verified_records()) == {"a", "b"}
    assert not list(tmp_path.glob(".*tmp*"))


def test_exception_inside_transaction_leaves_file_untouched(tmp_path):
    output = OutputFile(tmp_path / "rec.h5")
    commit(output, "a", np.arange(5))
    before = output.path.read_bytes()
    with pytest.raises(RuntimeError):
        with output.transaction("b") as tx:
            tx.write("data/b", np.arange(3))
            raise RuntimeError("boom")
    assert output.path.read_bytes() == before
    assert not list(tmp_path.glob(".*tmp*"))


def test_edited_output_is_not_verified(tmp_path):
    output = OutputFile(tmp_path / "rec.h5")
    commit(output, "a", np.arange(5))
    with h5py.File(output.path, "r+") as h5:
        h5["data/a"][0] = 99
    assert "a" not in output.verified_records()
    assert output.step_states()["a"] == "edited"


def test_deleted_output_dataset_is_not_verified(tmp_path):
    output = OutputFile(tmp_path / "rec.h5")
    commit(output, "a", np.arange(5))
    with h5py.File(output.path, "r+") as h5:
        del h5["data/a"]
    assert output.verified_records() == {}


def test_truncated_file_reads_as_empty_and_next_commit_starts_afresh(tmp_path):
    output = OutputFile(tmp_path / "rec.h5")
    commit(output, "a", np.arange(50000))
    data = output.path.read_bytes()
    output.path.write_bytes(data[: len(data) // 2])
    assert output.verified_records() == {}
    commit(output, "b", np.arange(3))
    assert set(output.verified_records()) == {"b"}


def test_rerun_replaces_previous_outputs_and_marks_dependents_stale(tmp_path):
    output = OutputFile(tmp_path / "rec.h5")
    commit(output, "a", np.arange(5))
    commit(output, "b", np.arange(5))
    commit(output, "a", np.arange(7), dependents=("b",), key="k2")
    with h5py.File(output.path) as h5:
        assert h5["data/a"].shape == (7,)
        assert [s.decode() for s in h5[COMPLETED_STEPS][()]] == ["a"]
    assert output.step_states()["b"] == "stale"


def test_failure_is_recorded_without_losing_outputs(tmp_path):
    output = OutputFile(tmp_path / "rec.h5")
    commit(output, "a", np.arange(5))
    output.record_failure("b", "ValueError: bad")
    assert output.step_states() == {"a": "done", "b": "failed: ValueError: bad"}
    commit(output, "b", np.arange(5))
    assert output.step_states()["b"] == "done"


def test_large_arrays_are_chunked_and_compressed(tmp_path):
    output = OutputFile(tmp_path / "rec.h5")
    commit(output, "a", np.zeros((50, 65, 65), np.float32))
    with h5py.File(output.path) as h5:
        assert h5["data/a"].compression == "gzip" and h5["data/a"].chunks


def test_killed_process_leaves_previous_state(tmp_path):
    """SIGKILL in the middle of a commit: the file keeps the last committed step only."""
    output = OutputFile(tmp_path / "rec.h5")
    commit(output, "a", np.arange(5))
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        from mea_pipeline.store import OutputFile
        with OutputFile({str(output.path)!r}).transaction("b") as tx:
            tx.write("data/b", np.arange(10**6))
            tx.h5.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run([sys.executable, "-c", script])
    assert result.returncode == -9
    assert set(output.verified_records()) == {"a"}
    commit(output, "b", np.arange(3))  # the stale temporary of the dead process is cleaned up
    assert set(output.verified_records()) == {"a", "b"}
    assert not list(tmp_path.glob(".*tmp*"))
