"""Prefect overhead per recording, and the cost of a fully cached rerun.

The same small synthetic recordings go (a) through the step functions in a plain loop and
(b) through the batch flow; then (c) the batch flow runs again with everything cached. The
Prefect server is started (and warmed up) before any timing.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from pathlib import Path

from .results import update_results

WORK = Path(__file__).resolve().parent / "_work" / "orchestration"
N_RECORDINGS = 6


def _dataset() -> dict:
    from mea_pipeline.synth import SynthSpec, write_dataset

    marker = WORK / "data" / "mapping.csv"
    if not marker.is_file():
        shutil.rmtree(WORK / "data", ignore_errors=True)
        write_dataset(WORK / "data", n_recordings=N_RECORDINGS,
                      spec=SynthSpec(n_units=8, sensor_seconds=0.25, profile="tiny"))
    return {"csv": marker, "stimuli": WORK / "data" / "stimuli"}


def main() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_HOME", str(WORK / "prefect_home"))
    from prefect import flow

    from mea_pipeline.flows.batch_all_steps import batch_all_steps
    from mea_pipeline.config import PipelineConfig
    from mea_pipeline.mapping import recordings
    from mea_pipeline.runner import run_recording
    from mea_pipeline.steps import REGISTRY
    from mea_pipeline.stimulus_library import StimulusLibrary

    data = _dataset()
    playlist = StimulusLibrary(data["stimuli"]).playlist_names()[0]
    config = PipelineConfig(stimuli=data["stimuli"], playlist=playlist)
    plain_out, flow_out = WORK / "out_plain", WORK / "out_flow"
    for folder in (plain_out, flow_out):
        shutil.rmtree(folder, ignore_errors=True)

    flow(lambda: None, name="warm-up")()  # starts the (ephemeral) Prefect server outside the timing

    t0 = time.perf_counter()
    for recording in recordings(data["csv"], plain_out):
        run_recording(recording, config)
    plain = time.perf_counter() - t0

    kwargs = dict(csv=str(data["csv"]), output=str(flow_out), inputs={"stimuli": str(data["stimuli"]), "playlist": playlist},
                  return_state=True)
    t0 = time.perf_counter()
    first = batch_all_steps(**kwargs)
    flowed = time.perf_counter() - t0
    assert first.is_completed(), first.message

    # A rerun of the finished batch: complete outputs are skipped without a subflow.
    t0 = time.perf_counter()
    again = batch_all_steps(**kwargs)
    skipped = time.perf_counter() - t0
    assert again.is_completed(), again.message

    # A fully cached rerun: every recording's subflow runs and every step task is Cached.
    # Three times, reporting the median: the SQLite server stalls now and then (HTTP 503 and a
    # ~2 s client back-off under concurrent writes), which the worst run shows.
    cached_runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        cached_run = batch_all_steps(**kwargs, recheck=True)
        cached_runs.append(time.perf_counter() - t0)
        assert cached_run.is_completed(), cached_run.message
    cached = statistics.median(cached_runs)

    n = N_RECORDINGS
    figures = {
        "n_recordings": n,
        "steps": len(REGISTRY.names()),
        "plain_loop_s_per_recording": round(plain / n, 3),
        "flow_s_per_recording": round(flowed / n, 3),
        "overhead_s_per_recording": round((flowed - plain) / n, 3),
        "cached_rerun_s_per_recording": round(cached / n, 3),
        "cached_rerun_s_per_recording_worst": round(max(cached_runs) / n, 3),
        "skip_complete_rerun_s_per_recording": round(skipped / n, 3),
    }
    print("orchestration (per recording, %d recordings x %d steps)" % (n, figures["steps"]))
    print(f"  plain loop of step functions : {figures['plain_loop_s_per_recording']:.3f} s")
    print(f"  batch flow (Prefect)         : {figures['flow_s_per_recording']:.3f} s")
    print(f"  Prefect overhead             : {figures['overhead_s_per_recording']:.3f} s")
    print(f"  fully cached rerun (--recheck): {figures['cached_rerun_s_per_recording']:.3f} s "
          f"(median of 3; worst {figures['cached_rerun_s_per_recording_worst']:.3f} s)")
    print(f"  rerun, complete outputs skipped: {figures['skip_complete_rerun_s_per_recording']:.3f} s")
    update_results("orchestration", figures)


if __name__ == "__main__":
    main()
