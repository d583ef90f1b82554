"""docs/reliability.md and the tests agree: every row names a test that exists and records that row."""

from __future__ import annotations

import ast
import re
from pathlib import Path

HERE = Path(__file__).parent
DOC = HERE.parents[1] / "docs" / "reliability.md"
ROW = re.compile(r"^\| (R\d\d) \|.*\| `(test_\w+\.py)::(test_\w+)` \|$", re.MULTILINE)


def recorded_rows(path: Path) -> set[str]:
    """Row IDs a test module names as string constants ("R07")."""
    tree = ast.parse(path.read_text())
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"R\d\d", node.value)}


def test_every_row_of_the_matrix_names_a_test_that_records_it():
    rows = ROW.findall(DOC.read_text())
    assert len(rows) >= 40
    assert len({row for row, _, _ in rows}) == len(rows), "a row ID is used twice"
    for row, module, function in rows:
        source = HERE / module
        assert source.is_file(), f"{row}: no {module}"
        functions = {node.name for node in ast.walk(ast.parse(source.read_text())) if isinstance(node, ast.FunctionDef)}
        assert function in functions, f"{row}: {module} has no {function}"
        assert row in recorded_rows(source), f"{row}: {module} never records it"
    documented = {row for row, _, _ in rows}
    in_tests = set().union(*(recorded_rows(path) for path in HERE.glob("test_*.py")))
    assert in_tests == documented, f"rows only in the tests: {in_tests - documented}; only in the doc: " \
                                   f"{documented - in_tests}"
