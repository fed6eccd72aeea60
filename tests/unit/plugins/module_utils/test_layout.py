"""The engine's layout rules (docs/architecture.md), checked on the source so that they hold for later work too:
only packages under plugins/module_utils, no engine file over 350 lines, SQL composed only in catalog and render
files, and reads (Database.query / query_value) sent only from catalog files."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[4] / "plugins"
MODULE_UTILS = PLUGINS / "module_utils"
ENGINE_FILES = sorted(list(MODULE_UTILS.rglob("*.py")) + list((PLUGINS / "plugin_utils").rglob("*.py")))
MAX_LINES = 350
SQL_FILES = ("catalog.py", "render.py")
SQL_COMPOSERS = ("SQL", "Identifier", "Literal", "Composed", "Placeholder")
READS = ("query", "query_value")
DATABASE_API = MODULE_UTILS / "_db" / "connection.py"  # defines the reads: query_value calls query
# A string that starts like a statement: a keyword in capitals, then a space or the end.
STATEMENT = re.compile(r"^\s*(SELECT|WITH|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|SET|RESET|SHOW|BEGIN|COMMIT|"
                       r"ROLLBACK|LOCK|COMMENT|GRANT|REVOKE|ANALYZE|VACUUM|REINDEX|TRUNCATE|COPY)(\s|$)")


def relative(path: Path) -> str:
    return str(path.relative_to(PLUGINS.parent)) if path.is_relative_to(PLUGINS.parent) else str(path)


def docstrings(tree: ast.AST) -> set:
    """The string constants that are docstrings (prose, not SQL)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def violations(path: Path) -> list[str]:
    """Where `path` composes SQL or sends a read though it may not."""
    tree = ast.parse(path.read_text(), str(path))
    may_compose = path.name in SQL_FILES
    may_read = path.name == "catalog.py" or path == DATABASE_API
    prose = docstrings(tree)
    found = []
    for node in ast.walk(tree):
        where = "%s:%s" % (relative(path), getattr(node, "lineno", "?"))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value
            if not may_compose and node.func.attr in SQL_COMPOSERS and isinstance(target, ast.Name) \
                    and target.id == "sql":
                found.append("%s composes SQL (sql.%s)" % (where, node.func.attr))
            if not may_read and node.func.attr in READS:
                found.append("%s sends a read (.%s)" % (where, node.func.attr))
        if not may_compose and isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in prose and STATEMENT.match(node.value):
            found.append("%s holds SQL text %r" % (where, node.value[:40]))
    return found


def test_nothing_but_packages_directly_under_module_utils():
    loose = [entry.name for entry in MODULE_UTILS.iterdir()
             if entry.name != "__pycache__" and not (entry.is_dir() and (entry / "__init__.py").is_file())]
    assert loose == [], "only feature packages belong directly under plugins/module_utils"


@pytest.mark.parametrize("path", ENGINE_FILES, ids=relative)
def test_no_engine_file_is_longer_than_350_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, "%s has %d lines; split it by concern" % (relative(path), lines)


@pytest.mark.parametrize("path", ENGINE_FILES, ids=relative)
def test_sql_lives_in_catalog_and_render_files_only(path):
    assert violations(path) == []


@pytest.mark.parametrize("source, expected", [
    pytest.param('x = "SELECT 1"\n', ["holds SQL text"], id="a SELECT string outside catalog and render"),
    pytest.param('x = sql.SQL("{}").format(y)\n', ["composes SQL (sql.SQL)"], id="sql.SQL outside render"),
    pytest.param("rows = database.query(statement)\n", ["sends a read (.query)"], id="a read outside catalog"),
    pytest.param('def f():\n    """SELECT in a docstring is prose."""\n', [], id="a docstring is not SQL"),
    pytest.param('message = "Select a table"\n', [], id="a sentence is not SQL"),
])
def test_the_rule_catches_what_it_is_meant_to(tmp_path, source, expected):
    path = tmp_path / "execute.py"
    path.write_text(source)
    found = violations(path)
    assert len(found) == len(expected) and all(want in text for want, text in zip(expected, found)), found
