"""Imports point down: no module imports from a higher layer than its own, in the order of
docs/architecture.md's package table (read from the document, so the two cannot drift)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "hetmap"
# inside the "stages" level: the evaluation package is used by training and search, never
# the other way round (stage 3 ranks mappings exactly as the search does)
SAME_LEVEL_FORBIDDEN = {"evaluation": {"training", "search"}}


def layer_order() -> dict[str, int]:
    """package -> level index (0 = face, highest) from the architecture document."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    table = text.split("## Packages", 1)[1].split("\n\n", 2)[1]
    levels: dict[str, int] = {}
    index = -1
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0]:
            index += 1
        for name in re.findall(r"`([a-z_]+)`", cells[1]):
            levels[name] = index
    return levels


def imports_of(path: Path) -> list[str]:
    """Every absolute hetmap import of a module, function-level ones included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return [n for n in out if n == "hetmap" or n.startswith("hetmap.")]


def violations() -> list[str]:
    levels = layer_order()
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        own = rel.parts[0].removesuffix(".py")
        if own in ("__init__", "__main__"):
            continue  # the package's face: it may import everything
        assert own in levels, f"{rel}: package {own!r} is not in docs/architecture.md's table"
        for name in imports_of(path):
            target = name.split(".")[1] if "." in name else None
            if target is None:
                bad.append(f"{rel}: imports the package root `hetmap` (import the module)")
            elif target in levels and levels[target] < levels[own]:
                bad.append(f"{rel}: imports {name} from a higher layer")
            elif target in SAME_LEVEL_FORBIDDEN.get(own, ()):
                bad.append(f"{rel}: imports {name} ({own} must not use {target})")
    return bad


def test_the_document_lists_every_package() -> None:
    levels = layer_order()
    assert len(set(levels.values())) == 5  # face, stages, model, core, base
    assert {"cli", "evaluation", "supernet", "candidates", "errors", "_version"} <= set(levels)


def test_no_module_imports_from_a_higher_layer() -> None:
    assert violations() == []


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from hetmap.pipeline import run\n    import hetmap\n")
    assert imports_of(bad) == ["hetmap.pipeline", "hetmap"]


def test_the_version_module_is_a_leaf() -> None:
    # rundir and export read the version from it: it must import nothing of hetmap's
    assert imports_of(PACKAGE / "_version.py") == []
