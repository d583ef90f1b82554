"""NWB export of a lab-scale output: seconds, size against the HDF5 output, memory, the step's cost.

The 400-unit, 40 s output of ``bench_lab_scale`` (``_work/lab_scale/out_u400_s40``; made here
when absent, ~6 min) is copied to ``_work/nwb`` and, in a fresh process:

* exported with ``mea_pipeline.nwb.export.export_nwb`` (``nwb.export_s_400_units``, goal < 60 s;
  ``nwb.size_ratio_to_h5``, goal <= 1; the process's peak RSS after it);
* read as any exporter must read it, every spike train and electrical image from the HDF5 output
  and nothing written (``read_floor_s``), side by side: ``export_over_read_floor``;
* exported again by the ``nwb_export`` step as the nightly batch runs it (a copy of the output for
  its transaction, the export, the commit): ``step_s_400_units``.

The copy is new to the store, so its step records are verified first (every output re-read
against its digest: ``verify_first_s``), as a batch leaves them verified for the outputs it writes;
``export-nwb`` on a file moved or copied elsewhere pays this once.

Run: ``python -m benchmarks.bench_nwb`` (``make bench`` runs it after bench_lab_scale).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import bench_lab_scale
from .results import update_results

WORK = Path(__file__).resolve().parent / "_work" / "nwb"
SOURCE = "u400_s40"
GOAL_EXPORT_S = 60.0


def lab_output() -> Path:
    """The finished 400-unit output of bench_lab_scale (its cold run is made when absent)."""
    outputs = sorted((bench_lab_scale.WORK / f"out_{SOURCE}").glob("*.h5"))
    if not outputs:
        bench_lab_scale._in_subprocess("cold", SOURCE)
        outputs = sorted((bench_lab_scale.WORK / f"out_{SOURCE}").glob("*.h5"))
    return outputs[0]


def main() -> dict:
    source = lab_output()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    shutil.copy(source, WORK / source.name)
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_nwb", "worker", str(WORK / source.name)],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    measured = json.loads(out.strip().splitlines()[-1])
    figures = {
        "recording": {"units": measured["units"], "sensor_seconds": bench_lab_scale.DATASETS[SOURCE][1]},
        "export_s_400_units": measured["export_s"],
        "goal_export_s": GOAL_EXPORT_S,
        "size_ratio_to_h5": round(measured["nwb_bytes"] / measured["h5_bytes"], 3),
        "nwb_mb": round(measured["nwb_bytes"] / 1e6, 1),
        "h5_mb": round(measured["h5_bytes"] / 1e6, 1),
        "read_floor_s": measured["read_floor_s"],
        "export_over_read_floor": round(measured["export_s"] / measured["read_floor_s"], 2),
        "step_s_400_units": measured["step_s"],
        "verify_first_s": measured["verify_s"],
        "peak_rss_mb_export": measured["peak_rss_mb_export"],
    }
    print(f"NWB export, {figures['recording']['units']} units: {figures['export_s_400_units']} s "
          f"(goal < {GOAL_EXPORT_S:g} s; {figures['export_over_read_floor']} x reading its data, "
          f"{figures['read_floor_s']} s), {figures['nwb_mb']} MB = {figures['size_ratio_to_h5']} x the HDF5 "
          f"output; as the nwb_export step {figures['step_s_400_units']} s; peak RSS {figures['peak_rss_mb_export']} MB")
    update_results("nwb", figures)
    return figures


def worker(output: Path) -> dict:
    """Export, read floor and step, timed in this (fresh) process."""
    import resource

    import h5py

    from mea_pipeline.config import PipelineConfig, RecordingInputs
    from mea_pipeline.nwb.export import export_nwb
    from mea_pipeline.nwb.options import NwbOptions
    from mea_pipeline.runner import run_step
    from mea_pipeline.steps import REGISTRY, load_recording
    from mea_pipeline.store import OutputFile

    # The copy is a new file to the store: its step records are verified once (every output re-read
    # against its digest), as a batch leaves them for the outputs it writes. Timed apart.
    t0 = time.perf_counter()
    assert set(OutputFile(output).verified_records()) >= {s.name for s in REGISTRY.select(None)}
    verify_s = time.perf_counter() - t0

    options = NwbOptions(timezone="UTC")
    alone = output.with_name("export_nwb.nwb")
    t0 = time.perf_counter()
    export_nwb(output, alone, options)
    export_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    t0 = time.perf_counter()
    with h5py.File(output, "r") as h5:
        units = load_recording.unit_ids(h5)
        for unit in units:
            load_recording.spike_times(h5, unit)
            load_recording.eimage(h5, unit)
    read_floor_s = time.perf_counter() - t0

    config = PipelineConfig(enabled_steps=("nwb_export",), step_params={"nwb_export": {"timezone": "UTC"}})
    recording = RecordingInputs(output.stem, output)
    t0 = time.perf_counter()
    assert run_step("nwb_export", recording, config, REGISTRY, force=True)["status"] == "done"
    step_s = time.perf_counter() - t0
    return {"units": len(units), "export_s": round(export_s, 2), "read_floor_s": round(read_floor_s, 2),
            "verify_s": round(verify_s, 2),
            "step_s": round(step_s, 2), "nwb_bytes": alone.stat().st_size,
            "h5_bytes": output.stat().st_size, "peak_rss_mb_export": round(peak, 1)}


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "worker":
        print(json.dumps(worker(Path(sys.argv[2]))))
    else:
        main()
