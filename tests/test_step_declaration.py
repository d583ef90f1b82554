"""A step declaration is the whole step: a toy step registered at run time, with its own external
input, a stimulus-library need and a QC part, is wired everywhere without another file edited."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import pytest
from matplotlib.figure import Figure
from typer.testing import CliRunner

from mea_pipeline.config import PipelineConfig
from mea_pipeline.errors import InputError
from mea_pipeline.inputs import INPUTS, PATH, ExternalInput, InputOption, content_fingerprint
from mea_pipeline.preflight import check_batch, check_recording
from mea_pipeline.qc.report import write_report
from mea_pipeline.runner import plan_step, run_recording
from mea_pipeline.schema import OURS, Out, find_out, render_markdown, validate
from mea_pipeline.steps import REGISTRY, load_recording
from mea_pipeline.steps.registry import Qc, Step
from mea_pipeline.store import OutputFile
from output_copy import copy_output


def read_gains(path: Path) -> dict[str, float]:
    """The toy input: a CSV of recording_id,gain."""
    if path is None or not Path(path).is_file():
        raise InputError(f"toy gain table {path} not found; give --toy-table FILE")
    with open(path, newline="") as handle:
        return {row["recording_id"]: float(row["gain"]) for row in csv.DictReader(handle)}


def _check_table(report, config) -> None:
    report.attempt(read_gains, config.toy_table)


def _check_row(report, rec, config) -> None:
    gains = report.attempt(read_gains, config.toy_table)
    if gains is not None and rec.recording_id not in gains:
        report.warning(f"{rec.recording_id}: no row in the toy gain table; toy_gain uses 1.0")


TOY_TABLE = ExternalInput(
    "toy_table", "a toy per-recording gain table", fingerprint=lambda rec, config: content_fingerprint(config.toy_table),
    options=(InputOption("toy_table", PATH, "Toy gain table (CSV: recording_id,gain)"),),
    check_batch=_check_table, check_recording=_check_row)


@dataclass(frozen=True)
class ToyParams:
    """Parameters of the toy step.

    Attributes
    ----------
    movie_word : str
        The playlist movie whose trial layout the toy step reads (a part of its name).
    """

    movie_word: str = "dense"


GAIN = Out("metadata/toy_gain/gain", "f", 0, "the recording's gain", origin=OURS)
SCALED = Out("metadata/toy_gain/n_units_scaled", "f", 0, "gain x units", origin=OURS)
MOVIE = Out("metadata/toy_gain/movie", "str", 0, "the movie whose layout was read", origin=OURS)


def _movie(movies: list[str], word: str) -> str:
    found = [m for m in movies if word in m]
    if not found:
        raise InputError(f"toy_gain: no playlist movie contains {word!r}; set [steps.toy_gain] movie_word")
    return found[0]


def _library_check(check) -> None:
    movie = check.attempt(_movie, tuple(check.movies), check.params.movie_word)
    if movie is not None:
        check.attempt(check.library.trial_layout, movie)


def _run(ctx, p: ToyParams) -> dict:
    gain = read_gains(ctx.config.toy_table).get(ctx.recording.recording_id, 1.0)
    units = load_recording.unit_ids(ctx)
    ctx.tx.write(GAIN.at(), gain)
    ctx.tx.write(SCALED.at(), gain * len(units))
    ctx.tx.write(MOVIE.at(), p.movie_word)
    return {"n_units": len(units)}


def _numbers(h5) -> dict:
    return {"toy_units_scaled": float(h5[SCALED.at()][()])}


def _figure(h5) -> Figure:
    fig = Figure(figsize=(2, 2))
    fig.subplots().bar([0], [h5[SCALED.at()][()]])
    return fig


TOY = Step(name="toy_gain", upstream=("load_recording",), reads=frozenset({TOY_TABLE, "stimuli"}), params=ToyParams,
           version="1", run=_run, outputs=(GAIN, SCALED, MOVIE), description="A toy step registered at run time",
           position=0, library_check=_library_check, qc=Qc(topic="toy", figure=_figure, numbers=_numbers))


@pytest.fixture
def toy():
    REGISTRY.register(TOY)
    yield TOY
    REGISTRY.unregister(TOY.name)
    assert "toy_table" not in INPUTS


@pytest.fixture
def gains(processed, tmp_path) -> Path:
    path = tmp_path / "gains.csv"
    path.write_text(f"recording_id,gain\n{processed['inputs'].recording_id},2.5\nsomeone_else,9\n")
    return path


def test_a_toy_step_is_wired_by_its_declaration_alone(processed, tmp_path, toy, gains):
    config: PipelineConfig = processed["config"].with_inputs(toy_table=str(gains))

    # Order from its dependency: position 0 would put it first, but it reads load_recording.
    assert REGISTRY.names()[:2] == ["load_recording", "toy_gain"]
    assert REGISTRY.number("toy_gain") == 2
    assert [s.name for s in REGISTRY.select("toy_gain")] == ["toy_gain"]
    assert "toy_gain" in [s.name for s in REGISTRY.select("offline")]
    assert "toy_gain" not in [s.name for s in REGISTRY.select("raw")]

    # Pre-flight from its input's and its library check's declarations.
    assert [e for e in check_batch(config, "toy_gain", tmp_path).errors] == []
    missing = check_batch(config.with_inputs(toy_table=str(tmp_path / "nope.csv")), "toy_gain", tmp_path)
    assert any("nope.csv" in e for e in missing.errors)
    bad_movie = PipelineConfig(inputs=config.inputs, step_params={"toy_gain": {"movie_word": "zebra"}})
    assert any("no playlist movie contains 'zebra'" in e for e in check_batch(bad_movie, "toy_gain", tmp_path).errors)
    copy = copy_output(processed, tmp_path / "out")
    other = copy_output(processed, tmp_path / "other")
    assert check_recording(copy, config, "toy_gain").warnings == []
    gains.write_text("recording_id,gain\nsomeone_else,9\n")
    assert any("no row in the toy gain table" in w for w in check_recording(other, config, "toy_gain").warnings)
    gains.write_text(f"recording_id,gain\n{processed['inputs'].recording_id},2.5\n")

    # It runs, writes what it declares, and its input enters its cache key only.
    result = run_recording(copy, config, steps="toy_gain")
    assert {s["step"]: s["status"] for s in result["steps"]} == {"toy_gain": "done"}
    with h5py.File(copy.output_path) as h5:
        n_units = len(load_recording.unit_ids(h5))
        assert h5["metadata/toy_gain/n_units_scaled"][()] == 2.5 * n_units
        assert validate(h5, REGISTRY) == []
    records = OutputFile(copy.output_path).verified_records()
    before = {s.name: plan_step(s, copy, config, records).cache_key for s in REGISTRY}
    gains.write_text(f"recording_id,gain\n{processed['inputs'].recording_id},3.5\n")
    after = {s.name: plan_step(s, copy, config, records).cache_key for s in REGISTRY}
    assert {n for n in before if before[n] != after[n]} == {"toy_gain"}

    # QC: its figure and numbers are in the report.
    manifest = write_report(copy.output_path)
    assert manifest["figures"]["toy"] == "toy.png"
    assert (Path(manifest["folder"]) / "toy.png").stat().st_size > 0
    assert manifest["numbers"]["toy_units_scaled"] == 2.5 * n_units

    # Schema document and parameter reference.
    document = render_markdown(REGISTRY)
    assert "## Step 2: toy_gain" in document and "`metadata/toy_gain/n_units_scaled`" in document
    assert re.search(r"\| toy_gain \| `movie_word` \| str \| `'dense'` \| The playlist movie", document)
    assert re.search(r"\| `toy_table` \| `--toy-table` \| - \| toy_gain \|", document)


def test_a_toy_steps_input_is_a_flag_and_its_parameters_are_in_the_reference(dataset, toy, tmp_path):
    from mea_pipeline.cli.main import app

    runner = CliRunner()
    params = runner.invoke(app, ["params"])
    assert params.exit_code == 0, params.output
    assert "[steps.toy_gain]" in params.output and "movie_word = 'dense'" in params.output
    assert re.search(r"toy_table\s+--toy-table", params.output)
    assert "--toy-table" in runner.invoke(app, ["check", "--help"], env={"COLUMNS": "200"}).output
    missing = tmp_path / "absent.csv"
    result = runner.invoke(app, ["check", "--csv", str(dataset["mapping_csv"]), "--output", str(tmp_path / "o"),
                                 "--steps", "1,toy_gain", "--stimuli", str(dataset["stimuli_dir"]),
                                 "--toy-table", str(missing)])
    assert result.exit_code == 2, result.output
    assert f"toy gain table {missing} not found" in result.output


ROOT = Path(__file__).resolve().parents[1]
# Where no step may be named: what these folders do follows from the declarations.
STEP_FREE = ["src/mea_pipeline/preflight", "src/mea_pipeline/qc", "tasks", "flows", "cli", "deployments"]


def _python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_preflight_qc_and_the_orchestration_name_no_step():
    # A package that shares a step's name (mea_pipeline.ap_tracking) may be imported; a step's
    # name as a word in code, strings or comments may not appear.
    named = []
    for folder in STEP_FREE:
        for path in _python_files(folder):
            text = re.sub(r"mea_pipeline\.\w+(\.\w+)*", "", path.read_text())
            for name in REGISTRY.names():
                if re.search(rf"\b{name}\b", text):
                    named.append(f"{path.relative_to(ROOT)}: {name}")
    assert named == []


def _function_defaults(path: Path):
    import ast

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            positional = args.posonlyargs + args.args
            pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
            for arg, default in pairs:
                try:
                    value = ast.literal_eval(default)
                except ValueError:
                    continue
                yield node.name, arg.arg, value


def test_no_parameter_default_is_written_twice():
    """A step parameter's default lives in its Params dataclass only, not again in a function's signature."""
    import dataclasses

    defaults = {}
    for step in REGISTRY:
        for field in dataclasses.fields(step.params):
            if field.default is not dataclasses.MISSING and field.default is not None:
                value = field.default
                defaults.setdefault(field.name, []).append((step.name, list(value) if isinstance(value, tuple) else value))
    twice = []
    for path in sorted((ROOT / "src" / "mea_pipeline").rglob("*.py")):
        for function, name, value in _function_defaults(path):
            value = list(value) if isinstance(value, tuple) else value
            for step, default in defaults.get(name, []):
                if type(value) is type(default) and value == default:
                    twice.append(f"{path.relative_to(ROOT)}: {function}({name}={value!r}) repeats [steps.{step}] {name}")
    assert twice == []


def _retyped(value):
    """The same shape in another dtype family (float <-> int, text -> float)."""
    import numpy as np

    array = np.asarray(value)
    if array.dtype.kind == "f":
        return array.astype(np.int64) if array.size else np.zeros(array.shape, np.int64)
    if array.dtype.kind in "iub":
        return array.astype(np.float64)
    return np.zeros(array.shape, np.float64)


@pytest.mark.parametrize("name", REGISTRY.names())
def test_the_validator_catches_a_renamed_and_a_retyped_key_of_every_step(name, processed, tmp_path):
    from mea_pipeline.store import StepRecord

    copy = copy_output(processed, tmp_path)
    with h5py.File(copy.output_path, "r+") as h5:
        # Keys copied from the raw files or the sheet as found are declared 'any' (their names and
        # types are the source's); every step has keys whose name and type the schema states.
        owned = [p for p in StepRecord.read(h5, name).outputs if find_out(REGISTRY, p).dtype not in ("any", "group")]
        datasets = [p for p in owned if "@" not in p and isinstance(h5.get(p), h5py.Dataset)]
        attributes = [p for p in owned if "@" in p]
        renamed, retyped = (datasets + attributes)[:2]
        for path, change in ((renamed, "rename"), (retyped, "retype")):
            holder, _, attribute = path.partition("@")
            if attribute:
                value = h5[holder].attrs[attribute]
                del h5[holder].attrs[attribute]
                if change == "rename":
                    h5[holder].attrs[attribute + "_renamed"] = value
                else:
                    h5[holder].attrs[attribute] = _retyped(value)
            else:
                value = h5[path][()]
                del h5[path]
                h5[path + "_renamed" if change == "rename" else path] = value if change == "rename" else _retyped(value)
        problems = [p for p in validate(h5, REGISTRY) if p.startswith(name)]
    assert any(renamed in p for p in problems), problems
    assert any(retyped in p for p in problems), problems
