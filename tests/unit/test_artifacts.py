"""The artifact table: what each lesson hands to the next, where it lives and who reads it back.

The table is the one place (besides ``notebooks/``) that names the notebooks, so these tests also
check that no other module of the package, and no benchmark, spells a notebook's file name.
"""

from __future__ import annotations

import importlib
import re
import string
from pathlib import Path

import pytest

import toxhelpers
from toxhelpers import artifacts
from toxhelpers.artifacts import ARTIFACTS, LESSONS

PACKAGE_DIR = Path(toxhelpers.__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
NOTEBOOK_FILE_NAME = re.compile(r"\d\d_[a-z_]+\.ipynb")


def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def resolve(dotted: str):
    """``"module.function"`` or ``"module.Class"`` inside toxhelpers, as the object it names."""
    module_name, _, attribute = dotted.rpartition(".")
    module = importlib.import_module(f"toxhelpers.{module_name}")
    return getattr(module, attribute)


@pytest.mark.parametrize("name", sorted(ARTIFACTS))
def test_every_artifact_is_written_by_a_lesson(name):
    assert ARTIFACTS[name].lesson in LESSONS
    assert ARTIFACTS[name].produced_by == LESSONS[ARTIFACTS[name].lesson]


@pytest.mark.parametrize("name", sorted(ARTIFACTS))
def test_every_artifact_loader_is_a_real_callable(name):
    """A renamed reader would otherwise leave the table pointing at nothing."""
    loader = ARTIFACTS[name].loader
    assert re.fullmatch(r"[a-z][a-z0-9_]*\.[A-Za-z_]+", loader), f"{name}: loader {loader!r} is not 'module.name'"
    assert callable(resolve(loader)), f"{name}: toxhelpers.{loader} is not callable"


def test_no_two_artifacts_share_a_place():
    paths = [artifact.path for artifact in ARTIFACTS.values()]
    assert len(paths) == len(set(paths))


def test_every_lesson_notebook_exists():
    assert sorted(path.name for path in (PROJECT_ROOT / "notebooks").glob("*.ipynb")) == sorted(LESSONS.values())


def test_artifact_path_fills_the_placeholders(tmp_path):
    assert artifacts.artifact_path(tmp_path, "split", split="validation") == tmp_path / "data" / "validation.parquet"
    assert artifacts.artifact_path(tmp_path, "onnx", variant="int8") == tmp_path / "serving" / "classifier.int8.onnx"
    assert artifacts.artifact_path(str(tmp_path), "model_spec") == tmp_path / "model" / "spec.json"


@pytest.mark.parametrize("name", sorted(ARTIFACTS))
def test_every_artifact_path_can_be_filled(tmp_path, name):
    fields = {field: "x" for field in placeholders(ARTIFACTS[name].path)}
    path = artifacts.artifact_path(tmp_path, name, **fields)
    assert path.is_relative_to(tmp_path) and "{" not in str(path)


def test_unknown_artifact_is_a_clear_error(tmp_path):
    with pytest.raises(KeyError, match=r"no artifact 'tokenz'; the table has \[.*'tokens'"):
        artifacts.artifact_path(tmp_path, "tokenz")


def test_missing_placeholder_is_an_error_naming_it(tmp_path):
    with pytest.raises(KeyError, match="split"):
        artifacts.artifact_path(tmp_path, "tokens")


def test_require_artifact_names_the_notebook_that_writes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"tokens/test\.npz does not exist: it is written by 03_tokenization\.ipynb"):
        artifacts.require_artifact(tmp_path, "tokens", split="test")
    path = artifacts.artifact_path(tmp_path, "tokens", split="test")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    assert artifacts.require_artifact(tmp_path, "tokens", split="test") == path


def python_files_that_may_not_name_notebooks() -> list[Path]:
    """toxhelpers/**/*.py (the run tooling in toxhelpers/run/ included) except artifacts.py, and
    benchmarks/*.py."""
    package = [path for path in sorted(PACKAGE_DIR.rglob("*.py")) if path.name != "artifacts.py"]
    return package + sorted((PROJECT_ROOT / "benchmarks").glob("*.py"))


def test_no_module_or_benchmark_spells_a_notebook_file_name():
    """Paths and notebook names come from the table (``LESSONS``, ``produced_by``), so renaming a
    lesson is a change in artifacts.py alone."""
    files = python_files_that_may_not_name_notebooks()
    assert {"benchmarks", "run"} <= {path.parent.name for path in files}  # the search really covers them
    offenders = [f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}"
                 for path in files
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if NOTEBOOK_FILE_NAME.search(line)]
    assert offenders == []


def test_predictions_round_trip_in_the_order_asked_and_name_their_lesson(tmp_path):
    """One writer and reader for every model's predictions (phase 1, fine-tuned, TF-IDF)."""
    artifacts.write_predictions(tmp_path, "phase1_predictions", "validation", ["a", "b", "c"], [0, 1, 1],
                                [0.2, 0.9, 0.4], threshold=0.5)
    frame = artifacts.read_predictions(tmp_path, "phase1_predictions", "validation", ids=["c", "a"])
    assert frame["id"].tolist() == ["c", "a"] and frame["predicted"].tolist() == [0, 0]
    assert artifacts.read_predictions(tmp_path, "phase1_predictions", "validation")["id"].tolist() == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"05_training.ipynb's validation predictions \(phase1_predictions\) miss 1"):
        artifacts.read_predictions(tmp_path, "phase1_predictions", "validation", ids=["a", "z"])


def test_no_module_can_load_a_pickle() -> None:
    """Issue 22 row 1: artifacts folders are shared, so nothing in the package reads a format that
    runs code when loaded (pickle, joblib, numpy's allow_pickle, torch.load without weights_only)."""
    risky = re.compile(r"\bimport (joblib|pickle|dill|cloudpickle)\b|allow_pickle\s*=\s*True|read_pickle|"
                       r"torch\.load\((?![^)]*weights_only=True)")
    found = [f"{path.relative_to(PROJECT_ROOT)}:{number}"
             for path in sorted(PACKAGE_DIR.rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1) if risky.search(line)]
    assert not found, found
