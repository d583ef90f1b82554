"""Project layout rules: the science library never imports Prefect; imports go one way and form no
circle; the schema doc is current and describes every step parameter."""

import ast
import dataclasses
from pathlib import Path

from mea_pipeline.params_reference import field_docs, parameter_rows
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


def test_every_step_parameter_is_described():
    undescribed = [f"{row['step']}.{row['name']}" for row in parameter_rows(REGISTRY) if not row["doc"]]
    assert undescribed == [], "add them to the Attributes section of the step's Params docstring"


def test_params_docstrings_describe_only_their_fields():
    """A docstring entry naming no field is a typo, or a description line read as an entry."""
    strays = [f"{step.name}.{name}" for step in REGISTRY
              for name in set(field_docs(step.params)) - {f.name for f in dataclasses.fields(step.params)}]
    assert strays == []


def test_field_docs_reads_the_attributes_section():
    @dataclasses.dataclass
    class Base:
        """Base.

        Attributes
        ----------
        a : int
            Inherited: its text
            goes on.
        """

        a: int = 0

    @dataclasses.dataclass
    class Child(Base):
        """Child.

        Attributes
        ----------
        b, c : float
            Both: one text.

        Notes
        -----
        d : int
            Not a field.
        """

        b: float = 0.0
        c: float = 0.0

    assert field_docs(Child) == {"a": "Inherited: its text goes on.", "b": "Both: one text.", "c": "Both: one text."}


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



def _runtime_imports(path: Path, modules: set[str]) -> set[str]:
    """The project ``modules`` that ``path`` imports at run time: every import statement, those in
    functions too (an import moved into a function is no way around a circle), but not those under
    ``if TYPE_CHECKING:`` (annotations only).

    ``from package import name`` imports module ``package.name`` when there is one, else ``package``.
    """
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets, pending = set(), [ast.parse(path.read_text())]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            targets |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
        elif isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            pending += node.orelse
        else:
            pending += ast.iter_child_nodes(node)
    return (targets & modules) - {module}


def _import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None (depth-first search, colouring nodes)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_circle_between_project_modules():
    """Imports between the project's modules (library, tasks, flows, deployments, cli) form no
    circle: every module can be read knowing only the modules below it."""
    paths = {_module_name(path): path for folder in LAYERS for path in (ROOT / folder).rglob("*.py")}
    graph = {module: _runtime_imports(path, set(paths)) for module, path in paths.items()}
    assert _import_cycle(graph) is None, " -> ".join(_import_cycle(graph))


def test_the_circle_finder_finds_a_circle():
    assert _import_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _import_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_every_package_is_installed():
    """pyproject's package list names every package, so a wheel (not only an editable install) is whole."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    layers = {"tasks": "mea_pipeline.tasks", "flows": "mea_pipeline.flows", "deployments": "mea_pipeline.deployments",
              "cli": "mea_pipeline.cli"}
    found = {"mea_pipeline." + ".".join(p.parent.relative_to(ROOT / "src" / "mea_pipeline").parts)
             for p in (ROOT / "src" / "mea_pipeline").rglob("__init__.py")}
    found = {name.rstrip(".") for name in found}
    found |= {name for folder, name in layers.items() if (ROOT / folder / "__init__.py").exists()}
    assert found - listed == set()
