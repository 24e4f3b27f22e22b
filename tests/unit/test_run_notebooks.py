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
