"""toxhelpers.run.package_code: which package code a notebook's resume key covers."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from toxhelpers.run import package_code


def test_code_hash_ignores_the_run_tooling_but_sees_lesson_code(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "toxhelpers"
    (package / "run").mkdir(parents=True)
    (package / "data.py").write_text("A = 1\n")
    (package / "__main__.py").write_text("M = 1\n")
    (package / "run" / "cli.py").write_text("B = 1\n")
    monkeypatch.setattr(package_code, "PACKAGE_DIR", package)
    first = package_code.code_hash()
    (package / "run" / "cli.py").write_text("B = 2\n")
    (package / "run" / "new_tool.py").write_text("C = 1\n")
    (package / "__main__.py").write_text("M = 2\n")
    assert package_code.code_hash() == first
    (package / "data.py").write_text("A = 2\n")
    assert package_code.code_hash() != first


def test_changing_the_real_run_package_never_forces_a_rerun(tmp_path: Path, monkeypatch) -> None:
    """On a copy of the real package: editing any module of ``toxhelpers/run/`` keeps the code
    hash a resume compares, editing a lesson module changes it."""
    copy = tmp_path / "toxhelpers"
    shutil.copytree(package_code.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(package_code, "PACKAGE_DIR", copy)
    first = package_code.code_hash()
    tooling = sorted((copy / "run").glob("*.py"))
    assert {"cli.py", "package_code.py", "execute.py"} <= {path.name for path in tooling}
    for path in tooling:
        path.write_text(path.read_text() + "\n# changed\n")
    assert package_code.code_hash() == first
    lesson_module = copy / "data.py"
    lesson_module.write_text(lesson_module.read_text() + "\n# changed\n")
    assert package_code.code_hash() != first


def test_data_shipped_in_the_package_is_part_of_the_code_hash(tmp_path: Path, monkeypatch) -> None:
    """Issue 22 row 8: editing the shipped templates (bias_templates/words.csv.gz) left lesson 9
    reused; the package's data counts like its code (the run profiles do not)."""
    copy = tmp_path / "toxhelpers"
    shutil.copytree(package_code.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(package_code, "PACKAGE_DIR", copy)
    first = package_code.code_hash()
    profile = copy / "profiles" / "smoke.yaml"
    profile.write_text(profile.read_text() + "\n# changed\n")
    assert package_code.code_hash() == first
    words = copy / "bias_templates" / "words.csv.gz"
    words.write_bytes(words.read_bytes()[:-1] + b"x")
    assert package_code.code_hash() != first


def notebook_of(path: Path, *sources: str) -> Path:
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources]), path)
    return path


def test_a_notebooks_code_hash_follows_what_it_imports(tmp_path: Path, monkeypatch) -> None:
    """Only the modules a lesson reaches count for it (imports anywhere in a module, a function's
    own included, transitively), with every __init__ and data file; the others and the tooling do
    not. A bare ``import toxhelpers`` counts every module."""
    package = tmp_path / "toxhelpers"
    (package / "run").mkdir(parents=True)
    files = {"__init__.py": "V = 1\n", "a.py": "def f():\n    from toxhelpers import b\n",
             "b.py": "from toxhelpers.c import X\n", "c.py": "X = 1\n", "unused.py": "U = 1\n",
             "templates.csv": "t\n", "run/tool.py": "T = 1\n"}
    for name, text in files.items():
        (package / name).write_text(text)
    monkeypatch.setattr(package_code, "PACKAGE_DIR", package)
    lesson = notebook_of(tmp_path / "01_a.ipynb", "%matplotlib inline\nfrom toxhelpers import a")
    bare = notebook_of(tmp_path / "02_bare.ipynb", "import toxhelpers")
    hashes = {notebook: package_code.code_hash(notebook) for notebook in (lesson, bare)}
    for name in ("unused.py", "run/tool.py"):
        (package / name).write_text((package / name).read_text() + "# edited\n")
        assert package_code.code_hash(lesson) == hashes[lesson], name
    assert package_code.code_hash(bare) != hashes[bare]  # unused.py counts for it
    for name in ("a.py", "b.py", "c.py", "__init__.py", "templates.csv"):
        before = package_code.code_hash(lesson)
        (package / name).write_text((package / name).read_text() + "# edited\n")
        assert package_code.code_hash(lesson) != before, name


def test_editing_lesson_12s_module_leaves_the_earlier_lessons_code_hash(tmp_path: Path, monkeypatch) -> None:
    """On a copy of the real package and the real lessons: an edit to keras3.py (lessons 12-13)
    changes their hash only; an edit to checkpointing.py changes lessons 5, 6 and 12's, not lesson 1's."""
    real = {path.name[:2]: path for path in sorted((package_code.PACKAGE_DIR.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
    assert len(real) == 13
    copy = tmp_path / "toxhelpers"
    shutil.copytree(package_code.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(package_code, "PACKAGE_DIR", copy)

    def changed_by(module: str) -> set[str]:
        before = {number: package_code.code_hash(path) for number, path in real.items()}
        (copy / module).write_text((copy / module).read_text() + "\n# edited\n")
        return {number for number, path in real.items() if package_code.code_hash(path) != before[number]}

    assert changed_by("keras3.py") == {"12", "13"}
    by_checkpointing = changed_by("checkpointing.py")
    assert {"05", "06", "12"} <= by_checkpointing and "01" not in by_checkpointing
    assert changed_by("artifacts.py") == set(real)
