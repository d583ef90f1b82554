"""Prefect overhead per recording, and the cost of a fully cached rerun.

The same small synthetic recordings go (a) through the step functions in a plain loop and
(b) through the batch flow; then (c) the batch flow runs again with everything cached. The
Prefect server is started (and warmed up) before any timing.
"""

from __future__ import annotations

import os
import shutil
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

    from flows.batch_all_steps import batch_all_steps
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

    kwargs = dict(csv=str(data["csv"]), output=str(flow_out), stimuli=str(data["stimuli"]), playlist=playlist,
                  return_state=True)
    t0 = time.perf_counter()
    first = batch_all_steps(**kwargs)
    flowed = time.perf_counter() - t0
    assert first.is_completed(), first.message

    # A fully cached rerun goes through every task (no skip of complete outputs).
    t0 = time.perf_counter()
    again = batch_all_steps(**kwargs, overwrite=False)
    skipped = time.perf_counter() - t0
    assert again.is_completed(), again.message

    from tasks import steps as step_tasks  # noqa: F401  (make sure tasks import cleanly)
    from flows.process_recording import process_recording

    recs = recordings(data["csv"], flow_out)
    t0 = time.perf_counter()
    for recording in recs:
        state = process_recording(recording, config, return_state=True)
        assert state.is_completed(), state.message
    cached = time.perf_counter() - t0

    n = N_RECORDINGS
    figures = {
        "n_recordings": n,
        "steps": len(REGISTRY.names()),
        "plain_loop_s_per_recording": round(plain / n, 3),
        "flow_s_per_recording": round(flowed / n, 3),
        "overhead_s_per_recording": round((flowed - plain) / n, 3),
        "cached_rerun_s_per_recording": round(cached / n, 3),
        "skip_complete_rerun_s_per_recording": round(skipped / n, 3),
    }
    print("orchestration (per recording, %d recordings x %d steps)" % (n, figures["steps"]))
    print(f"  plain loop of step functions : {figures['plain_loop_s_per_recording']:.3f} s")
    print(f"  batch flow (Prefect)         : {figures['flow_s_per_recording']:.3f} s")
    print(f"  Prefect overhead             : {figures['overhead_s_per_recording']:.3f} s")
    print(f"  fully cached rerun (subflows): {figures['cached_rerun_s_per_recording']:.3f} s")
    print(f"  rerun of a complete batch    : {figures['skip_complete_rerun_s_per_recording']:.3f} s (skipped)")
    update_results("orchestration", figures)


if __name__ == "__main__":
    main()
