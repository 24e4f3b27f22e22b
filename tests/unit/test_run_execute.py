"""A notebook that fails: the run stops there and says which cell, which line and which error."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from tiny_lessons import lessons, profile, stable_code, write_notebook  # noqa: F401 (fixtures)
from toxhelpers.run.cli import main


def test_failure_stops_with_notebook_cell_and_error(lessons: Path, profile: Path, capsys) -> None:
    write_notebook(lessons / "03_after.ipynb", ['artifacts_dir = "../artifacts"', "print('should not run')"])
    argv = ["--profile", str(profile), "--notebooks-dir", str(lessons), "--out", str(lessons.parent / "report"),
            "--quiet", "-p", "fail=true"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "FAILED: 02_use.ipynb in cell 4 of 4 (In [4]):" in err  # In [1] is papermill's injected cell
    assert "line 3: raise ValueError('scale must be positive')" in err
    assert "ValueError: scale must be positive" in err
    out = lessons.parent / "report"
    partial = nbformat.read(out / "notebooks" / "02_use.ipynb", as_version=4)
    assert any(output.get("ename") == "ValueError" for cell in partial.cells for output in cell.get("outputs", []))
    assert not (out / "notebooks" / "03_after.ipynb").exists()
    assert not (out / ".state" / "02_use.json").exists()
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "failed" and record["failure"]["error"] == "ValueError: scale must be positive"
    assert "use.scaled_total" not in json.loads((out / "metrics.json").read_text())
    assert "**Status:** failed" in (out / "summary.md").read_text()

    assert main(argv[:-2]) == 0  # fixed: 01 is reused, 02 and 03 run
    assert "01_make.ipynb reused: unchanged since" in capsys.readouterr().err
