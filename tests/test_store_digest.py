"""Digests taken as a step writes equal the digests re-read from the file; the verified-records
memo (side file) is trusted only for the file exactly as it was verified."""

import h5py
import numpy as np

from mea_pipeline.store import OutputFile, verified_memo
from mea_pipeline.store.digest import digest_paths

VALUES = {
    "f8": np.linspace(0, 1, 7), "i4": np.arange(12, dtype=np.int32).reshape(3, 4), "bool": np.array([True, False]),
    "u1_scalar": np.uint8(3), "py_int": 5, "py_float": 2.5, "py_bool": True, "empty": np.zeros((0, 3)),
    "big": np.random.default_rng(0).normal(size=(20, 300)).astype(np.float32), "str": "é-name",
    "names": ["a", "bb", "ccc"], "no_names": [], "bytes": np.array([b"ab", b"c"]), "complex": np.array([1 + 2j]),
}


def _commit_all(output: OutputFile, step: str = "a", rewrite_first: bool = False):
    with output.transaction(step) as tx:
        if rewrite_first:
            tx.write("data/f8", np.arange(3))  # replaced below within the same transaction
        for name, value in VALUES.items():
            tx.write(f"data/{name}", value)
        tx.write("data/with_attrs", np.arange(4), attrs={"rate_hz": 1000.0, "unit": "ms"})
        tx.set_attrs("units/unit_001", {"label": "ON", "n": 3, "x": 0.5, "flags": [1, 2]})
        tx.write_group("units/unit_001/features/empty")  # the lab's empty group (a dict without values)
        tx.commit(cache_key="k", code_version="1", parameters={}, input_fingerprint={}, warnings=[], summary={})
    return tx.record


def test_digest_taken_while_writing_equals_the_digest_read_back(tmp_path):
    output = OutputFile(tmp_path / "rec.h5")
    for rewrite_first in (False, True):
        record = _commit_all(output, rewrite_first=rewrite_first)
        with h5py.File(output.path, "r") as h5:
            assert digest_paths(h5, record.outputs) == record.output_digest
            assert h5["data/with_attrs"].attrs["rate_hz"] == 1000.0
            assert len(h5["units/unit_001/features/empty"]) == 0


def test_side_file_vouches_only_for_the_file_as_verified(tmp_path):
    output = OutputFile(tmp_path / "rec.h5")
    _commit_all(output)
    verified_memo._MEMORY.clear()  # as a new process
    assert set(output.verified_records()) == {"a"}
    assert verified_memo.side_file(output.path).is_file()
    verified_memo._MEMORY.clear()
    with h5py.File(output.path, "r+") as h5:
        h5["data/f8"][0] = 99
    assert output.verified_records() == {}  # the edit changed the identity: digests re-read


def test_side_file_of_another_file_is_not_trusted(tmp_path):
    output = OutputFile(tmp_path / "rec.h5")
    _commit_all(output)
    side = verified_memo.side_file(output.path).read_text()
    with h5py.File(output.path, "r+") as h5:
        h5["data/f8"][0] = 99
    verified_memo.side_file(output.path).write_text(side)
    verified_memo._MEMORY.clear()
    assert output.verified_records() == {}
