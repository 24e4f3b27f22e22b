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
