"""plan_batch: what a batch does with each selected row, decided without Prefect (a temp CSV, temp outputs)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import pandas as pd
import pytest

from mea_pipeline.batch_options import BatchOptions
from mea_pipeline.batch_plan import DUPLICATE, RUN, SKIP, plan_batch
from mea_pipeline.config import PipelineConfig
from mea_pipeline.errors import InputError
from mea_pipeline.runner import run_step
from mea_pipeline.steps import REGISTRY
from mea_pipeline.steps.registry import Registry
from mea_pipeline.store import OutputFile

IDS = ["2024.01.01-10.00.00-Rec", "2024.01.02-10.00.00-Rec", "2024.01.03-10.00.00-Rec"]


@dataclass(frozen=True)
class ToyParams:
    scale: float = 1.0


# A step that reads no input: its output is complete without raw files.
TOY = dataclasses.replace(REGISTRY.steps[0], name="toy", upstream=(), reads=frozenset(), params=ToyParams,
                          version="1", run=lambda ctx, params: {}, outputs=())
TOYS = Registry([TOY])


@pytest.fixture
def batch(tmp_path):
    """A mapping CSV of three recordings (the first named twice) and its output folder."""
    rows = [IDS[0], IDS[1], IDS[0], IDS[2]]
    csv = tmp_path / "mapping.csv"
    pd.DataFrame({"cmcr_path": [f"/raw/{rid}.cmcr" for rid in rows], "cmtr_path": [f"/raw/{rid}-.cmtr" for rid in rows],
                  "matched": ["True"] * len(rows)}).to_csv(csv, index=False)
    output = tmp_path / "out"
    output.mkdir()
    return {"csv": str(csv), "output": output, "config": PipelineConfig()}


def plan(batch, config=None, **options):
    return plan_batch(BatchOptions(csv=batch["csv"], output=str(batch["output"]), **options),
                      config or batch["config"], registry=TOYS)


def actions(plan) -> list[tuple[str, str, str]]:
    return [(d.recording.recording_id, d.action, d.reason) for d in plan.decisions]


def complete(batch, rid, config=None):
    """Give ``rid`` a complete output (the toy step done with ``config``)."""
    from mea_pipeline.mapping import recordings

    recording = next(r for r in recordings(batch["csv"], batch["output"]) if r.recording_id == rid)
    run_step("toy", recording, config or batch["config"], TOYS)
    return recording


def test_each_row_is_run_skipped_or_a_duplicate_with_its_reason(batch):
    complete(batch, IDS[1])
    complete(batch, IDS[2], PipelineConfig(step_params={"toy": {"scale": 2.0}}))  # other parameters
    result = plan(batch)
    assert actions(result) == [
        (IDS[0], RUN, "no output yet"),
        (IDS[1], SKIP, "output complete"),
        (IDS[0], DUPLICATE, "named again by the mapping CSV; it runs once"),
        (IDS[2], RUN, "output incomplete"),
    ]
    assert result.steps == ("toy",)
    assert [r.recording_id for r in result.to_run] == [IDS[0], IDS[2]]
    # Pre-flight checks what runs, and the repeated row of it (so it can say the recording is named twice).
    assert [r.recording_id for r in result.preflight_rows] == [IDS[0], IDS[0], IDS[2]]


def test_a_duplicate_of_a_skipped_recording_is_not_checked(batch):
    complete(batch, IDS[0])
    result = plan(batch)
    assert [a for _, a, _ in actions(result)] == [SKIP, RUN, DUPLICATE, RUN]
    assert [r.recording_id for r in result.preflight_rows] == [IDS[1], IDS[2]]


@pytest.mark.parametrize("flag, reason", [("overwrite", "--overwrite: every selected step is recomputed"),
                                          ("recheck", "--recheck: steps whose inputs changed rerun")])
def test_overwrite_and_recheck_run_complete_outputs(batch, flag, reason):
    for rid in IDS:
        complete(batch, rid)
    assert actions(plan(batch, **{flag: True})) == [
        (IDS[0], RUN, reason), (IDS[1], RUN, reason), (IDS[0], DUPLICATE, "named again by the mapping CSV; it runs once"),
        (IDS[2], RUN, reason)]


def test_rows_ids_and_failed_narrow_the_selection(batch):
    assert [rid for rid, _, _ in actions(plan(batch, start=1, end=3))] == [IDS[1], IDS[0]]
    assert [rid for rid, _, _ in actions(plan(batch, recording_ids=(IDS[2],)))] == [IDS[2]]
    recording = complete(batch, IDS[1])
    OutputFile(recording.output_path).record_failure("toy", "ValueError: boom")
    assert actions(plan(batch, only_failed=True)) == [(IDS[1], RUN, "output incomplete")]


def test_a_scan_result_replaces_the_csv(batch, tmp_path):
    scanned = tmp_path / "scan.csv"
    pd.read_csv(batch["csv"]).iloc[[3]].to_csv(scanned, index=False)
    result = plan_batch(BatchOptions(scan_roots=("/data",), output=str(batch["output"])), batch["config"], scanned,
                        registry=TOYS)
    assert actions(result) == [(IDS[2], RUN, "no output yet")]


def test_a_selection_of_no_rows_is_an_error(batch):
    with pytest.raises(InputError, match="selects none"):
        plan(batch, start=7)


def test_the_guard_looks_again_only_at_an_output_written_since_the_plan(batch):
    complete(batch, IDS[2])
    decisions = {d.recording.recording_id: d for d in plan(batch).decisions}
    assert not decisions[IDS[2]].output_changed() and not decisions[IDS[0]].output_changed()
    complete(batch, IDS[0])  # another run wrote it after the plan
    os.utime(decisions[IDS[2]].recording.output_path, ns=(0, 0))  # or edited it
    assert decisions[IDS[0]].output_changed() and decisions[IDS[2]].output_changed()
