"""One lab-scale recording through all 11 steps: time per step, bookkeeping vs science, reruns, size.

Synthetic recordings in the real file formats (``mea_pipeline.synth``: ``.cmcr``/``.cmtr``, the
demo playlist and its movies, label folder, sheet export), cached under ``benchmarks/_work``:

* ``u400_s40``: 400 units, 40 s of full-chip sensor data (the lab-scale figure);
* ``u400_s20``: the same with 20 s: with ``u400_s40`` the slope per second of sensor data, from
  which the total at the lab's 120 s is extrapolated (measured side by side, not guessed);
* ``u100_s20``: 100 units, 20 s: the spike-count scaling of every step (above all eimage_sta).

Each cold run (an empty output file) is a fresh process, so its peak RSS is its own. Bookkeeping
is what the store measures about itself (``mea_pipeline.store.BOOKKEEPING``): the file copied
for each commit, datasets and attributes created and written (their bytes included), digests,
step records, removal of a rerun's previous outputs, compaction, HDF5's final flush with fsync
and rename, and digest checks on reading. The rest of each step is its own computation.

Reruns on the finished 40 s output, in the process that ran it but with its memory of verified
records cleared (as a new process finds it): a batch over it again (``skip``: is it complete?),
``--recheck`` (every cache key, raw files included) and a change of one step-7 (rf_geometry)
parameter, which reruns step 7 and the steps that read it.

File size: every step of the 100-unit output committed again 10 times with the same content
(the outputs read back and written through a new transaction: the store's work of a rerun
without its science; growth comes from the store, not from the numbers), against the size of
the fresh output.

Duration on this 2-core machine, otherwise idle: about 22 minutes, writing the datasets (17 GB
under ``benchmarks/_work``, once) included; step 10 (the CNN over every eimage, ~0.55 s per
unit) is 60 % of a cold run. On a shared machine expect several times that.
``python -m benchmarks.bench_lab_scale cold u100_s20``, ``reruns u100_s20`` and ``size u100_s20``
run the parts alone; each worker's result is kept in ``benchmarks/_work/lab_scale`` and
``python -m benchmarks.bench_lab_scale report`` prints and writes the figures from them again.

Run: ``python -m benchmarks.bench_lab_scale`` (``make bench`` runs it after bench_eimage, whose
cold and warm throughput ratios are repeated here).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .results import update_results

WORK = Path(__file__).resolve().parent / "_work" / "lab_scale"
DATASETS = {"u400_s40": (400, 40.0), "u400_s20": (400, 20.0), "u100_s20": (100, 20.0)}
LAB_SECONDS = 120.0
PARAM_CHANGE = ("rf_geometry", "threshold_fraction", 0.45)
RERUN_ROUNDS = 10


def dataset(name: str) -> Path:
    """The cached synthetic dataset ``name`` (written on first use); returns its folder."""
    from mea_pipeline.synth import SynthSpec, write_dataset

    folder = WORK / name
    done = folder / "complete"
    if not done.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        units, seconds = DATASETS[name]
        write_dataset(folder, n_recordings=1, spec=SynthSpec(n_units=units, sensor_seconds=seconds, seed=12))
        done.write_text("written by benchmarks.bench_lab_scale\n")
    return folder


def _recording(folder: Path, out_dir: Path):
    import pandas as pd

    from mea_pipeline.config import PipelineConfig, RecordingInputs
    from mea_pipeline.steps import REGISTRY

    row = pd.read_csv(folder / "mapping.csv").iloc[0]
    rec = RecordingInputs(row.recording_id, out_dir / f"{row.recording_id}.h5", Path(row.cmcr_path),
                          Path(row.cmtr_path))
    return rec, PipelineConfig.load(folder / "pipeline.toml", REGISTRY)


def _timed_steps(rec, config, steps=None) -> dict:
    """Run the steps in order; per step: seconds, bookkeeping seconds (by kind), status."""
    from mea_pipeline.runner import run_step
    from mea_pipeline.steps import REGISTRY
    from mea_pipeline.store import BOOKKEEPING

    per_step = {}
    for step in REGISTRY.select(steps):
        before = BOOKKEEPING.snapshot()
        t0 = time.perf_counter()
        status = run_step(step.name, rec, config)["status"]
        seconds = time.perf_counter() - t0
        kinds = {k: v - before.get(k, 0.0) for k, v in BOOKKEEPING.snapshot().items()}
        kinds = {k: round(v, 3) for k, v in kinds.items() if v > 0.0005}
        per_step[step.name] = {"seconds": round(seconds, 3), "bookkeeping_s": round(sum(kinds.values()), 3),
                               "bookkeeping_by_kind": kinds, "status": status}
        print(f"  {rec.recording_id} {step.name:20s} {seconds:8.1f} s, bookkeeping {sum(kinds.values()):6.1f} s",
              file=sys.stderr, flush=True)
    return per_step


def _forget_verified() -> None:
    """As a new process: nothing remembered in memory (the side file next to the output stays)."""
    from mea_pipeline.store import verified_memo

    verified_memo._MEMORY.clear()


def worker_cold(name: str, reruns: bool) -> dict:
    """Cold run of dataset ``name`` (fresh output), then the rerun timings when ``reruns``."""
    import resource

    folder = dataset(name)
    out_dir = WORK / f"out_{name}"
    shutil.rmtree(out_dir, ignore_errors=True)
    rec, config = _recording(folder, out_dir)
    t0 = time.perf_counter()
    steps = _timed_steps(rec, config)
    result = {"seconds_total": round(time.perf_counter() - t0, 2), "steps": steps,
              "output_mb": round(rec.output_path.stat().st_size / 1e6, 1),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if reruns:
        result.update(_reruns(rec, config))
    return result


def worker_reruns(name: str) -> dict:
    """The rerun timings on the finished output of an earlier cold run of ``name``."""
    return _reruns(*_recording(dataset(name), WORK / f"out_{name}"))


def _reruns(rec, config) -> dict:
    """Skip, --recheck and one step-7 parameter change, each as a new process finds the file."""
    from mea_pipeline.runner import run_recording, up_to_date

    result = {}
    _forget_verified()
    t0 = time.perf_counter()
    summary = run_recording(rec, config)
    result["skip_rerun_s"] = round(time.perf_counter() - t0, 3)
    assert all(s["status"] == "up-to-date" for s in summary["steps"]), summary
    _forget_verified()
    t0 = time.perf_counter()
    assert up_to_date(rec, config)
    result["recheck_rerun_s"] = round(time.perf_counter() - t0, 3)
    step, key, value = PARAM_CHANGE
    config.step_params = {**config.step_params, step: {**config.step_params.get(step, {}), key: value}}
    _forget_verified()
    t0 = time.perf_counter()
    changed = _timed_steps(rec, config)
    result["param_change_rerun_s"] = round(time.perf_counter() - t0, 3)
    result["param_change_steps"] = {s: v for s, v in changed.items() if v["status"] == "done"}
    return result


def worker_size(name: str) -> dict:
    """Commit every step of the finished output ``name`` again ``RERUN_ROUNDS`` times, same content."""
    from mea_pipeline.steps import REGISTRY
    from mea_pipeline.store import OutputFile
    from mea_pipeline.store.recommit import recommit

    source = WORK / f"out_{name}"
    work = WORK / f"size_{name}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(source, work)
    path = next(work.glob("*.h5"))
    fresh = path.stat().st_size
    t0 = time.perf_counter()
    for _ in range(RERUN_ROUNDS):
        for step in (s.name for s in REGISTRY.select(None)):
            before, after = recommit(OutputFile(path), step, REGISTRY.names())
            assert after.output_digest == before.output_digest, f"{step}: content changed on recommit"
    with OutputFile(path).open() as h5:
        assert {s.name for s in REGISTRY.select(None)} <= set(OutputFile(path).verified_records()), \
            "a step lost its record"
        assert h5 is not None
    return {"size_ratio_after_10_reruns": round(path.stat().st_size / fresh, 3), "fresh_mb": round(fresh / 1e6, 1),
            "after_10_reruns_mb": round(path.stat().st_size / 1e6, 1),
            "seconds_per_round": round((time.perf_counter() - t0) / RERUN_ROUNDS, 2)}


def _in_subprocess(*args: str) -> dict:
    """Run a worker in a new process; its result is also kept (``python -m ... report`` reads them)."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_lab_scale", *args], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    (WORK / f"result_{args[0]}_{args[1]}.json").write_text(json.dumps(result, indent=1))
    return result


def _split(run: dict) -> dict:
    return {name: {"seconds": s["seconds"], "bookkeeping_s": s["bookkeeping_s"],
                   "compute_s": round(s["seconds"] - s["bookkeeping_s"], 3), "bookkeeping_by_kind": s["bookkeeping_by_kind"]}
            for name, s in run["steps"].items()}


def main() -> dict:
    for name in DATASETS:
        dataset(name)  # written before any timing
    lab = _in_subprocess("cold", "u400_s40", "--reruns")
    half = _in_subprocess("cold", "u400_s20")
    few = _in_subprocess("cold", "u100_s20")
    size = _in_subprocess("size", "u100_s20")
    return report(lab, half, few, size)


def _by_kind(steps: dict) -> dict:
    """Bookkeeping seconds of all steps by kind (copy, create, compress, digest, ...)."""
    kinds: dict[str, float] = {}
    for step in steps.values():
        for kind, seconds in step["bookkeeping_by_kind"].items():
            kinds[kind] = round(kinds.get(kind, 0.0) + seconds, 3)
    return dict(sorted(kinds.items(), key=lambda item: -item[1]))


def report(lab: dict, half: dict, few: dict, size: dict) -> dict:
    """The ``lab_scale`` figures from the workers' results: printed and written to results.json."""
    bookkeeping = sum(s["bookkeeping_s"] for s in lab["steps"].values())
    by_kind = _by_kind(lab["steps"])
    from mea_pipeline.steps import REGISTRY

    # Only the steps that read the raw files see the sensor data's length (the others read the
    # output file, whose size does not depend on it); their difference is the slope, without the
    # other steps' run-to-run noise (shown too, from the totals).
    span = DATASETS["u400_s40"][1] - DATASETS["u400_s20"][1]
    raw_steps = [step.name for step in REGISTRY.select(None) if step.needs_raw]
    slope = sum(lab["steps"][n]["seconds"] - half["steps"][n]["seconds"] for n in raw_steps) / span
    slope_totals = (lab["seconds_total"] - half["seconds_total"]) / span
    eimage = {}
    results_file = Path(__file__).resolve().parent / "results.json"
    if results_file.is_file():
        eimage = json.loads(results_file.read_text()).get("eimage_sta", {})
    figures = {
        "recording": {"units": 400, "sensor_seconds": 40, "playlist": "demo_set6_short", "steps": len(lab["steps"])},
        "seconds_total": lab["seconds_total"],
        "seconds_per_step": {n: s["seconds"] for n, s in lab["steps"].items()},
        "bookkeeping_s": round(bookkeeping, 2),
        "bookkeeping_fraction": round(bookkeeping / lab["seconds_total"], 4),
        "bookkeeping_by_kind": by_kind,
        # Writing the large arrays gzip-compressed is mostly compression, which the output size asks for.
        "bookkeeping_fraction_without_compression": round(
            (bookkeeping - by_kind.get("compress", 0.0)) / lab["seconds_total"], 4),
        "per_step_split": _split(lab),
        "skip_rerun_s": lab["skip_rerun_s"],
        "recheck_rerun_s": lab["recheck_rerun_s"],
        "param_change": "rf_geometry.%s = %s" % PARAM_CHANGE[1:],
        "param_change_rerun_s": lab["param_change_rerun_s"],
        "param_change_steps": _split({"steps": lab["param_change_steps"]}),
        "output_mb": lab["output_mb"],
        "size_ratio_after_10_reruns": size["size_ratio_after_10_reruns"],
        "size_reruns": {**size, "recording": "u100_s20 (100 units, 20 s)"},
        "peak_rss_mb": lab["peak_rss_mb"],
        "seconds_total_20s": half["seconds_total"],
        "slope_s_per_sensor_second": round(slope, 3),
        "slope_basis": f"steps reading the raw files ({', '.join(raw_steps)}), 40 s vs 20 s",
        "slope_s_per_sensor_second_from_totals": round(slope_totals, 3),
        "extrapolated_120s_total_s": round(lab["seconds_total"] + slope * (LAB_SECONDS - DATASETS["u400_s40"][1]), 1),
        "spike_count_scaling_20s": {
            "units_100": {"seconds_total": few["seconds_total"], "eimage_sta_s": few["steps"]["load_recording"]["seconds"]},
            "units_400": {"seconds_total": half["seconds_total"], "eimage_sta_s": half["steps"]["load_recording"]["seconds"]},
        },
        "eimage_sta_ratios": {k: v for k, v in eimage.items() if "ratio" in k},
    }
    print(json.dumps(figures, indent=2))
    update_results("lab_scale", figures)
    return figures


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "cold":
        print(json.dumps(worker_cold(sys.argv[2], "--reruns" in sys.argv)))
    elif len(sys.argv) > 1 and sys.argv[1] == "reruns":
        print(json.dumps(worker_reruns(sys.argv[2])))
    elif len(sys.argv) > 1 and sys.argv[1] == "size":
        print(json.dumps(worker_size(sys.argv[2])))
    elif len(sys.argv) > 1 and sys.argv[1] == "report":  # the figures again from the kept results
        report(*(json.loads((WORK / f"result_{kind}_{name}.json").read_text())
                 for kind, name in (("cold", "u400_s40"), ("cold", "u400_s20"), ("cold", "u100_s20"), ("size", "u100_s20"))))
    else:
        main()
