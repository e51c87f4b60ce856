"""tests/fixtures/ holds pytest plugins only (each listed in tests/conftest.py); everything
tests import by name lives in tests/support/, which never imports the plugins."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO_ROOT = TESTS.parent
HOOK_PREFIX = "pytest_"


def _plugins() -> list[str]:
    tree = ast.parse((TESTS / "conftest.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in node.targets
        ):
            return [str(name) for name in ast.literal_eval(node.value)]
    raise AssertionError("tests/conftest.py has no pytest_plugins")


def _is_fixture(node: ast.AST) -> bool:
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    if node.name.startswith(HOOK_PREFIX):
        return True
    for dec in node.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(target, ast.Attribute) and target.attr == "fixture":
            return True
    return False


def _imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_every_fixtures_module_is_a_listed_plugin_with_fixtures_or_hooks() -> None:
    plugins = set(_plugins())
    for path in sorted((TESTS / "fixtures").glob("*.py")):
        if path.name == "__init__.py":
            continue
        assert f"fixtures.{path.stem}" in plugins, f"{path.name} is not in pytest_plugins"
        tree = ast.parse(path.read_text())
        assert any(_is_fixture(n) for n in tree.body), f"{path.name} defines no fixture or hook"


def test_tests_import_helpers_from_support_not_from_the_plugins() -> None:
    offenders = []
    for root in (TESTS, REPO_ROOT / "tools" / "exchange-sim" / "tests"):
        for path in sorted(root.rglob("*.py")):
            if TESTS / "fixtures" in path.parents:
                continue
            imported = _imported_modules(path)
            if any(m == "fixtures" or m.startswith("fixtures.") for m in imported):
                offenders.append(str(path.relative_to(REPO_ROOT)))
    assert offenders == []


def test_test_file_names_are_unique_across_the_test_folders() -> None:
    """Test folders are not packages: pytest imports each test file by its base name, so a
    second file of the same name anywhere stops the whole collection."""
    roots = (TESTS, REPO_ROOT / "tools" / "exchange-sim" / "tests")
    seen: dict[str, Path] = {}
    for root in roots:
        for path in sorted(root.rglob("test_*.py")):
            assert path.name not in seen, f"{path} and {seen[path.name]} share a name"
            seen[path.name] = path
