"""``--dask-address``: the recordings' work runs on the workers of an existing Dask cluster.

A ``distributed.LocalCluster`` with two worker processes (one thread each, no dashboard, on
127.0.0.1) stands in for the lab's dask-jobqueue SLURM cluster. Each worker counts the step
bodies it executes; the scheduler counts the tasks it ran by name.
"""

from __future__ import annotations

import sys
from collections import Counter

import cloudpickle
import pytest

from lab_server import write_config
from mea_pipeline.steps import REGISTRY

pytestmark = pytest.mark.services

# The counting functions travel to the workers by value: this test module is not importable there.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def count_step_bodies() -> None:
    """On a worker: record every step body this process executes (as tests/test_flows.py does in-process)."""
    from mea_pipeline import runner

    calls = []
    real = runner.run_step

    def counting(name, recording, config, force=False, **kwargs):
        calls.append((name, recording.recording_id))
        return real(name, recording, config, force=force, **kwargs)

    runner.run_step = counting
    runner.counted_calls = calls


def counted() -> list:
    from mea_pipeline import runner

    calls = list(runner.counted_calls)
    runner.counted_calls.clear()
    return calls


def finished_tasks(dask_scheduler) -> dict:
    return {name: prefix.state_counts["memory"] for name, prefix in dask_scheduler.task_prefixes.items()}


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1") as local, Client(local) as client:
        client.run(count_step_bodies)
        yield local, client


def test_batch_runs_each_recording_on_a_dask_worker(mea_server, synth_dataset, cluster, tmp_path):
    local, client = cluster
    config = write_config(tmp_path / "dask.toml", synth_dataset, tmp_path / "out")
    result = mea_server.run("mea-pipeline", "batch", "--config", config, "--dask-address", local.scheduler_address,
                            "--concurrency", "2", "--raw-reads", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 successful, 0 skipped, 0 failed" in result.stdout

    ids = [r["recording_id"] for r in synth_dataset["recordings"]]
    per_worker = client.run(counted)
    # Every step body of every recording ran exactly once, all of them on the Dask workers, and
    # each worker took one whole recording (one thread each, two recordings at once).
    assert Counter(call for calls in per_worker.values() for call in calls) == \
        Counter((name, rid) for rid in ids for name in [s.name for s in REGISTRY.select(None)])
    assert sorted(sorted({rid for _, rid in calls}) for calls in per_worker.values()) == [[rid] for rid in sorted(ids)]
    assert client.run_on_scheduler(finished_tasks)["run_recording"] == 2


def test_one_recording_at_a_time_still_runs_on_the_cluster(mea_server, synth_dataset, cluster, tmp_path):
    """--concurrency 1 does not fall back to the batch's own process when the runner is Dask."""
    local, client = cluster
    config = write_config(tmp_path / "dask.toml", synth_dataset, tmp_path / "out")
    result = mea_server.run("mea-pipeline", "batch", "--config", config, "--dask-address", local.scheduler_address,
                            "--end", "1", "--steps", "1-2")
    assert result.returncode == 0, result.stdout + result.stderr
    calls = [call for calls in client.run(counted).values() for call in calls]
    assert sorted(calls) == sorted((name, synth_dataset["recordings"][0]["recording_id"])
                                   for name in ("load_recording", "section_time"))
