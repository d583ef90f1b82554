"""Prefect overhead per recording, and the cost of reruns, on the server set-ups a lab runs.

For each server (the default ``mea-pipeline server`` on SQLite, and PostgreSQL when this machine
has it), in a fresh process pointed at that server: the same small synthetic recordings go
(a) through the step functions and the QC report in a plain loop and (b) through the batch flow
(after a warm-up loop, the two interleaved twice, best of each, with the server's CPU time read
from /proc); then the batch runs again (c) with complete outputs skipped and (d) with
``--recheck``, which compares every step's cache key (raw files included) and finds nothing to
do, over all recordings and over one (which splits (d) into a fixed cost per batch and a cost
per recording).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .results import update_results

WORK = Path(__file__).resolve().parent / "_work" / "orchestration"
N_RECORDINGS = 6
ROUNDS = 2  # plain loop and batch flow, interleaved
PG_ROLE = "mea_bench"
PG_DATABASE = "mea_bench_prefect"


def _dataset() -> dict:
    from mea_pipeline.synth import SynthSpec, write_dataset

    config = WORK / "data" / "pipeline.toml"
    if not config.is_file():
        shutil.rmtree(WORK / "data", ignore_errors=True)
        write_dataset(WORK / "data", n_recordings=N_RECORDINGS,
                      spec=SynthSpec(n_units=8, sensor_seconds=0.25, profile="tiny"))
    return {"config": config, "csv": WORK / "data" / "mapping.csv"}


def measure(label: str) -> dict:
    """The four timings against the server this process's PREFECT_API_URL names."""
    from prefect import flow

    from mea_pipeline.config import PipelineConfig
    from mea_pipeline.flows.batch_all_steps import batch_all_steps
    from mea_pipeline.mapping import recordings
    from mea_pipeline.qc.report import write_report
    from mea_pipeline.runner import run_recording
    from mea_pipeline.steps import REGISTRY

    data = _dataset()
    config = PipelineConfig.load(data["config"], REGISTRY)
    plain_out, flow_out = WORK / f"out_plain_{label}", WORK / f"out_flow_{label}"  # each emptied before use
    flow(lambda: None, name="warm-up")()  # connects (and loads the flow machinery) outside the timing

    def plain_loop(out: Path) -> float:
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        for recording in recordings(data["csv"], out):
            run_recording(recording, config)
            write_report(recording.output_path)
        return time.perf_counter() - t

    plain_loop(plain_out)  # warm-up: imports, CNN weights, raw files in the page cache

    kwargs = dict(csv=str(data["csv"]), output=str(flow_out), config_file=str(data["config"]), return_state=True)

    def timed(**extra) -> float:
        t = time.perf_counter()
        state = batch_all_steps(**kwargs, **extra)
        assert state.is_completed(), state.message
        return time.perf_counter() - t

    # Plain loops and flows interleaved, the best of each: drift in the machine's speed (another
    # process, the page cache) is not taken for Prefect's cost. The server's own CPU time during
    # the flows is what it costs on this machine's 2 cores (on a lab's own server host, not).
    plains, flows, server_cpu = [], [], []
    for _ in range(ROUNDS):
        plains.append(plain_loop(plain_out))
        shutil.rmtree(flow_out, ignore_errors=True)  # a fresh output, as the plain loop's
        cpu_before = _server_cpu_s()
        flows.append(timed())
        server_cpu.append(_server_cpu_s() - cpu_before)
    plain, flowed = min(plains), min(flows)
    skipped = timed()
    rechecks = [timed(recheck=True) for _ in range(3)]
    # A batch's fixed cost (Prefect joins the flow's heartbeat thread, which sleeps in 1 s ticks:
    # 0-1 s at exit) apart from what each recording adds: the same recheck over one recording.
    rechecks_one = [timed(recheck=True, end=1) for _ in range(3)]
    n = N_RECORDINGS
    per_recording = (statistics.median(rechecks) - statistics.median(rechecks_one)) / (n - 1)
    return {
        "n_recordings": n, "steps": len(REGISTRY.names()),
        "plain_loop_s_per_recording": round(plain / n, 3),
        "flow_s_per_recording": round(flowed / n, 3),
        "overhead_s_per_recording": round((flowed - plain) / n, 3),
        "rounds": ROUNDS,
        "server_cpu_s_per_recording": round(statistics.median(server_cpu) / n, 3),
        "skip_complete_rerun_s_per_recording": round(skipped / n, 3),
        "cached_rerun_s_per_recording": round(statistics.median(rechecks) / n, 3),
        "cached_rerun_s_per_recording_worst": round(max(rechecks) / n, 3),
        "cached_rerun_s_each_further_recording": round(per_recording, 3),
        "cached_rerun_s_fixed_per_batch": round(statistics.median(rechecks_one) - per_recording, 3),
    }


def _server_cpu_s() -> float:
    """CPU seconds used so far by the server's processes (its process group, from the bench's parent)."""
    group, total = int(os.environ["MEA_BENCH_SERVER_PGID"]), 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that ended meanwhile
        if int(fields[2]) == group:  # pgrp; utime and stime follow at 11 and 12
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _postgres_url() -> str | None:
    """A PostgreSQL database for Prefect on this machine, created if needed; None without PostgreSQL."""
    if os.environ.get("MEA_PIPELINE_BENCH_DATABASE_URL"):
        return os.environ["MEA_PIPELINE_BENCH_DATABASE_URL"]
    if not shutil.which("pg_ctlcluster") or not shutil.which("psql"):
        return None
    clusters = sorted(Path("/etc/postgresql").glob("*/main"))
    if not clusters:
        return None
    subprocess.run(["pg_ctlcluster", clusters[-1].parent.name, "main", "start"], capture_output=True)

    def sql(statement: str) -> str:
        return subprocess.run(["su", "postgres", "-c", f"psql -tAc \"{statement}\""], capture_output=True,
                              text=True).stdout.strip()

    if sql(f"SELECT 1 FROM pg_roles WHERE rolname='{PG_ROLE}'") != "1":
        sql(f"CREATE ROLE {PG_ROLE} LOGIN PASSWORD '{PG_ROLE}'")
    # A fresh database each run, like the SQLite home: nothing left by an earlier (killed) run, such
    # as a raw-read slot whose lease the restarted server no longer knows.
    sql(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
    sql(f"CREATE DATABASE {PG_DATABASE} OWNER {PG_ROLE}")
    if sql(f"SELECT 1 FROM pg_database WHERE datname='{PG_DATABASE}'") != "1":
        return None
    return f"postgresql+asyncpg://{PG_ROLE}:{PG_ROLE}@127.0.0.1:5432/{PG_DATABASE}"


def _on_server(label: str, database_url: str | None) -> dict:
    """Start ``mea-pipeline server`` (SQLite or PostgreSQL), measure in a child process, stop it."""
    home = WORK / f"home_{label}"
    shutil.rmtree(home, ignore_errors=True)
    port = _free_port()
    env = os.environ | {"MEA_PIPELINE_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    env.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", "mea_pipeline.cli", "server", "--port", str(port)]
    if database_url:
        command += ["--database-url", database_url]
    log = WORK / f"server_{label}.log"
    # Its own process group: `mea-pipeline server` runs Prefect's server as a child, stopped with it.
    server = subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        api_url = f"http://127.0.0.1:{port}/api"
        from mea_pipeline.cli.local_server import healthy

        deadline = time.monotonic() + 180
        while not healthy(api_url, timeout_s=2):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {label} Prefect server did not start; its log {log} ends:\n"
                                   f"{log.read_text()[-2000:]}")
            time.sleep(1)
        child = subprocess.run([sys.executable, "-m", "benchmarks.bench_orchestration", "--measure", label],
                               env=env | {"PREFECT_API_URL": api_url, "PREFECT_LOGGING_LEVEL": "WARNING",
                                          "MEA_BENCH_SERVER_PGID": str(server.pid),
                                          # as the command line sets (flows/server_setup.py says why)
                                          "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"},
                               capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
        if child.returncode != 0:
            raise RuntimeError(f"{label} measurement failed:\n{child.stderr[-3000:]}")
        return json.loads(child.stdout.strip().splitlines()[-1])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def main() -> None:
    _dataset()
    figures = {"sqlite": _on_server("sqlite", None)}
    database_url = _postgres_url()
    if database_url:
        figures["postgresql"] = _on_server("postgresql", database_url)
    else:
        figures["postgresql"] = "not measured: no PostgreSQL on this machine (apt-get install postgresql)"
    for label, f in figures.items():
        print(f"orchestration on {label}:")
        if isinstance(f, str):
            print(f"  {f}")
            continue
        print(f"  plain loop of step functions + QC : {f['plain_loop_s_per_recording']:.3f} s per recording")
        print(f"  batch flow (Prefect)               : {f['flow_s_per_recording']:.3f} s")
        print(f"  Prefect overhead                   : {f['overhead_s_per_recording']:.3f} s (target < 0.5; best of "
              f"{f['rounds']} each, interleaved)")
        print(f"  server CPU during the batch flow   : {f['server_cpu_s_per_recording']:.3f} s per recording")
        print(f"  rerun, complete outputs skipped    : {f['skip_complete_rerun_s_per_recording']:.3f} s")
        print(f"  fully cached rerun (--recheck)     : {f['cached_rerun_s_per_recording']:.3f} s (target < 0.2; "
              f"median of 3, worst {f['cached_rerun_s_per_recording_worst']:.3f} s)")
        print(f"    = {f['cached_rerun_s_fixed_per_batch']:.3f} s per batch + "
              f"{f['cached_rerun_s_each_further_recording']:.3f} s per recording (1 vs {f['n_recordings']} recordings)")
    update_results("orchestration", figures)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        print(json.dumps(measure(sys.argv[2])))
    else:
        main()
