"""Keep the lessons' ``#@save`` cells and the package identical (maintainer tool, after d2l's ``#@save``).

A lesson writes out the code of its own idea in a cell a learner can edit and rerun; later lessons
import the same code from the package. A code cell whose first line is ``#@save toxhelpers.<module>``
holds definitions only (imports, functions, classes, constants); each of them must appear, with the
same text, at the top level of that module. The notebook is the source:

    python tools/saved_cells.py            # check: list every definition that differs (exit 1)
    python tools/saved_cells.py --write    # copy the lessons' definitions into the package

``tests/unit/test_saved_cells.py`` runs the check, so a lesson and its package copy cannot drift.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^#@save\s+(toxhelpers(?:\.\w+)+)\s*(?:#.*)?$")
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)
ALLOWED = (*DEFINITIONS, ast.Import, ast.ImportFrom)


@dataclass(frozen=True)
class Definition:
    """One top-level definition of a ``#@save`` cell: its name, its exact text and where it lives."""

    notebook: str
    module: str
    name: str
    text: str


def cell_source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _plain_name(node: ast.stmt) -> str | None:
    """The one name a definition binds (None for an assignment to several names or an attribute)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return targets[0].id if len(targets) == 1 and isinstance(targets[0], ast.Name) else None


def _name(node: ast.stmt) -> str:
    name = _plain_name(node)
    if name is None:
        raise ValueError(f"line {node.lineno}: a saved assignment must bind one plain name")
    return name


def _segment(source: str, node: ast.stmt) -> str:
    """The node's text with its decorators, exactly as written."""
    lines = source.splitlines()
    first = min([node.lineno, *(decorator.lineno for decorator in getattr(node, "decorator_list", []))])
    return "\n".join(lines[first - 1:node.end_lineno])


def saved_definitions(notebook: Path) -> list[Definition]:
    """Every definition of the notebook's ``#@save`` cells (an error names a cell holding anything else)."""
    found = []
    for index, cell in enumerate(json.loads(notebook.read_text(encoding="utf-8"))["cells"]):
        source = cell_source(cell)
        match = MARKER.match(source.split("\n", 1)[0]) if cell["cell_type"] == "code" else None
        if not match:
            continue
        for node in ast.parse(source).body:
            where = f"{notebook.name}, cell {index} ({cell.get('id')})"
            if not isinstance(node, ALLOWED):
                raise ValueError(f"{where}: line {node.lineno} is not a definition; a #@save cell holds imports, "
                                 "functions, classes and constants only (show their use in the next cell)")
            if isinstance(node, DEFINITIONS):
                found.append(Definition(notebook.name, match.group(1), _name(node), _segment(source, node)))
    return found


def module_path(module: str) -> Path:
    return ROOT / (module.replace(".", "/") + ".py")


def module_definitions(path: Path) -> dict[str, tuple[ast.stmt, str]]:
    """The module's top-level definitions by name, each with its exact text."""
    source = path.read_text(encoding="utf-8")
    return {_plain_name(node): (node, _segment(source, node)) for node in ast.parse(source).body
            if isinstance(node, DEFINITIONS) and _plain_name(node) is not None}


def differences(notebooks: list[Path]) -> list[str]:
    """One line per saved definition whose package copy is missing or differs."""
    problems = []
    for definition in (item for notebook in notebooks for item in saved_definitions(notebook)):
        path = module_path(definition.module)
        if not path.is_file():
            problems.append(f"{definition.notebook}: {definition.module} does not exist ({path})")
            continue
        found = module_definitions(path).get(definition.name)
        if found is None:
            problems.append(f"{definition.notebook}: {definition.name} is not defined at the top of {definition.module}")
        elif found[1] != definition.text:
            problems.append(f"{definition.notebook}: {definition.name} differs from its copy in {definition.module}")
    return problems


def write(notebooks: list[Path]) -> list[str]:
    """Copy each saved definition into its module (replacing the old text, or appending); returns what changed."""
    changed = []
    for definition in (item for notebook in notebooks for item in saved_definitions(notebook)):
        path = module_path(definition.module)
        source = path.read_text(encoding="utf-8")
        found = module_definitions(path).get(definition.name)
        if found is None:
            source = source.rstrip("\n") + "\n\n\n" + definition.text + "\n"
        elif found[1] != definition.text:
            node, _ = found
            lines = source.splitlines(keepends=True)
            first = min([node.lineno, *(decorator.lineno for decorator in getattr(node, "decorator_list", []))])
            source = "".join(lines[:first - 1]) + definition.text + "\n" + "".join(lines[node.end_lineno:])
        else:
            continue
        path.write_text(source, encoding="utf-8")
        changed.append(f"{definition.module}.{definition.name} <- {definition.notebook}")
    return changed


def lesson_notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="copy the lessons' definitions into the package")
    args = parser.parse_args(argv)
    notebooks = lesson_notebooks()
    if args.write:
        for line in write(notebooks):
            print(line)
        return 0
    problems = differences(notebooks)
    for line in problems:
        print(line)
    print(f"{len(problems)} difference(s)" if problems else "every #@save definition matches the package")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
