"""The slow tier: the README's first command (``./dev walkthrough``: the demo profile on the small
real sample shipped with the package) teaches something, because its numbers are real and not
saturated. Run it with

    ./dev test -m slow tests/integration/test_default_walkthrough.py           # runs the demo profile
    TOXHELPERS_DEFAULT_REPORT=reports/demo ./dev test -m slow tests/integration/test_default_walkthrough.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from toxhelpers.artifacts import read_json

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """metrics.json of a demo-profile run on the shipped sample (``$TOXHELPERS_DEFAULT_REPORT``'s, or a new one)."""
    existing = os.environ.get("TOXHELPERS_DEFAULT_REPORT")
    if existing:
        return read_json(Path(existing) / "metrics.json")
    from toxhelpers import data
    from toxhelpers.run.orchestrate import RunOptions, run

    result = run(RunOptions(profile="demo", overrides={"data_dir": str(data.sample_data_dir())},
                            out=tmp_path_factory.mktemp("demo") / "report", quiet=True))
    assert result.ok, result.failure
    return result.metrics


def test_the_data_is_named_as_the_shipped_sample(default_run: dict) -> None:
    assert default_run["data.source"] == "shipped sample"
    assert default_run["data.description"].startswith("a small real sample of Kaggle's Jigsaw data")


@pytest.mark.parametrize("key", ["finetuning.validation.at_0.5.roc_auc", "finetuning.test.at_0.5.roc_auc",
                                 "evaluation.test.TF-IDF + LR.roc_auc"])
def test_no_model_saturates(default_run: dict, key: str) -> None:
    assert 0.6 < default_run[key] < 0.99


def test_tfidf_validation_is_not_saturated(default_run: dict) -> None:
    grid = [value for key, value in default_run.items()
            if key.startswith("evaluation.tfidf_grid.") and key.endswith(".validation_roc_auc")]
    assert grid and max(grid) < 0.99


def test_intervals_have_width_and_calibration_has_error(default_run: dict) -> None:
    for model in ("fine-tuned", "TF-IDF + LR", "fine-tuned - TF-IDF + LR"):
        low, high = (default_run[f"confidence.intervals.{model}.roc_auc {side}"] for side in ("low", "high"))
        assert high - low > 0.005, model
    assert default_run["confidence.calibration.test, raw score.ece"] > 0.01


def test_the_error_analysis_has_both_kinds_of_mistake(default_run: dict) -> None:
    assert default_run["evaluation.test.fine-tuned Transformer.fp"] > 0
    assert default_run["evaluation.test.fine-tuned Transformer.fn"] > 0


def test_lesson_9_finds_worst_terms(default_run: dict) -> None:
    worst = [key for key in default_run if key.startswith("bias.fine-tuned.worst_")]
    assert len(worst) == 3
