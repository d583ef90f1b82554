"""The ``mea-pipeline`` command line.

Errors a user can cause print one line naming the file or field and how to fix it; Prefect is
imported only by the commands that run flows (``inspect``, ``scan``, ``synth`` stay fast).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from mea_pipeline.batch_options import DEFAULT_OUTPUT, BatchOptions
from mea_pipeline.config import PipelineConfig, RecordingInputs
from mea_pipeline.errors import InputError, PipelineError, RecordingError
from mea_pipeline.faults import describe
from mea_pipeline.store import OutputFile

from . import compare, export_nwb, operate
from .common import (ConfigOpt, CsvOpt, DebugOpt, EndOpt, OutputOpt, PathMapOpt, StartOpt, StepsOpt, load_config,
                     prefect_environment, registry, say_ui_link, with_input_options)

# Plain help text (no rich markup): rich read '[batch]' and '[steps.<name>]' in the help as markup and
# dropped them.
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Retinal CMOS-MEA recordings (.cmcr/.cmtr) -> one HDF5 file per recording.")


def run_batch(*, config_file=None, inputs=None, debug=False, **options) -> dict:
    """Run the batch flow and return its summary (also used by ``demo``).

    ``options`` are batch options (None = from ``[batch]`` of the config file); ``inputs`` are
    input flags (stimuli, playlist, labels, ...). The batch is planned and checked here, before a
    Prefect server starts (a missing CSV or a bad config key is one line at once), and the flow
    runs that plan: the config is loaded and the pre-flight run once.
    """
    options = {k: str(v) if isinstance(v, Path) else v for k, v in options.items()}
    resolved = BatchOptions.load(config_file, **options)
    from .checks import checked_batch

    checked = checked_batch(resolved, load_config(config_file, inputs or {}))
    prefect_environment(debug)
    from prefect import tags

    from mea_pipeline.flows.batch_all_steps import batch_all_steps
    from mea_pipeline.flows.run_labels import trigger_tags

    from .run_log import run_log

    flow = batch_all_steps
    if resolved.dask_address:
        from prefect_dask import DaskTaskRunner

        flow = batch_all_steps.with_options(task_runner=DaskTaskRunner(address=resolved.dask_address))
    options.pop("dask_address", None)  # chosen here, as the flow's task runner
    # The flow names and tags the run with its source (run_labels); it runs the checked plan.
    with tags(*trigger_tags("cli")), run_log(resolved.output, debug) as log:
        state = flow(config_file=str(config_file) if config_file else None, inputs=inputs or {},
                     checked=checked, return_state=True, **options)
    summary = state.result(raise_on_failure=False)
    if isinstance(summary, BaseException):
        raise summary
    say_ui_link(state)
    if summary["failed"]:
        print(f"Details of the failures: {log}")
    return summary


@app.command()
@with_input_options
def batch(
    csv: Optional[Path] = CsvOpt,
    output: Optional[Path] = OutputOpt,
    start: Optional[int] = StartOpt,
    end: Optional[int] = EndOpt,
    overwrite: Optional[bool] = typer.Option(None, "--overwrite", help="Recompute recordings whose output is complete"),
    debug: bool = DebugOpt,
    steps: Optional[str] = StepsOpt,
    concurrency: Optional[int] = typer.Option(None, "--concurrency", help="Recordings at once (default 1)"),
    raw_reads: Optional[int] = typer.Option(
        None, "--raw-reads", help="Recordings reading raw files at once, across batches sharing the server (default 1)"),
    path_map: Optional[list[str]] = PathMapOpt,
    config_file: Optional[Path] = ConfigOpt,
    only_failed: Optional[bool] = typer.Option(None, "--only-failed", help="Only recordings with a failed step"),
    recheck: Optional[bool] = typer.Option(
        None, "--recheck", help="Check complete outputs against the raw files too (cached steps are not rerun)"),
    scan_root: Optional[list[Path]] = typer.Option(
        None, "--scan-root", help="Scan this data folder for recordings instead of reading --csv (repeatable)"),
    dask_address: Optional[str] = typer.Option(
        None, "--dask-address", help="Run the recordings on an existing Dask scheduler (tcp://host:port)"),
    via_deployment: Optional[str] = typer.Option(
        None, "--via-deployment",
        help="Hand each recording to Prefect workers as a run of this deployment (e.g. process_recording/workers)"),
    inputs: Optional[dict] = None,
):
    """Process the matched recordings of a mapping CSV (the lab's batch_all_steps)."""
    summary = run_batch(
        csv=csv, output=output, start=start, end=end, overwrite=overwrite, steps=steps, concurrency=concurrency,
        raw_reads=raw_reads, path_map=path_map or None, only_failed=only_failed, recheck=recheck,
        scan_roots=[str(p) for p in scan_root] if scan_root else None, dask_address=dask_address,
        via_deployment=via_deployment, config_file=config_file, inputs=inputs, debug=debug,
    )
    raise typer.Exit(1 if summary["failed"] else 0)


def _run_one_recording(recording: RecordingInputs, config: PipelineConfig, steps: Optional[str],
                       debug: bool) -> None:
    from .checks import recording_preflight

    recording_preflight(recording, config, steps)
    prefect_environment(debug)
    from mea_pipeline.flows.server_setup import prepare_server
    from mea_pipeline.flows.process_recording import counts_line, process_recording

    prepare_server(raw_reads=1)
    if any("sheet" in step.reads for step in registry().select(steps, config.enabled_steps)):
        # A run of one recording is a batch of one: the sheet is fetched (or its CSV taken) once.
        from mea_pipeline.sheet.source import resolve_sheet

        config, note = resolve_sheet(config, recording.output_path.parent)
        print(note, flush=True)
    from mea_pipeline.recording_lock import RecordingLock

    from .run_log import run_log

    from prefect import tags

    from mea_pipeline.flows.run_labels import trigger_tags

    with RecordingLock(recording.output_path), run_log(recording.output_path.parent, debug), \
            tags(*trigger_tags("cli")):
        state = process_recording(recording, config, steps, return_state=True)
    say_ui_link(state)
    if not state.is_completed():
        state.result()  # raises the step's error, printed as one line by main()
    summary = state.result()
    print(f"{recording.recording_id}: {counts_line(summary)} -> {recording.output_path}")
    from mea_pipeline.runner import recorded_warnings, warning_lines

    for line in warning_lines([recorded_warnings(recording.output_path, steps, config.enabled_steps)]):
        print(line)


@app.command("run-one")
@with_input_options
def run_one(
    cmcr: Path = typer.Option(..., "--cmcr", help="Raw .cmcr file"),
    cmtr: Path = typer.Option(..., "--cmtr", help="Spike-sorted .cmtr file"),
    output: Path = typer.Option(Path("."), "--output", help="Output folder"),
    steps: Optional[str] = StepsOpt,
    config_file: Optional[Path] = ConfigOpt,
    debug: bool = DebugOpt,
    inputs: Optional[dict] = None,
):
    """Process one recording (all steps or --steps) through the per-recording flow."""
    from mea_pipeline.mcs_io import recording_id_from_path

    rid = recording_id_from_path(cmtr)
    recording = RecordingInputs(rid, output / f"{rid}.h5", cmcr, cmtr)
    _run_one_recording(recording, load_config(config_file, inputs), steps, debug)


@app.command()
@with_input_options
def resume(
    file: Path = typer.Argument(..., help="An existing output .h5"),
    steps: Optional[str] = StepsOpt,
    config_file: Optional[Path] = ConfigOpt,
    debug: bool = DebugOpt,
    inputs: Optional[dict] = None,
):
    """Continue an output file with the steps it lacks (steps that read no raw file need none)."""
    output = OutputFile(file)
    with output.open() as h5:
        if h5 is None:
            raise PipelineError(f"{file} is not a readable output file; run `mea-pipeline run-one` instead")
        sources = dict(h5["source_files"].attrs) if "source_files" in h5 else {}
    done = set(output.verified_records())
    recording = RecordingInputs(file.stem, file, _path(sources.get("cmcr_path")), _path(sources.get("cmtr_path")))
    config = load_config(config_file, inputs)
    lacking = [s.name for s in registry().select(steps, config.enabled_steps)
               if s.name not in done or not s.outside_files_present(recording, config.params_for(s))]
    if not lacking:
        print(f"{file}: nothing to do, all selected steps are done")
        return
    _run_one_recording(recording, config, ",".join(lacking), debug)


def _path(value) -> Optional[Path]:
    if value is None:
        return None
    return Path(value.decode() if isinstance(value, bytes) else str(value))


@app.command()
def status(
    output: Path = typer.Option(Path(DEFAULT_OUTPUT), "--output", help="Output folder"),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Also list CSV recordings that have no output"),
    path_map: Optional[list[str]] = typer.Option(None, "--path-map"),
    verify: bool = typer.Option(False, "--verify", help="Re-read every output for its digest (finds edited files; slow)"),
):
    """Table of recordings x steps: done / failed / stale / missing (and edited, with --verify).

    Exit code 1 when a failed step is recorded, 0 otherwise.
    """
    if output.exists() and not output.is_dir():
        raise InputError(f"--output {output} is a file; give the folder that holds the <recording_id>.h5 outputs")
    files = {p.stem: p for p in sorted(output.glob("*.h5"))}
    ids = list(files)
    if csv:
        from mea_pipeline.mapping import parse_path_map, recordings

        ids += [r.recording_id for r in recordings(csv, output, parse_path_map(path_map)) if r.recording_id not in files]
    names = registry().names()
    states = {rid: OutputFile(files[rid]).step_states(verify) if rid in files else {} for rid in ids}
    width = max([len(i) for i in ids] + [12])
    cells = {rid: [states[rid].get(n, "missing").split(":")[0] for n in names] for rid in ids}
    # Each column as wide as its step's name (or its widest state): no header is cut.
    widths = [max([len(n)] + [len(cells[rid][k]) for rid in ids]) for k, n in enumerate(names)]
    print(f"{'recording':<{width}}  " + "  ".join(f"{n:<{w}}" for n, w in zip(names, widths)))
    for rid in ids:
        print(f"{rid:<{width}}  " + "  ".join(f"{c:<{w}}" for c, w in zip(cells[rid], widths)))
    failures = [f"{rid} {name}: {state}" for rid in ids for name, state in states[rid].items()
                if state.startswith("failed")]
    for line in failures:
        print(line)
    if failures:
        raise typer.Exit(1)


@app.command()
@with_input_options
def check(
    csv: Optional[Path] = CsvOpt,
    output: Optional[Path] = OutputOpt,
    start: Optional[int] = StartOpt,
    end: Optional[int] = EndOpt,
    steps: Optional[str] = StepsOpt,
    path_map: Optional[list[str]] = PathMapOpt,
    overwrite: Optional[bool] = typer.Option(None, "--overwrite", help="Check recordings whose output is complete too"),
    config_file: Optional[Path] = ConfigOpt,
    inputs: Optional[dict] = None,
):
    """Pre-flight only: check every input `batch` would read (takes seconds, reads no raw data)."""
    from .checks import run_check

    options = BatchOptions.load(config_file, csv=str(csv) if csv else None, output=str(output) if output else None,
                                start=start, end=end, steps=steps, path_map=path_map or None, overwrite=overwrite)
    raise typer.Exit(run_check(options, load_config(config_file, inputs)))


@app.command()
def inspect(
    cmcr: Path = typer.Argument(..., help=".cmcr file"),
    cmtr: Optional[Path] = typer.Argument(None, help=".cmtr file (optional)"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
):
    """What a recording holds: rate, duration, sensor grid, analog channels, units and spikes."""
    from mea_pipeline.inspect_recording import format_inspection, inspect_recording

    info = inspect_recording(cmcr, cmtr)
    print(json.dumps(info, indent=2, default=str) if as_json else format_inspection(info))


@app.command()
def scan(
    roots: list[Path] = typer.Argument(..., help="Data folders to walk"),
    out: Path = typer.Option(Path("mapping.csv"), "--out", help="Mapping CSV to write"),
):
    """Pair *-Rec-.cmtr with *-Rec.cmcr under data folders and write a mapping CSV."""
    from mea_pipeline.mapping import scan as scan_folders

    table, problems = scan_folders(roots)
    table.to_csv(out, index=False)
    print(f"{out}: {int(table['matched'].sum()) if len(table) else 0} matched, "
          f"{len(table) - (int(table['matched'].sum()) if len(table) else 0)} unmatched")
    for line in problems:
        print(f"  {line}")


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", help="Folder for recordings, stimulus library, mapping CSV"),
    n_recordings: int = typer.Option(3, "--n-recordings"),
    n_units: int = typer.Option(12, "--n-units"),
    seed: int = typer.Option(0, "--seed"),
    sensor_seconds: float = typer.Option(1.0, "--sensor-seconds", help="Seconds of full-chip sensor data"),
    profile: str = typer.Option("demo", "--profile", help="'demo' or 'tiny' (shorter movies)"),
    stimulus_mirror: bool = typer.Option(True, "--stimulus-mirror/--no-stimulus-mirror",
                                         help="Stimulus transposed against the electrodes (the default geometry)"),
    stimulus_rotation: float = typer.Option(0.0, "--stimulus-rotation",
                                            help="Rotation of the stimulus on the chip, degrees (+column toward +row)"),
    stimulus_scale: float = typer.Option(1.0, "--stimulus-scale",
                                         help="Magnification of the stimulus on the chip (1 = the noise grid spans it)"),
    stimulus_offset: tuple[float, float] = typer.Option((0.0, 0.0), "--stimulus-offset",
                                                        help="Shift of the stimulus centre: COLUMN ROW electrodes"),
):
    """Write synthetic .cmcr/.cmtr pairs in the real MCS layout, with ground truth."""
    from mea_pipeline.synth import SynthSpec, write_dataset

    spec = SynthSpec(n_units=n_units, seed=seed, sensor_seconds=sensor_seconds, profile=profile,
                     stimulus_mirror=stimulus_mirror, stimulus_rotation_deg=stimulus_rotation,
                     stimulus_scale=stimulus_scale, stimulus_offset=tuple(stimulus_offset))
    paths = write_dataset(out, n_recordings=n_recordings, spec=spec)
    print(f"{len(paths['recordings'])} recordings (.cmcr, -.cmtr, .truth.json) in {paths['recordings_dir']}\n"
          f"stimulus library (playlist {paths['playlist']}) in {paths['stimuli_dir']}\n"
          f"mapping CSV {paths['mapping_csv']}")


@app.command()
def demo(
    out: Path = typer.Option(Path("demo_data"), "--out", help="Folder for the synthetic dataset and outputs"),
    n_recordings: int = typer.Option(3, "--n-recordings"),
    concurrency: int = typer.Option(1, "--concurrency"),
    debug: bool = DebugOpt,
):
    """Make a synthetic dataset (real MCS format) and run the whole batch on it."""
    from mea_pipeline.synth import SynthSpec, write_dataset

    if not (out / "pipeline.toml").is_file():
        print(f"Writing {n_recordings} synthetic recordings to {out} ...", flush=True)
        write_dataset(out, n_recordings=n_recordings, spec=SynthSpec())
    config_file = out / "pipeline.toml"
    summary = run_batch(config_file=config_file, concurrency=concurrency, debug=debug)
    print(f"Outputs in {out / 'output'}; try: mea-pipeline status --output {out / 'output'}\n"
          f"Rerun with: mea-pipeline batch --config {config_file}")
    raise typer.Exit(1 if summary["failed"] else 0)


@app.command()
def params():
    """Every input option (config key and flag) and every step parameter, with its default."""
    from mea_pipeline.params_reference import render_text

    print(render_text(registry()), end="")


@app.command()
def schema():
    """Print the output file schema (Markdown) from the step declarations."""
    from mea_pipeline.schema import render_markdown

    print(render_markdown(registry()), end="")


@app.command("prefect-yaml")
def prefect_yaml():
    """Print the work-pool deployments (deployments/prefect.yaml) from the deployment definitions."""
    from mea_pipeline.deployments.specs import prefect_yaml as work_pool_file

    print(work_pool_file(), end="")


@app.command("train-ap-model")
def train_ap_model(
    out: Path = typer.Option(..., "--out", help="Weight file to write; <name>.validation.json goes beside it"),
    seed: int = typer.Option(0, "--seed"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Passes over the training cubes (default 6)"),
    units: Optional[int] = typer.Option(None, "--units", help="Training units of the broad distribution (default 3000)"),
    validation_units: Optional[int] = typer.Option(None, "--validation-units",
                                                   help="Held-apart units for the per-voxel metrics (default 40)"),
    selection_units: Optional[int] = typer.Option(None, "--selection-units",
                                                  help="Units per validation scene when choosing the epoch (default 16)"),
    report_units: Optional[int] = typer.Option(None, "--report-units",
                                               help="Units per validation scene in the report (default 30)"),
    sets: Optional[str] = typer.Option(None, "--sets", help="Comma-separated validation sets (default all)"),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch threads (default 2)"),
):
    """Train the AP-tracking CNN on a broad synthetic distribution, choose the epoch by tracking results on
    sets it never saw, and report them (deterministic for a seed)."""
    from dataclasses import replace

    from mea_pipeline.ap_training.training import TrainingSpec, train_model, write_weights
    from mea_pipeline.ap_training.validation_sets import SET_NAMES

    chosen = None
    if sets is not None:
        chosen = tuple(name.strip() for name in sets.split(",") if name.strip())
        unknown = [name for name in chosen if name not in SET_NAMES]
        if unknown or not chosen:
            raise InputError(f"--sets: unknown {unknown or sets!r}; choose from {', '.join(SET_NAMES)}")
    given = {"epochs": epochs, "n_train_units": units, "n_validation_units": validation_units,
             "selection_units": selection_units, "report_units": report_units, "threads": threads, "sets": chosen}
    spec = TrainingSpec()
    spec = replace(spec, **{k: v for k, v in given.items() if v is not None})
    model, report = train_model(spec, seed, log=lambda line: print(line, flush=True))
    weights, validation = write_weights(model, report, out)
    print(f"weights {weights}\nvalidation {validation}")


operate.register(app)  # server, serve
compare.register(app)
export_nwb.register(app)


def main(argv: Optional[list[str]] = None) -> int:
    """Console entry point: 0 all good, 1 a recording failed, 2 bad invocation or input (one line on stderr)."""
    try:
        return app(args=argv, standalone_mode=False) or 0
    except RecordingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the user gave: a file for a folder, no permission, a full disk
        print(f"error: {describe(exc)}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:
        return int(exc.code or 0)
    except Exception as exc:
        if _is_usage_error(exc):
            exc.show()
            return exc.exit_code
        raise


def _is_usage_error(exc: Exception) -> bool:
    """A bad flag or argument: click's exception, which typer >= 0.29 vendors under its own name."""
    import click

    return isinstance(exc, click.exceptions.ClickException) or (
        isinstance(exc, getattr(typer, "TyperException", ())) and hasattr(exc, "show") and hasattr(exc, "exit_code"))


if __name__ == "__main__":
    sys.exit(main())
