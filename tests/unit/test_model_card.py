"""The model card, the TF-IDF predictions artifact and headline intervals in the record."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from toxhelpers import artifacts, baselines, model, model_card, recording


def test_tfidf_predictions_round_trip(tmp_path: Path) -> None:
    baselines.save_tfidf_predictions(tmp_path, "test", ["a", "b", "c"], [0, 1, 1], [0.1, 0.7, 0.4], threshold=0.5)
    frame = baselines.load_tfidf_predictions(tmp_path, "test", ids=["c", "a"])
    assert frame["id"].tolist() == ["c", "a"] and frame["probability"].tolist() == [0.4, 0.1]
    assert frame["predicted"].tolist() == [0, 0]
    assert artifacts.artifact("tfidf_predictions").produced_by == artifacts.LESSONS["evaluation"]
    with pytest.raises(ValueError, match="miss 1"):
        baselines.load_tfidf_predictions(tmp_path, "test", ids=["a", "z"])
    with pytest.raises(FileNotFoundError):
        baselines.load_tfidf_predictions(tmp_path, "validation")


def test_headline_keeps_an_interval(tmp_path: Path) -> None:
    recorder = recording.Recorder(tmp_path, "confidence")
    recorder.headline("test ROC-AUC, 95% bootstrap interval", 0.96, interval=(0.95, 0.97))
    recorder.headline("plain", 1.0)
    rows = {row["label"]: row for row in artifacts.read_json(recorder.path)["headline"]}
    assert rows["test ROC-AUC, 95% bootstrap interval"]["interval"] == [0.95, 0.97]
    assert "interval" not in rows["plain"]
    with pytest.raises(ValueError):
        recorder.headline("backwards", 0.5, interval=(0.6, 0.4))


def test_the_card_says_what_was_measured(tmp_path: Path) -> None:
    folder = artifacts.artifact_path(tmp_path, "finetuned_model")
    (folder / "encoder").mkdir(parents=True)
    (folder / "encoder" / "tf_model.h5").write_bytes(b"weights")
    spec = model.ClassifierSpec(threshold=0.4, checkpoint={"model_id": "tiny", "weights_sha256": "abc"})
    intervals = pd.DataFrame({"roc_auc": [0.96], "roc_auc low": [0.95], "roc_auc high": [0.97]}, index=["fine-tuned"])
    calibration = pd.DataFrame({"ece": [0.13, 0.03]}, index=["test, raw score", "test, platt"])
    deployment = {"prevalence": 0.095, "fitted_prevalence": 0.385, "recommended": 0.52, "f1_recommended": 0.69,
                  "hindsight": 0.54, "f1_hindsight": 0.71, "knee": 400}
    lesson_1 = recording.Recorder(tmp_path, "data")
    lesson_1.metric("description", "a small real sample of Kaggle's Jigsaw data (4 rows)")
    card = model_card.render(model_card.weights_facts(tmp_path, spec),
                             model_card.data_facts({"train": pd.DataFrame({"label": [0, 1, 1, 0]})}, tmp_path), spec,
                             intervals, calibration, deployment, model_card.serving_facts(tmp_path), None, 1000)
    path = model_card.write_model_card(tmp_path, card)
    text = model_card.read_model_card(tmp_path)
    assert path == tmp_path / "model_card.md" and text == card
    assert "0.960 [0.950, 0.970]" in text and "| train | 4 | 50.0% |" in text and "0.0300" in text
    assert "Data: a small real sample of Kaggle's Jigsaw data (4 rows)." in text
    import hashlib
    assert hashlib.sha256(b"weights").hexdigest() in text
    assert "lesson 9 did not run" in text and "Lesson 8 did not run here." in text


def test_no_notebook_names_in_the_new_modules() -> None:
    package = Path(model_card.__file__).parent
    for name in ("confidence.py", "attribution.py", "model_card.py"):
        assert not re.search(r"\d\d_[a-z]+\.ipynb", (package / name).read_text())


def test_lesson_10_parameters_have_rules() -> None:
    from toxhelpers.run.checks import parameter_rules
    from toxhelpers.recording import declared_parameters, parameters_cell

    notebook = Path(model_card.__file__).parents[1] / "notebooks" / artifacts.LESSONS["confidence"]
    declared = declared_parameters(parameters_cell(notebook))
    assert set(declared) - {"artifacts_dir"} <= set(parameter_rules())
    assert np.isclose(eval(declared["natural_prevalence"]), 0.095)
