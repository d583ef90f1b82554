"""Matrix rows R62-R69, R82 and R83: concurrent runs, the lock per recording and crashes (docs/reliability.md).

The lock rows run in this process or against a small holder process. The end-to-end rows (marked
``services``: minutes, so ``make test-services`` runs them, not ``make test``) run the real
command line in subprocesses against the session's Prefect server, and the kill at each step in a
forked child per step. The leaked raw-read slot's lease runs out while the other rows run: the
first test of this module kills its holder and the last one reads what the batch waiting for it
printed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.settings import PREFECT_API_URL, temporary_settings

import matrix
from cli_run import cli, mapping
from mea_pipeline.cli.local_server import healthy
from mea_pipeline.config import RecordingInputs
from mea_pipeline.flows.process_recording import RAW_READS_LIMIT
from mea_pipeline.flows.server_setup import HEARTBEAT_GRACE
from mea_pipeline.recording_lock import RecordingBusy, RecordingLock
from mea_pipeline.runner import FAULT_ENV, is_complete
from mea_pipeline.steps import REGISTRY
from output_copy import copy_output

HERE = Path(__file__).parent
LEASE_S = 60             # flows/process_recording.py RAW_SLOT_LEASE_S
REPOSSESSOR_LOOP_S = 15  # how often a server frees expired leases (Prefect's default)
HOLD_SLOT = """
import logging, time
from prefect import flow
from prefect.runtime import flow_run
from mea_pipeline.flows.process_recording import raw_read_slot
from mea_pipeline.flows.server_setup import prepare_server

@flow
def hold_raw_read_slot():
    prepare_server(raw_reads=1)  # the limit and the zombie-run automation, as a batch creates them
    with raw_read_slot(logging.getLogger("holder")):
        print("holding", flow_run.id, flush=True)
        time.sleep(600)

hold_raw_read_slot()
"""
WAIT_SLOT = """
import logging, time
from mea_pipeline.flows.process_recording import raw_read_slot
start = time.monotonic()
with raw_read_slot(logging.getLogger("waiter")):
    print(f"got the slot after {time.monotonic() - start:.0f} s", flush=True)
"""
HOLD_LOCK = """
import sys, time
from mea_pipeline.recording_lock import RecordingLock
with RecordingLock(sys.argv[1]):
    print("holding", flush=True)
    time.sleep(600)
"""


def environment(home: Path, **extra) -> dict:
    return os.environ | {"PREFECT_API_URL": PREFECT_API_URL.value(), "MEA_PIPELINE_HOME": str(home)} | extra


def holder(code: str, *args, env=None) -> subprocess.Popen:
    """A Python process running ``code``; returns once it prints 'holding' (``.holding``: the rest of that line)."""
    process = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE, text=True,
                               env=env)
    line = process.stdout.readline().split()
    assert line[:1] == ["holding"], line
    process.holding = " ".join(line[1:])
    return process


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_heartbeat(url: str, flow_run_id: str, timeout_s: float = 25) -> None:
    """Return once the server at ``url`` has two heartbeat events of the flow run.

    The engine's first one, sent before the run created the zombie-run automation, and the one
    ``prepare_server`` sends once it has: the automation's clock starts at the second. Within
    less than the 30 s between the engine's heartbeats, so that it is ``prepare_server``'s.
    """
    query = {"filter": {"event": {"name": ["prefect.flow-run.heartbeat"]},
                        "any_resource": {"id": [f"prefect.flow-run.{flow_run_id}"]}}, "limit": 2}
    deadline = time.monotonic() + timeout_s
    while len(httpx.post(f"{url}/events/filter", json=query).json()["events"]) < 2:
        assert time.monotonic() < deadline, f"no heartbeat of flow run {flow_run_id} within {timeout_s} s"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def leaked_slot(tmp_path_factory) -> dict:
    """A flow run killed with SIGKILL while it held the raw-read slot, and a second batch waiting for it.

    On a server of its own started with ``mea-pipeline server`` (the lab's set-up): only a full
    server runs the service that frees expired leases; the session's test server does not.
    Yields ``url``, ``waiter`` (the waiting process), ``killed_at`` (monotonic time) and
    ``flow_run_id`` (the killed run's).
    """
    home, port = tmp_path_factory.mktemp("lease_home"), free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = os.environ | {"MEA_PIPELINE_HOME": str(home), "PREFECT_HOME": str(home / "prefect"),
                        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}  # as the command line sets it
    server = subprocess.Popen([sys.executable, "-m", "mea_pipeline.cli", "server", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not healthy(url) and time.monotonic() < deadline:
            time.sleep(0.5)
        env["PREFECT_API_URL"] = url
        process = holder(HOLD_SLOT, env=env)
        wait_for_heartbeat(url, process.holding)  # killed before, the run would not be seen to die
        process.kill()
        process.wait()
        killed_at = time.monotonic()
        waiter = subprocess.Popen([sys.executable, "-c", WAIT_SLOT], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        yield {"url": url, "waiter": waiter, "killed_at": killed_at, "flow_run_id": process.holding}
        waiter.kill()
        waiter.wait()
    finally:
        os.killpg(server.pid, signal.SIGINT)  # the server and the Prefect server it started
        server.wait(timeout=60)


@pytest.mark.services
def test_a_killed_batch_leaves_its_raw_read_slot_taken(leaked_slot):
    """The leak the lease repairs; the last test of this module sees the slot come back."""
    with temporary_settings(updates={PREFECT_API_URL: leaked_slot["url"]}):
        with get_client(sync_client=True) as client:
            assert client.read_global_concurrency_limit_by_name(RAW_READS_LIMIT).active_slots == 1


def test_lock_keeps_a_second_thread_of_one_run_out(tmp_path):
    output = tmp_path / "2024.01.17-11.15.41-Rec.h5"
    errors = []
    with RecordingLock(output):
        thread = threading.Thread(target=lambda: errors.append(_busy(output)))
        thread.start()
        thread.join()
    RecordingLock(output).acquire().release()  # free again once released
    line = f"[3/4] {output.stem}: skipped (busy: {errors[0].reason})"  # what the batch prints for it
    matrix.record("R63", line, names=("this run is already processing it", "name it twice"))


def _busy(output: Path) -> RecordingBusy:
    with pytest.raises(RecordingBusy) as caught:
        RecordingLock(output).acquire()
    return caught.value


def test_lock_held_by_another_process_is_named_and_freed_by_its_death(tmp_path):
    output = tmp_path / "2024.01.17-11.15.41-Rec.h5"
    process = holder(HOLD_LOCK, output)
    busy = _busy(output)
    process.send_signal(signal.SIGKILL)
    process.wait()
    RecordingLock(output).acquire().release()  # the kernel dropped the dead holder's lock at once
    line = f"[1/2] {output.stem}: skipped (busy: {busy.reason})"
    matrix.record("R65", line, names=(f"pid {process.pid}", "another run is processing it", ".h5.lock"))


@pytest.mark.services
def test_kill_at_each_step_then_rerun_recomputes_nothing_committed(tiny, tmp_path):
    rec = tiny["recordings"][1]
    result = subprocess.run([sys.executable, str(HERE / "kill_chain.py"), str(tiny["config_file"]),
                             rec["recording_id"], str(rec["cmcr"]), str(rec["cmtr"]), str(tmp_path)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    rounds, names = json.loads(result.stdout), REGISTRY.names()
    for k, entry in enumerate(rounds):
        assert entry["lock_free"], entry
        if k < len(names):
            assert entry["kill_at"] == names[k] and entry["signal"] == signal.SIGKILL, entry
        assert set(entry["committed"]) == set(names[:k]), (k, entry["committed"])
        # The step killed last round is computed now; every step committed before is not.
        expected = {name: "up-to-date" for name in names[:max(k - 1, 0)]} | ({names[k - 1]: "done"} if k else {})
        assert entry["ran"] == expected, (k, entry["ran"])
        previous = rounds[k - 1]["committed"] if k else {}
        assert {n: entry["committed"][n] for n in previous} == previous, k
    line = f"{len(names)} kills, then a rerun: {sum(e['ran'].get(n) == 'done' for e in rounds for n in names)} " \
           f"step runs for {len(names)} steps, lock free after every kill"
    matrix.record("R66", line, names=(f"{len(names)} step runs for {len(names)} steps",))


KILLED_EXPORT = """
import os, signal, sys
from pathlib import Path
from mea_pipeline.config import PipelineConfig, RecordingInputs
from mea_pipeline.nwb import atomic
from mea_pipeline.runner import run_step
from mea_pipeline.steps import REGISTRY

real = atomic.write_nwb

def write_then_die(nwbfile, path):
    real(nwbfile, path)  # the whole file is on disk under its temporary name
    os.kill(os.getpid(), signal.SIGKILL)

atomic.write_nwb = write_then_die
config_file, recording_id, output = sys.argv[1:]
run_step("nwb_export", RecordingInputs(recording_id, Path(output)), PipelineConfig.load(config_file, REGISTRY),
         force=True)
"""


def test_a_killed_nwb_export_leaves_the_previous_nwb_or_none(processed, dataset, tmp_path):
    from mea_pipeline.runner import run_step

    recording, config = copy_output(processed, tmp_path), processed["config"]
    nwb = recording.output_path.with_suffix(".nwb")
    kill = [sys.executable, "-c", KILLED_EXPORT, str(dataset["config_file"]), recording.recording_id,
            str(recording.output_path)]

    def killed() -> None:
        result = subprocess.run(kill, capture_output=True, text=True, timeout=300)
        assert result.returncode == -9, result.stderr
        assert [p.name for p in tmp_path.glob("*.tmp-*")] != []  # killed with its temporary file complete

    previous = nwb.read_bytes()
    killed()
    assert nwb.read_bytes() == previous and is_complete(recording, config)
    nwb.unlink()
    killed()
    assert not nwb.exists() and not is_complete(recording, config)
    assert run_step("nwb_export", recording, config)["status"] == "done"
    assert nwb.is_file() and is_complete(recording, config)
    assert [p.name for p in tmp_path.glob("*.tmp-*")] == []  # the leftover went with the next export
    line = (f"kill -9 inside the NWB export, twice: the previous {nwb.name} kept byte for byte, then none and "
            f"nwb_export not done; the next export done, its leftover temporary removed")
    matrix.record("R83", line, names=("kept byte for byte", "not done", "leftover temporary removed"))


def step_lines(logs: list[str]) -> Counter:
    """(recording, step) -> how many runs' logs say the step was computed ('<step>: done in ...')."""
    counts = Counter()
    for text in logs:
        for rid, step in re.findall(r"(?:recording|rec)-(\S+) - (\w+): done in ", text):
            counts[(rid, step)] += 1
    return counts


@pytest.mark.services
def test_killed_batch_then_two_batches_at_once(tiny, tiny_output, tmp_path, prefect_server):
    out, config = tmp_path / "out", tiny_output["config"]
    copy_output(tiny_output, out)  # recording 0 holds steps 1-5
    table = mapping(tiny)
    first, second = table["recording_id"][0], table["recording_id"][1]
    command = [sys.executable, "-m", "mea_pipeline.cli", "batch", "--config", str(tiny["config_file"]),
               "--output", str(out)]
    env = environment(tmp_path / "home")

    # 1. A batch killed by SIGKILL right before step 7 commits (steps 6-11 read no raw file, so it
    #    holds no raw-read slot whose lease would delay the next batches).
    table.iloc[[0]].to_csv(tmp_path / "first.csv", index=False)
    killed = subprocess.run(command + ["--csv", str(tmp_path / "first.csv"), "--steps", "6-11"],
                            env=env | {FAULT_ENV: "rf_geometry"}, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    RecordingLock(out / f"{first}.h5").acquire().release()

    # 2. Two batches at once over both recordings, a repeated row and a row whose raw file is missing.
    bad = table.iloc[[1]].assign(cmcr_path=str(tmp_path / "gone-Rec.cmcr"), cmtr_path=str(tmp_path / "gone-Rec-.cmtr"))
    pd.concat([table, table.iloc[[0]], bad]).to_csv(tmp_path / "both.csv", index=False)
    both = command + ["--csv", str(tmp_path / "both.csv"), "--concurrency", "2", "--raw-reads", "4"]
    runs = [subprocess.Popen(both, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=900) for run in runs]
    # The bad row: refused by its own run in a batch that ran it; the other batch refused it too,
    # or met it while the first held it (refusing it) and skipped it as busy. Exit 1 where refused.
    refused = [bool(re.search(r"^  gone-Rec: FAILED at preflight: ", o, re.MULTILINE)) for o, _ in outputs]
    busy = [bool(re.search(r"\] gone-Rec: skipped \(busy: ", o)) for o, _ in outputs]
    assert any(refused) and [r != b for r, b in zip(refused, busy)] == [True, True], outputs
    assert [run.returncode for run in runs] == [1 if r else 0 for r in refused], outputs
    terminal = "\n".join(o + e for o, e in outputs)

    # Each recording was computed once: no step of either ran twice, none committed before the kill ran again.
    logs = [path.read_text() for path in (out / "logs").glob("*.log")]
    counts = step_lines(logs)
    names = [step.name for step in REGISTRY.select(None)]  # the config enables no optional step
    assert {step: counts[(first, step)] for step in names} == {s: int(s not in names[:5]) for s in names}
    assert {step: counts[(second, step)] for step in names} == dict.fromkeys(names, 1)
    assert all(is_complete(RecordingInputs(rid, out / f"{rid}.h5"), config) for rid in (first, second))
    # Both summaries tell the truth: two successes in all, the rest skipped, the bad row failed in each.
    summaries = [re.search(r"(\d+) successful, (\d+) skipped, (\d+) failed \(of 4\)", o) for o, _ in outputs]
    assert all(summaries) and sum(int(s[1]) for s in summaries) == 2
    assert all(int(s[1]) + int(s[2]) + int(s[3]) == 4 and s[3] == str(int(r)) for s, r in zip(summaries, refused))
    refusing = outputs[refused.index(True)][0]
    summary_line = next(line for line in refusing.splitlines() if "Batch finished" in line)
    matrix.record("R62", summary_line, terminal, names=("successful", "skipped", "1 failed (of 4)"))
    # "[4/4] gone-Rec", then the recording's own run refuses it: "  gone-Rec: FAILED at preflight: ...".
    failed = next(line for line in refusing.splitlines() if line.strip().startswith("gone-Rec: FAILED"))
    matrix.record("R64", failed, terminal, names=("gone-Rec", "FAILED at preflight", "cmcr file not found"))
    resumed = next(line for o, _ in outputs for line in o.splitlines() if line.strip().startswith(f"{first}: Units"))
    matrix.record("R67", resumed, terminal, names=(first, f"Steps: {len(names)}"))


def test_run_one_on_a_recording_another_run_holds(tiny, tmp_path, prefect_server, capsys):
    rec = tiny["recordings"][0]
    process = holder(HOLD_LOCK, tmp_path / f"{rec['recording_id']}.h5")
    try:
        code, out, err = cli(capsys, "run-one", "--cmcr", rec["cmcr"], "--cmtr", rec["cmtr"], "--output", tmp_path,
                             "--config", tiny["config_file"], "--steps", "1")
    finally:
        process.kill()
        process.wait()
    assert code == 1
    matrix.record("R69", err, out + err, names=("error: ", "another run is processing it", f"pid {process.pid}"))


@pytest.mark.services
def test_a_batch_waiting_for_the_leaked_slot_says_so_and_gets_it_within_the_lease(leaked_slot):
    deadline = leaked_slot["killed_at"] + LEASE_S + REPOSSESSOR_LOOP_S + 30
    output, _ = leaked_slot["waiter"].communicate(timeout=max(1.0, deadline - time.monotonic()))
    assert leaked_slot["waiter"].returncode == 0, output
    waited = float(re.search(r"got the slot after (\d+) s", output)[1])
    assert waited <= LEASE_S + REPOSSESSOR_LOOP_S + 15
    line = next(line for line in output.splitlines() if "waiting for a raw-read slot" in line)
    matrix.record("R68", line, output, names=("waiting for a raw-read slot", "mea-raw-reads"))


@pytest.mark.services
def test_the_killed_run_is_marked_crashed_when_its_heartbeats_stop(leaked_slot):
    """The server's zombie-run automation (flows/server_setup.py), after the last test so its wait overlaps."""
    deadline = leaked_slot["killed_at"] + HEARTBEAT_GRACE.total_seconds() + 90
    with temporary_settings(updates={PREFECT_API_URL: leaked_slot["url"]}), get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(leaked_slot["flow_run_id"])
            if run.state.type == StateType.CRASHED or time.monotonic() > deadline:
                break
            time.sleep(5)
    assert run.state.type == StateType.CRASHED, run.state
    line = f"{run.name}: {run.state.name}: {run.state.message}"
    matrix.record("R82", line, names=("Crashed", "no heartbeat for 90 s"))
