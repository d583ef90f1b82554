"""Prefect workers sharing a PostgreSQL-backed server: a batch hands its recordings to a work pool.

``mea-pipeline server --database-url postgresql+asyncpg://...``; the work pool and the
deployments of ``deployments/prefect.yaml``, deployed with ``prefect --no-prompt deploy`` from a
folder that is not the checkout (the entrypoints are module paths); two ``prefect worker start``
processes (one run at a time each) pulling from the pool. ``mea-pipeline batch --via-deployment
process_recording/workers`` creates one flow run per recording: each must be claimed by exactly
one worker and processed once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from lab_server import ROOT, batch_run, flow_run_id, running_server, stop, subflow_runs, write_config
from mea_pipeline.steps import REGISTRY

pytestmark = pytest.mark.services

POOL = "mea-local"  # the pool deployments/prefect.yaml names
WORKERS = ("worker-1", "worker-2")
WORKERS_ONLINE_S = 120


@pytest.fixture(scope="module")
def pool(postgres_database, synth_dataset, tmp_path_factory):
    """The server, the pool with the deployments of prefect.yaml, two workers online."""
    folder = tmp_path_factory.mktemp("workers")
    config = write_config(folder / "workers.toml", synth_dataset, folder / "out")
    with running_server(folder / "server", postgres_database) as server:
        created = server.run("prefect", "work-pool", "create", POOL, "--type", "process")
        assert created.returncode == 0, created.stdout + created.stderr
        elsewhere = folder / "deploy-from-here"
        elsewhere.mkdir()
        deployed = server.run("prefect", "--no-prompt", "deploy", "--all", "--prefect-file",
                              ROOT / "deployments" / "prefect.yaml", cwd=elsewhere,
                              env=server.prefect_env(MEA_PIPELINE_CONFIG=str(config)))
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        # Workers ask for runs every 10 s by default; every second keeps the test short.
        polling = server.prefect_env(PREFECT_WORKER_QUERY_SECONDS="1")
        workers = {name: server.start("prefect", "worker", "start", "--pool", POOL, "--limit", "1", "--name", name,
                                      log=folder / f"{name}.log", env=polling)
                   for name in WORKERS}
        try:
            wait_until_online(server)
            yield {"server": server, "config": config, "folder": folder, "database": postgres_database}
        finally:
            for process in workers.values():
                stop(process)


def wait_until_online(server) -> None:
    from prefect.client.schemas.objects import WorkerStatus

    deadline = time.monotonic() + WORKERS_ONLINE_S
    with server.client() as client:
        while {w.name for w in client.read_workers_for_work_pool(POOL) if w.status == WorkerStatus.ONLINE} \
                != set(WORKERS):
            assert time.monotonic() < deadline, "the workers did not come online"
            time.sleep(1)


def claims(folder, run_id) -> list[str]:
    """The workers that started flow run ``run_id``: those that submitted it and were not refused
    (the server answers a second claim with an abort, which the worker logs)."""
    logs = {name: (folder / f"{name}.log").read_text() for name in WORKERS}
    return [name for name, log in logs.items()
            if f"submitting flow run '{run_id}'" in log and f"Aborted submission of flow run '{run_id}'" not in log]


def count_rows(database_url: str, sql: str) -> int:
    import asyncpg

    async def query():
        connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:
            return await connection.fetchval(sql)
        finally:
            await connection.close()

    return asyncio.run(query())


def test_batch_hands_each_recording_to_exactly_one_worker(pool, synth_dataset):
    server, folder = pool["server"], pool["folder"]
    result = server.run("mea-pipeline", "batch", "--config", pool["config"], "--via-deployment",
                        "process_recording/workers", "--concurrency", "2", "--raw-reads", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 successful, 0 skipped, 0 failed" in result.stdout
    ids = [r["recording_id"] for r in synth_dataset["recordings"]]
    with server.client() as client:
        batch = batch_run(client, result.stdout)
        runs = subflow_runs(client, batch.id)
        deployment = client.read_deployment_by_name("process_recording/workers")
        task_runs = Counter(run.name for run in client.read_task_runs())
    # One flow run of the deployment per recording, shown under the batch, each claimed by one
    # worker, the two recordings by different workers (each takes one run at a time).
    assert sorted(runs) == [f"rec-{rid}" for rid in sorted(ids)]
    assert all(run.deployment_id == deployment.id and run.state.is_completed() for run in runs.values())
    assert sorted(name for run in runs.values() for name in claims(folder, run.id)) == sorted(WORKERS)
    # Each step of each recording ran once: a second run of a recording (by either worker) would
    # have added task runs of its own.
    assert all(task_runs[f"{step}-{rid}"] == 1 for step in [*(s.name for s in REGISTRY.select(None)), "qc_report"] for rid in ids)
    # The records are in PostgreSQL.
    assert count_rows(pool["database"], "SELECT count(*) FROM flow_run WHERE name LIKE 'rec-%'") == len(ids)


def test_nightly_deployment_of_prefect_yaml_runs_on_a_worker(pool):
    server = pool["server"]
    result = server.run("prefect", "deployment", "run", "batch_all_steps/nightly", "--watch", "--watch-timeout", "600")
    assert "UUID:" in result.stdout, result.stdout + result.stderr
    with server.client() as client:
        run = client.read_flow_run(flow_run_id(result.stdout))
    assert run.state.is_completed(), run.state.message
    assert run.state.message == "0 successful, 2 skipped"  # the config's [batch], read on the worker
    assert run.work_pool_name == POOL and len(claims(pool["folder"], run.id)) == 1
