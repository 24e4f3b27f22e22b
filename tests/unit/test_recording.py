"""Recording a lesson's parameters: names from the notebook's parameters cell, values from the
notebook's namespace, saved in ``metrics/<section>.json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toxhelpers import recording
from toxhelpers.artifacts import LESSONS, read_json

PARAMETERS_CELL = '''max_train_rows = 200  # e.g. max_train_rows=None for every row
seed: int = 42
label_rule = "toxic"
'''


def write_notebook(folder: Path, section: str, parameters: str | None = PARAMETERS_CELL) -> Path:
    """A minimal notebook named like the lesson: a markdown cell, the parameters cell (tagged, as
    papermill wants it, unless ``parameters`` is None), and a setup cell."""
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# A lesson"]}]
    if parameters is not None:
        cells.append({"cell_type": "code", "metadata": {"tags": ["parameters"]}, "execution_count": None,
                      "outputs": [], "source": parameters.splitlines(keepends=True)})
    cells.append({"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                  "source": ["recorder = Recorder(artifacts_dir, 'data', globals())"]})
    path = folder / LESSONS[section]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_declared_parameters_keeps_a_line_with_a_second_equals_sign():
    """papermill's line regex drops ``x = 1  # e.g. x=2``; parsing the cell keeps it."""
    assert recording.declared_parameters(PARAMETERS_CELL) == {
        "max_train_rows": "200", "seed": "42", "label_rule": '"toxic"'}


def test_declared_parameters_rejects_a_cell_that_is_not_python():
    with pytest.raises(ValueError, match=r"01_data.ipynb's parameters cell is not plain Python \(.*line 1\)"):
        recording.declared_parameters("max_train_rows = = 3", "01_data.ipynb's parameters cell")


def test_parameter_values_takes_names_from_the_notebook_and_values_from_the_namespace(tmp_path):
    write_notebook(tmp_path, "data")
    namespace = {"max_train_rows": 5, "seed": 7, "label_rule": "any", "recorder": None, "np": object()}
    assert recording.parameter_values("data", namespace, notebooks_dir=tmp_path) == {
        "max_train_rows": 5, "seed": 7, "label_rule": "any"}


def test_undefined_parameters_are_a_clear_error(tmp_path):
    write_notebook(tmp_path, "data")
    with pytest.raises(ValueError, match=r"01_data.ipynb declares \['seed', 'label_rule'\] .* not defined: "
                                         r"run the parameters cell before the setup cell"):
        recording.parameter_values("data", {"max_train_rows": 5}, notebooks_dir=tmp_path)


def test_a_notebook_without_a_parameters_cell_is_a_clear_error(tmp_path):
    write_notebook(tmp_path, "training", parameters=None)
    with pytest.raises(ValueError, match=r"05_training.ipynb has no code cell tagged 'parameters'"):
        recording.parameter_values("training", {}, notebooks_dir=tmp_path)


def test_recorder_records_exactly_the_notebooks_parameters(tmp_path, monkeypatch):
    """The Recorder looks for the notebook in the working directory (the notebooks folder, both in
    JupyterLab and in ``toxhelpers run``)."""
    write_notebook(tmp_path, "data")
    monkeypatch.chdir(tmp_path)
    namespace = {"max_train_rows": None, "seed": 3, "label_rule": "toxic", "artifacts_dir": "out"}
    recorder = recording.Recorder(tmp_path / "out", "data", namespace)
    recorder.metric("train_rows", 10)
    record = read_json(tmp_path / "out" / "metrics" / "data.json")
    assert record["parameters"] == {"max_train_rows": None, "seed": 3, "label_rule": "toxic"}
    assert record["metrics"] == {"data.train_rows": 10}


def test_recorder_without_the_notebook_records_no_parameters_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    recording.Recorder(tmp_path / "out", "data", {"seed": 3})
    assert read_json(tmp_path / "out" / "metrics" / "data.json")["parameters"] == {}
    assert "NOTICE: this run's parameters are not recorded" in capsys.readouterr().err


def test_a_notebook_outside_the_lessons_is_found_by_its_section(tmp_path, monkeypatch):
    """The run tooling's own test notebooks (``01_make.ipynb``, section "make") record too."""
    notebook = {"cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]},
                           "source": ["artifacts_dir = 'a'\n", "size = 3\n"]}]}
    (tmp_path / "01_make.ipynb").write_text(json.dumps(notebook))
    monkeypatch.chdir(tmp_path)
    recording.Recorder(tmp_path / "out", "make", {"artifacts_dir": "a", "size": 2, "other": 1})
    assert read_json(tmp_path / "out" / "metrics" / "make.json")["parameters"] == {"artifacts_dir": "a", "size": 2}


def test_the_record_carries_the_kernels_peak_memory_as_of_its_last_save(tmp_path, monkeypatch):
    """Lesson 12 puts lesson 6's peak memory beside its own; it reads it from lesson 6's record."""
    monkeypatch.chdir(tmp_path)
    recorder = recording.Recorder(tmp_path / "out", "data")
    first = read_json(recorder.path)["peak_memory_mb"]
    held = bytearray(64 * 1024 * 1024)  # touch 64 MB more than this process has held so far
    held[::4096] = b"x" * len(held[::4096])
    recorder.metric("rows", 1)
    later = read_json(recorder.path)["peak_memory_mb"]
    assert 0 < first <= later and later == pytest.approx(recording.peak_memory_mb(), abs=1.0)
    del held
