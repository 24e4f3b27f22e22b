"""The lessons' ``#@save`` cells and the package stay identical (tools/saved_cells.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def saved_cells():
    spec = importlib.util.spec_from_file_location("saved_cells", ROOT / "tools" / "saved_cells.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["saved_cells"] = module  # a dataclass needs its module registered
    spec.loader.exec_module(module)
    return module


def test_every_saved_definition_matches_its_package_copy() -> None:
    tool = saved_cells()
    assert tool.differences(tool.lesson_notebooks()) == []


def _lesson(folder: Path, cells: list[str]) -> Path:
    notebook = folder / "90_try.ipynb"
    notebook.write_text(json.dumps({"cells": [{"cell_type": "code", "source": text, "metadata": {}}
                                              for text in cells]}))
    return notebook


def test_a_changed_definition_is_found_and_written_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = saved_cells()
    package = tmp_path / "toxhelpers"
    package.mkdir()
    (package / "things.py").write_text('"""Things."""\n\n\ndef twice(x):\n    return 2 * x\n')
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    edited = _lesson(tmp_path, ["#@save toxhelpers.things\ndef twice(x):\n    \"\"\"Why: doubling.\"\"\"\n"
                                "    return x + x\n\n\nHALF = 0.5\n"])
    assert tool.differences([edited]) == ["90_try.ipynb: twice differs from its copy in toxhelpers.things",
                                          "90_try.ipynb: HALF is not defined at the top of toxhelpers.things"]
    assert tool.write([edited]) == ["toxhelpers.things.twice <- 90_try.ipynb", "toxhelpers.things.HALF <- 90_try.ipynb"]
    assert tool.differences([edited]) == []
    assert "return x + x" in (package / "things.py").read_text()


def test_a_saved_cell_holds_definitions_only(tmp_path: Path) -> None:
    tool = saved_cells()
    with pytest.raises(ValueError, match="cell 0 .* line 4 is not a definition"):
        tool.saved_definitions(_lesson(tmp_path, ["#@save toxhelpers.things\ndef f():\n    pass\nf()\n"]))
