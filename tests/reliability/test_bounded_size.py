"""Bounded output files: reruns never grow an output past 1.2 x a fresh one.

HDF5 does not give back the space of deleted objects by itself; the store creates every output
with persistent free-space tracking (freed space is reused by later writes) and rewrites a file
into a fresh one at a commit when its free space passes a threshold (or when it was made
without that tracking).
"""

import shutil

import h5py
import numpy as np

from mea_pipeline.steps import REGISTRY
from mea_pipeline.store import OutputFile, StepRecord
from mea_pipeline.store.digest import digest_paths
from mea_pipeline.store.recommit import recommit

BOUND = 1.2


def _recommit(output: OutputFile, step: str) -> None:
    before, after = recommit(output, step, REGISTRY.names())
    assert after.output_digest == before.output_digest


# The steps with the most bytes (eimages) and the most datasets (spike times per trial): ten
# reruns of all eleven took five minutes of make test.
RERUN = ("load_recording", "section_spike_times")


def test_ten_reruns_stay_within_the_bound(processed, tmp_path):
    path = tmp_path / processed["inputs"].output_path.name
    shutil.copy(processed["inputs"].output_path, path)
    output = OutputFile(path)
    for step in RERUN:  # the fixture's file as this store writes it: the fresh size
        _recommit(output, step)
    fresh = path.stat().st_size
    for _ in range(10):
        for step in RERUN:
            _recommit(output, step)
    assert path.stat().st_size <= BOUND * fresh, (path.stat().st_size, fresh)
    assert set(REGISTRY.names()) <= set(output.verified_records())


def test_reruns_with_changing_results_stay_within_the_bound(tmp_path):
    """Outputs that grow and shrink from run to run (e.g. a changed parameter) do not pile up."""
    output = OutputFile(tmp_path / "rec.h5")

    def run(step: str, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        with output.transaction(step, (), ("a", "b")) as tx:
            for unit in range(30):
                tx.write(f"units/{unit}/{step}/times", rng.random(n))
                tx.write(f"units/{unit}/{step}/meta/n", n)
                tx.write(f"units/{unit}/{step}/meta/label", "x" * (n % 7))
            tx.write(f"eimage/{step}", rng.random((n, 40, 40)).astype(np.float32))
            tx.commit(cache_key=f"{step}{n}", code_version="1", parameters={}, input_fingerprint={},
                      warnings=[], summary={})

    run("a", 60, 0)
    run("b", 60, 1)
    fresh = output.path.stat().st_size
    for i in range(10):
        run("a", 30 + 15 * (i % 3), i)  # half, three quarters and the whole of the first size
        run("b", 60, 100 + i)
    assert output.path.stat().st_size <= BOUND * fresh, (output.path.stat().st_size, fresh)
    with h5py.File(output.path, "r") as h5:
        for step in ("a", "b"):
            record = StepRecord.read(h5, step)
            assert digest_paths(h5, record.outputs) == record.output_digest
