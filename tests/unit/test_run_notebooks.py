"""Which notebooks a run executes: by number, name or range."""

from __future__ import annotations

from pathlib import Path

from tiny_lessons import lessons  # noqa: F401 (fixtures)
from toxhelpers.run.notebooks import discover_notebooks, select_notebooks


def test_selection_by_number_name_and_range(lessons: Path) -> None:
    notebooks = discover_notebooks(lessons)
    names = lambda paths: [path.stem for path in paths]  # noqa: E731
    assert names(select_notebooks(notebooks, only=["2"])) == ["02_use"]
    assert names(select_notebooks(notebooks, only=["01_make,02"])) == ["01_make", "02_use"]
    assert names(select_notebooks(notebooks, start="02")) == ["02_use"]
    assert names(select_notebooks(notebooks, stop="01_make.ipynb")) == ["01_make"]


def test_lessons_are_committed_clean_with_unique_cell_ids() -> None:
    """Committed lessons carry no outputs, and every cell has an id of its own (nbformat 4.5
    requires one; papermill warns on each missing one, and a future nbformat will refuse it)."""
    import json

    from toxhelpers.run.notebooks import DEFAULT_NOTEBOOKS_DIR

    for path in discover_notebooks(DEFAULT_NOTEBOOKS_DIR):
        cells = json.loads(path.read_text())["cells"]
        ids = [cell.get("id") for cell in cells]
        assert None not in ids and len(set(ids)) == len(ids), f"{path.name}: missing or repeated cell ids"
        executed = [cell["id"] for cell in cells if cell["cell_type"] == "code" and (cell["outputs"] or cell["execution_count"])]
        assert not executed, f"{path.name}: cells committed with outputs: {executed}"


def test_a_lesson_needing_a_newer_python_is_named_with_the_reason(tmp_path: Path) -> None:
    import nbformat
    import pytest

    from toxhelpers.run.errors import UsageError
    from toxhelpers.run.notebooks import unmet_requirement

    path = tmp_path / "12_new.ipynb"
    notebook = nbformat.v4.new_notebook(metadata={"toxhelpers": {"requires_python": "3.11",
                                                                 "requires_why": "keras-hub 0.32.0 needs it"}})
    nbformat.write(notebook, path)
    assert unmet_requirement(path, (3, 10)) == ("needs Python 3.11 or newer (keras-hub 0.32.0 needs it); "
                                                "this is Python 3.10")
    assert unmet_requirement(path, (3, 11)) is None and unmet_requirement(path, (3, 13)) is None
    nbformat.write(nbformat.v4.new_notebook(), path)
    assert unmet_requirement(path, (3, 10)) is None
    nbformat.write(nbformat.v4.new_notebook(metadata={"toxhelpers": {"requires_python": "three"}}), path)
    with pytest.raises(UsageError, match=r"12_new.ipynb: metadata toxhelpers.requires_python must be a version"):
        unmet_requirement(path)


def test_the_lessons_python_requirements_are_readable() -> None:
    """Only the KerasHub lessons ask for a newer Python than the project's 3.10."""
    from toxhelpers.run.notebooks import DEFAULT_NOTEBOOKS_DIR, unmet_requirement

    unmet = {path.stem for path in discover_notebooks(DEFAULT_NOTEBOOKS_DIR) if unmet_requirement(path, (3, 10))}
    assert unmet == {"12_keras_hub", "13_keras_hub_serving"}
