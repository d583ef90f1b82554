"""The registry is the only wiring point: a contract every step meets, typed inputs, readers, toy steps."""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass

import h5py
import pandas as pd
import pytest

from mea_pipeline.config import params_json
from mea_pipeline.runner import StepFailed, plan_step, run_recording, run_step
from mea_pipeline.schema import FIXED, LAB, OURS, Out, all_outputs, render_markdown, validate
from mea_pipeline.sheet.table import canonical_file_name
from mea_pipeline.steps import REGISTRY, load_recording
from mea_pipeline.steps.registry import Step, UndeclaredUpstream
from mea_pipeline.store import OutputFile
from output_copy import copy_output


def statuses(result: dict) -> dict:
    return {s["step"]: s["status"] for s in result["steps"]}


def changed_params(step: Step):
    """The step's parameters with one field changed (enough to change its cache key)."""
    params = step.params()
    values = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    for name, value in values.items():
        if isinstance(value, bool):
            return dataclasses.replace(params, **{name: not value})
        if isinstance(value, float):
            return dataclasses.replace(params, **{name: value * 1.01})
    for name, value in values.items():
        if isinstance(value, tuple) and value and all(isinstance(v, float) for v in value):
            return dataclasses.replace(params, **{name: value[:-1] + (value[-1] + 0.001,)})
        if isinstance(value, int):
            return dataclasses.replace(params, **{name: value - 1 if value > 1 else value + 1})
    pytest.skip(f"{step.name} has no numeric or bool parameter to change")


@pytest.mark.parametrize("name", REGISTRY.names())
def test_step_contract(name, processed, tmp_path):
    """Schema-valid output; rerun = up to date; a parameter change reruns exactly the step and its
    dependents; a failure inside the step leaves every output as it was."""
    step = REGISTRY[name]
    inputs, config = processed["inputs"], processed["config"]
    with h5py.File(inputs.output_path) as h5:
        assert [p for p in validate(h5, REGISTRY) if p.startswith(name)] == []
    assert run_step(name, inputs, config)["status"] == "up-to-date"

    copy = copy_output(processed, tmp_path)
    changed = dataclasses.replace(config, step_params={name: params_json(changed_params(step))})
    result = statuses(run_recording(copy, changed))
    rerun = {s for s, status in result.items() if status == "done"}
    assert rerun == {name, *REGISTRY.dependents(name)}

    copy = copy_output(processed, tmp_path / "failing")
    before = OutputFile(copy.output_path).verified_records()
    broken = dataclasses.replace(step, run=_write_then_fail)
    REGISTRY.replace(broken)
    try:
        with pytest.raises(StepFailed, match="boom"):
            run_step(name, copy, config, force=True)
    finally:
        REGISTRY.replace(step)
    after = OutputFile(copy.output_path).verified_records()
    assert {k: r.output_digest for k, r in after.items()} == {k: r.output_digest for k, r in before.items()}
    assert OutputFile(copy.output_path).step_states()[name].startswith("failed: RuntimeError: boom")


def _write_then_fail(ctx, params):
    ctx.tx.write("metadata/half_written", 1.0)
    raise RuntimeError("boom")


@dataclass(frozen=True)
class ToyParams:
    scale: float = 2.0


def _toy_run(ctx, p: ToyParams) -> dict:
    units = load_recording.unit_ids(ctx)
    ctx.tx.write("metadata/toy/n_units_scaled", p.scale * len(units))
    return {"n_units": len(units)}


TOY = Step(name="toy_count", position=99, upstream=("load_recording",), reads=frozenset(), params=ToyParams,
           version="1", run=_toy_run, outputs=(Out("metadata/toy/{field}", "f", 0, "toy output"),),
           description="A toy step registered at run time")


@pytest.fixture
def toy_step():
    REGISTRY.register(TOY)
    yield TOY
    REGISTRY.unregister(TOY.name)


def test_toy_step_registered_at_run_time_runs_caches_reruns_and_is_in_the_schema(processed, tmp_path, toy_step):
    config = processed["config"]
    copy = copy_output(processed, tmp_path)
    assert statuses(run_recording(copy, config, steps="toy_count")) == {"toy_count": "done"}
    assert statuses(run_recording(copy, config, steps="toy_count")) == {"toy_count": "up-to-date"}
    changed = dataclasses.replace(config, step_params={"toy_count": {"scale": 3.0}})
    assert statuses(run_recording(copy, changed, steps="toy_count")) == {"toy_count": "done"}
    assert f"## Step {REGISTRY.number('toy_count')}: toy_count" in render_markdown(REGISTRY)
    with h5py.File(copy.output_path) as h5:
        assert h5["metadata/toy/n_units_scaled"][()] == 3.0 * len(h5["units"])
        assert validate(h5, REGISTRY) == []


def test_toy_step_runs_as_a_prefect_task(processed, tmp_path, toy_step, prefect_server):
    from mea_pipeline.flows.process_recording import process_recording

    copy = copy_output(processed, tmp_path)
    state = process_recording(copy, processed["config"], steps="toy_count", return_state=True)
    assert state.is_completed(), state.message
    assert "toy_count" in state.result()["completed_steps"]


def test_a_reader_refuses_an_undeclared_upstream(processed, tmp_path):
    def sneaky(ctx, params):
        load_recording.unit_ids(ctx)
        return {}

    step = Step(name="sneaky", position=98, upstream=(), reads=frozenset(), params=ToyParams, version="1",
                run=sneaky, outputs=(), description="reads step 1 without declaring it")
    REGISTRY.register(step)
    try:
        with pytest.raises(StepFailed, match="does not declare 'load_recording'") as failure:
            run_step("sneaky", copy_output(processed, tmp_path), processed["config"])
    finally:
        REGISTRY.unregister("sneaky")
    assert isinstance(failure.value.__cause__, UndeclaredUpstream)


def test_unknown_input_is_an_error_at_declaration():
    with pytest.raises(ValueError, match="unknown input"):
        Step(name="x", position=97, upstream=(), reads=frozenset({"crystal_ball"}), params=ToyParams, version="1",
             run=_toy_run, outputs=(), description="")


def test_changing_each_input_changes_exactly_the_keys_of_the_steps_that_read_it(processed, tmp_path):
    """Every declared input enters the cache key: edit one, and only its readers' keys change."""
    inputs, config = processed["inputs"], processed["config"]
    records = OutputFile(inputs.output_path).verified_records()
    stimuli = tmp_path / "stimuli"
    shutil.copytree(config.stimuli, stimuli)
    cmtr = tmp_path / inputs.cmtr_path.name
    shutil.copy(inputs.cmtr_path, cmtr)
    base = config.with_inputs(stimuli=stimuli)
    rec = dataclasses.replace(inputs, cmtr_path=cmtr)

    def keys(c, r):
        return {s.name: plan_step(s, r, c, records).cache_key for s in REGISTRY}

    before = keys(base, rec)
    (stimuli / "playlist.csv").write_text((stimuli / "playlist.csv").read_text() + "\n")
    after = keys(base, rec)
    assert {n for n in before if before[n] != after[n]} == {s.name for s in REGISTRY if "stimuli" in s.reads}
    with cmtr.open("r+b") as handle:  # a re-sorted .cmtr: same size, new header bytes
        handle.seek(200)
        handle.write(b"\x01")
    again = keys(base, rec)
    assert {n for n in after if after[n] != again[n]} == {s.name for s in REGISTRY if "cmtr" in s.reads}

    labels = tmp_path / "labels"
    shutil.copytree(config.labels, labels)
    with_labels = base.with_inputs(labels=labels)
    before = keys(with_labels, rec)
    (labels / inputs.recording_id / "AC" / f"{inputs.recording_id}_unit999.png").write_bytes(b"png")
    after = keys(with_labels, rec)
    assert {n for n in before if before[n] != after[n]} == {s.name for s in REGISTRY if "labels" in s.reads}

    sheet = tmp_path / "sheet.csv"
    table = pd.read_csv(config.gsheet_csv, dtype=str, keep_default_na=False)
    with_sheet = base.with_inputs(gsheet_csv=sheet)
    table.to_csv(sheet, index=False)
    before = keys(with_sheet, rec)
    mine = table["File_name"] == canonical_file_name(inputs.recording_id)
    table.loc[~mine, "Note"] = "another recording's row edited"
    table.to_csv(sheet, index=False)
    assert keys(with_sheet, rec) == before
    table.loc[mine, "Note"] = "this recording's row edited"
    table.to_csv(sheet, index=False)
    after = keys(with_sheet, rec)
    assert {n for n in before if before[n] != after[n]} == {s.name for s in REGISTRY if "sheet" in s.reads}


def test_every_declared_output_is_marked_and_every_angle_names_its_frame():
    """The lab-key contract in the declarations: lab, lab-fixed (with its reason) or ours for every
    key; a frame for every angle."""
    declared = all_outputs(REGISTRY)
    assert [out.path for out in declared if out.origin not in (LAB, FIXED, OURS)] == []
    assert [out.path for out in declared if out.origin == FIXED and not out.fixed] == []
    assert [out.path for out in declared if out.units in ("deg", "rad") and not out.frame] == []
    assert "UNMARKED" not in render_markdown(REGISTRY)
