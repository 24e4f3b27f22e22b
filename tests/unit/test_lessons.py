"""What the committed lessons show and hide (issue 21): the recipe in the cells, the harness out of sight.

Static checks of the notebooks' source: each lesson writes out the code of its own idea, keeps
recording to one closing cell, checks with printed sentences instead of ``assert`` (the notebook
tier asserts on the recorded numbers), and carries no scaling-out code outside lesson 11.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ARTICLE = "https://towardsdatascience.com/hugging-face-transformers-fine-tuning-distilbert-for-binary-classification-tasks-490f1d192379"


def code_cells(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


def lesson(number: str) -> Path:
    return next(path for path in LESSONS if path.name.startswith(number))


@pytest.mark.parametrize("notebook", LESSONS, ids=[path.stem for path in LESSONS])
def test_no_assert_and_recording_in_one_cell(notebook: Path) -> None:
    cells = code_cells(notebook)
    asserts = [node for source in cells for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Assert)]
    assert not asserts, f"{notebook.name}: print the check as a sentence and assert in tests/notebooks instead"
    recording = [source.splitlines()[0] for source in cells if re.search(r"\brecorder\b", source)]
    assert len(recording) <= 1, f"{notebook.name}: recorder in {len(recording)} cells: {recording}"


@pytest.mark.parametrize("number, code", [
    ("02", ".augment("),
    ("03", "tokenizer("), ("03", "AutoTokenizer.from_pretrained("),
    ("04", "TFAutoModel.from_pretrained("),
    ("05", ".compile("), ("05", ".fit("),
    ("06", ".compile("), ("06", ".fit("),
    ("12", "Backbone.from_preset("), ("12", "Sequential.from_config("), ("12", "BinaryFocalCrossentropy("),
    ("12", ".compile("), ("12", ".fit("), ("12", "keras.saving.load_model("),
    ("13", "export_onnx("), ("13", "quantize_int8("),
])
def test_the_lessons_own_code_is_in_their_cells(number: str, code: str) -> None:
    assert any(code in source for source in code_cells(lesson(number))), f"lesson {number} should show {code}"


@pytest.mark.parametrize("number", ["05", "06"])
def test_the_core_training_lessons_carry_no_scaling_out_code(number: str) -> None:
    assert not any("strategy" in source or "distribute" in source for source in code_cells(lesson(number)))


def test_the_article_is_cited_where_the_reader_meets_it() -> None:
    first = json.loads(lesson("01").read_text(encoding="utf-8"))["cells"][0]
    assert ARTICLE in "".join(first["source"])
    assert ARTICLE in (ROOT / "README.md").read_text(encoding="utf-8")
