"""docs/architecture.md's import list is the code's: every arrow an import, none upward."""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "runbook"
# Packages the map shows as one unit: their modules are an inside matter.
UNITS = ("render", "shell")


def module_name(path: Path) -> str:
    """Return ``runbook.x.y`` for a file of the package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> Iterator[str]:
    """Yield every runbook module ``path`` imports: at top level, in functions, for types."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            yield target
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if (ROOT / sub.replace(".", "/")).with_suffix(".py").exists() or (
                    ROOT / sub.replace(".", "/")
                ).is_dir():
                    yield sub  # ``from runbook.execution import plan`` imports the module


def graph(collapse: bool) -> dict[str, set[str]]:
    """Return module → runbook modules it imports (``runbook.`` left out)."""

    def unit(name: str) -> str:
        parts = name.split(".")[1:]
        if collapse and parts and parts[0] in UNITS:
            return parts[0]
        return ".".join(parts)

    edges: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = unit(module_name(path))
        if not source:
            assert not list(imported(path)), "runbook/__init__.py stays free of imports"
            continue
        targets = edges.setdefault(source, set())
        for name in imported(path):
            if name.split(".")[0] != "runbook":
                continue
            target = unit(name)
            # A module importing its own package (or the package its own module) is inside.
            if target and target != source and not source.startswith(target + "."):
                targets.add(target)
    return edges


def documented() -> list[tuple[str, set[str]]]:
    """Return the import list of docs/architecture.md, top to bottom."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = text.split("```text\n", 1)[1].split("```", 1)[0]
    entries: list[tuple[str, set[str]]] = []
    for line in block.splitlines():
        head, arrow, rest = line.partition("→")
        if arrow:
            entries.append((head.strip(), set()))
        else:
            rest = line  # a continuation of the line above
        entries[-1][1].update(t.strip() for t in rest.split(",") if t.strip())
    return entries


def test_every_module_is_on_the_map() -> None:
    names = [name for name, _ in documented()]
    assert len(names) == len(set(names))
    assert set(names) == set(graph(collapse=True))


@pytest.mark.parametrize("name", sorted(graph(collapse=True)))
def test_every_arrow_is_an_import(name: str) -> None:
    assert dict(documented())[name] == graph(collapse=True)[name]


def test_nothing_imports_back_up() -> None:
    order = [name for name, _ in documented()]
    for name, targets in documented():
        above = [t for t in targets if order.index(t) < order.index(name)]
        assert not above, f"{name} imports {above}, listed above it"


def test_no_cycles_inside_packages() -> None:
    """Inside ``render`` and ``shell`` too, modules import one way only."""
    graphlib.TopologicalSorter(graph(collapse=False)).prepare()  # raises CycleError


def test_plugin_never_reaches_execution() -> None:
    edges = graph(collapse=True)
    reached, todo = set(), ["mkdocs_plugin"]
    while todo:
        for target in edges[todo.pop()] - reached:
            reached.add(target)
            todo.append(target)
    assert not {r for r in reached if r.startswith("execution") or r == "shell"}
