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


def test_every_step_gets_its_task_from_the_declaration():
    from mea_pipeline.tasks.steps import step_task

    for step in REGISTRY:
        assert step_task(step.name).name == step.name
        assert step_task(step.name) is step_task(step.name)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                package = _module_name(path).rsplit(".", node.level)[0]
                names.add(f"{package}.{node.module}" if node.module else package)
            else:
                names.add(node.module or "")
    return names


LAYERS = {"src/mea_pipeline": 0, "tasks": 1, "flows": 2, "deployments": 3, "cli": 4}
PACKAGES = {"mea_pipeline.tasks": 1, "mea_pipeline.flows": 2, "mea_pipeline.deployments": 3, "mea_pipeline.cli": 4}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    if rel.parts[0] == "src":
        rel = rel.relative_to("src")
    else:
        rel = Path("mea_pipeline") / rel
    return ".".join(rel.with_suffix("").parts).removesuffix(".__init__")


def _layer(module: str) -> int | None:
    for package, layer in PACKAGES.items():
        if module == package or module.startswith(package + "."):
            return layer
    return 0 if module == "mea_pipeline" or module.startswith("mea_pipeline.") else None


def test_imports_go_one_way_library_tasks_flows_deployments_cli():
    """library <- tasks <- flows <- deployments <- cli: no module imports a layer above its own."""
    offenders = []
    for folder, layer in LAYERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            for name in _imports(path):
                target = _layer(name)
                if target is not None and target > layer:
                    offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_orchestration_installs_under_the_project_namespace(tmp_path):
    """Installed, the layers are mea_pipeline.*; no bare `tasks`/`flows` package is put on the path."""
    import subprocess
    import sys

    code = ("import importlib.util as u, sys; "
            "assert u.find_spec('mea_pipeline.flows.batch_all_steps'); "
            "print([n for n in ('tasks', 'flows', 'deployments', 'cli') if u.find_spec(n)])")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
