"""Which of the package's code a notebook can run, and its hash: part of a notebook's resume key
(:mod:`toxhelpers.run.resume`). A notebook's hash covers the toxhelpers modules its code cells
import, transitively, with the ``__init__`` files and the data shipped in the package; the run
tooling (this ``run`` package, the run profiles, ``__main__.py``) is never part of it.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # toxhelpers/
TOOLING_FOLDERS = {Path(__file__).resolve().parent.name, "profiles"}  # "run": this package; the run profiles
TOOLING_FILES = {"__main__.py"}  # the command line's entry point


def is_tooling(relative: Path) -> bool:
    """A file of the run tooling (``run/``, ``profiles/``, ``__main__.py``), as opposed to lesson
    code and the data shipped with it."""
    return relative.parts[0] in TOOLING_FOLDERS or relative.as_posix() in TOOLING_FILES


def code_hash(notebook: Path | None = None) -> str:
    """Hash of the package code a notebook can use. With ``notebook``: the toxhelpers modules its
    code cells import and, transitively, the modules those import (:func:`reachable_modules`), with
    the package's ``__init__`` files and all the data shipped with it (lesson 9's templates, the
    demo set: data files count as much as code; an edited ``bias_templates/words.csv.gz`` used to
    leave lesson 9 reused). So editing lesson 12's ``keras3.py`` leaves lessons 1-11 reused: at
    Kaggle's size they are hours of work. Without ``notebook``: every module (the report's
    ``toxhelpers_sha256``). The run tooling is left out of both."""
    digest = hashlib.sha256()
    files = package_files() if notebook is None else reachable_files(notebook)
    for path in sorted(files):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def package_files() -> list[Path]:
    """Every file of the package but the run tooling's and Python's caches."""
    return [path for path in PACKAGE_DIR.rglob("*")
            if path.is_file() and not is_tooling(path.relative_to(PACKAGE_DIR))
            and "__pycache__" not in path.parts and path.suffix != ".pyc"]


def reachable_files(notebook: Path) -> set[Path]:
    """The files :func:`code_hash` reads for ``notebook``: every package file that is not a
    module, every ``__init__.py``, and the modules the notebook reaches. All of them when a code
    cell cannot be parsed or imports bare ``toxhelpers`` (its attributes could be any module)."""
    names = imported_names("\n".join(code_cell_sources(notebook)))
    if names is None or "toxhelpers" in names:
        return set(package_files())
    files = set(package_files())
    modules = {path for path in files if path.suffix == ".py" and path.name != "__init__.py"}
    return (files - modules) | reachable_modules(names)


def code_cell_sources(notebook: Path) -> list[str]:
    """A notebook's code cells, IPython's ``%magic`` and ``!shell`` lines blanked."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    sources = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    return ["\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
            for source in sources]


def imported_names(source: str, package: str = "") -> set[str] | None:
    """Dotted names of the toxhelpers modules (or their attributes) ``source`` imports anywhere, a
    function's own imports included; relative imports are read from ``package``. ``toxhelpers``
    itself only for a bare ``import toxhelpers``. None if the source does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            if base != "toxhelpers":  # "from toxhelpers import data" names the module data, not the package
                names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in names if name == "toxhelpers" or name.startswith("toxhelpers.")}


def reachable_modules(names: set[str]) -> set[Path]:
    """The module files of ``names`` (a name that is not a module, e.g. ``toxhelpers.artifacts.LESSONS``,
    is skipped) and of everything they import, transitively; the run tooling is neither hashed
    nor followed."""
    found: set[Path] = set()
    pending = sorted(names | {"toxhelpers"})  # importing any of them runs the package's __init__
    while pending:
        name = pending.pop()
        parts = name.split(".")[1:]
        candidates = [PACKAGE_DIR.joinpath(*parts[:-1], f"{parts[-1]}.py")] if parts else []
        for path in candidates + [PACKAGE_DIR.joinpath(*parts, "__init__.py")]:
            if not path.is_file() or path in found or is_tooling(path.relative_to(PACKAGE_DIR)):
                continue
            found.add(path)
            package = name if path.name == "__init__.py" else name.rpartition(".")[0]
            pending.extend(sorted(imported_names(path.read_text(encoding="utf-8"), package) or ()))
    return found
