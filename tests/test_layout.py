"""Project layout rules: the science library never imports Prefect; the schema doc is current."""

import ast
from pathlib import Path

from mea_pipeline.schema import render_markdown
from mea_pipeline.steps import REGISTRY

ROOT = Path(__file__).resolve().parents[1]


def test_library_has_no_prefect_import():
    offenders = []
    for path in (ROOT / "src" / "mea_pipeline").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path}: {n}" for n in names if n.split(".")[0] in ("prefect", "tasks", "flows")]
    assert offenders == []


def test_schema_document_is_generated_from_the_declarations():
    assert (ROOT / "docs" / "output_schema.md").read_text() == render_markdown(REGISTRY)


def test_every_step_has_one_task_and_one_flow_line():
    import tasks.steps

    flow_source = (ROOT / "flows" / "process_recording.py").read_text()
    for step in REGISTRY:
        assert getattr(tasks.steps, step.name).name == step.name
        assert flow_source.count(f"run({step.name})") == 1
