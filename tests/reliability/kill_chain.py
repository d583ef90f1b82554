"""``kill -9`` at each step in turn, then a rerun: a script run by test_crash_and_concurrency.py.

    python kill_chain.py CONFIG RECORDING_ID CMCR CMTR OUTPUT

One process imports the pipeline once and forks a child per round (it starts no thread, so
forking is safe). Round k's child runs every step in order under the recording's lock, with
``MEA_PIPELINE_KILL_BEFORE_COMMIT`` set to step k: it is killed right before step k commits.
After each round the parent takes the lock at once (the dead child's lock must be free) and
notes the committed step records; a last child runs with no kill. Prints one JSON list, one entry
per round: ``kill_at``, ``signal`` (the child's), ``ran`` (step -> 'done' or 'up-to-date', as the
child reported before it died), ``committed`` (step -> finished_at) and ``lock_free``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

from mea_pipeline.ap_tracking import dense  # noqa: F401 - torch imported once, before forking
from mea_pipeline.config import PipelineConfig, RecordingInputs
from mea_pipeline.recording_lock import RecordingBusy, RecordingLock
from mea_pipeline.runner import FAULT_ENV, run_step
from mea_pipeline.steps import REGISTRY
from mea_pipeline.store import OutputFile


def child(recording: RecordingInputs, config: PipelineConfig, kill_at: str | None, report: int) -> None:
    if kill_at:
        os.environ[FAULT_ENV] = kill_at
    with RecordingLock(recording.output_path):
        for name in REGISTRY.names():
            status = run_step(name, recording, config)["status"]
            os.write(report, f"{name} {status}\n".encode())


def round_of(recording: RecordingInputs, config: PipelineConfig, kill_at: str | None) -> dict:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            child(recording, config, kill_at, write)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as lines:
        ran = dict(line.split() for line in lines)
    _, status = os.waitpid(pid, 0)
    try:
        RecordingLock(recording.output_path).acquire().release()
        lock_free = True
    except RecordingBusy:
        lock_free = False
    records = OutputFile(recording.output_path).verified_records()
    return {"kill_at": kill_at, "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0, "ran": ran,
            "committed": {name: record.finished_at for name, record in records.items()}, "lock_free": lock_free}


def main(config_file: str, recording_id: str, cmcr: str, cmtr: str, output: str) -> None:
    config = PipelineConfig.load(config_file, REGISTRY)
    recording = RecordingInputs(recording_id, Path(output) / f"{recording_id}.h5", Path(cmcr), Path(cmtr))
    rounds = [round_of(recording, config, name) for name in REGISTRY.names()]
    rounds.append(round_of(recording, config, None))
    print(json.dumps(rounds))


if __name__ == "__main__":
    main(*sys.argv[1:])
