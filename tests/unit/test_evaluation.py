"""Lesson 7's evaluation helpers: threshold choice, prevalence reweighting, the majority baseline's
metrics, and error analysis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from toxhelpers import evaluation


@pytest.fixture(scope="module")
def scored() -> tuple[np.ndarray, np.ndarray]:
    """Synthetic labels and overlapping scores: 300 toxic, 700 not."""
    rng = np.random.default_rng(3)
    labels = np.r_[np.ones(300, int), np.zeros(700, int)]
    return labels, np.clip(rng.normal(0.35 + 0.3 * labels, 0.15), 0, 1)


def test_recall_target_threshold_is_the_highest_that_reaches_the_target(scored):
    labels, probabilities = scored
    threshold = evaluation.recall_target_threshold(labels, probabilities, 0.9)
    assert evaluation.binary_metrics(labels, probabilities, threshold)["recall"] >= 0.9
    next_score = probabilities[probabilities > threshold].min()
    assert evaluation.binary_metrics(labels, probabilities, next_score)["recall"] < 0.9
    with pytest.raises(ValueError, match="target_recall"):
        evaluation.recall_target_threshold(labels, probabilities, 0.0)


def test_reweighted_metrics_equal_sample_weighted_counts(scored):
    labels, probabilities = scored
    expected = evaluation.metrics_at_prevalence(labels, probabilities, 0.5, prevalence=0.095)
    weights = evaluation.prevalence_weights(labels, 0.095)
    predicted = probabilities >= 0.5
    assert weights[labels == 1].sum() / weights.sum() == pytest.approx(0.095)
    assert expected["precision"] == pytest.approx(skm.precision_score(labels, predicted, sample_weight=weights))
    assert expected["f1"] == pytest.approx(skm.f1_score(labels, predicted, sample_weight=weights))
    assert expected["accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted, sample_weight=weights))
    assert expected["recall"] == pytest.approx(skm.recall_score(labels, predicted))
    assert expected["tp"] + expected["fp"] + expected["tn"] + expected["fn"] == pytest.approx(10_000)
    # at the sample's own share, reweighting changes nothing
    same = evaluation.metrics_at_prevalence(labels, probabilities, 0.5, prevalence=labels.mean())
    plain = evaluation.binary_metrics(labels, probabilities, 0.5)
    for key in ("accuracy", "precision", "recall", "f1", "pr_auc", "roc_auc"):
        assert same[key] == pytest.approx(plain[key])


def test_subsamples_reach_the_prevalence_and_agree_with_reweighting_on_average(scored):
    labels, probabilities = scored
    draws = [evaluation.subsample_to_prevalence(labels, 0.1, seed) for seed in range(300)]
    assert all(labels[rows].mean() == pytest.approx(0.1, abs=0.002) for rows in draws)
    assert all(len(np.unique(rows)) == len(rows) for rows in draws)
    mean_precision = np.mean([evaluation.binary_metrics(labels[rows], probabilities[rows], 0.5)["precision"]
                              for rows in draws])
    expected = evaluation.metrics_at_prevalence(labels, probabilities, 0.5, 0.1)["precision"]
    assert mean_precision == pytest.approx(expected, abs=0.01)


def test_prevalence_aware_threshold_maximises_the_reweighted_f1(scored):
    labels, probabilities = scored
    chosen = evaluation.best_f1_threshold_at_prevalence(labels, probabilities, 0.05)
    best = max(evaluation.metrics_at_prevalence(labels, probabilities, t, 0.05)["f1"] for t in np.unique(probabilities))
    assert evaluation.metrics_at_prevalence(labels, probabilities, chosen, 0.05)["f1"] == pytest.approx(best)
    assert chosen > evaluation.best_f1_threshold(labels, probabilities)  # rarer toxicity: stricter threshold


@pytest.mark.parametrize("prevalence", [0, 1, 1.5, -0.1])
def test_impossible_prevalence_is_rejected(scored, prevalence):
    with pytest.raises(ValueError, match="prevalence"):
        evaluation.metrics_at_prevalence(*scored, 0.5, prevalence)


def test_length_buckets_cover_every_row_once(scored):
    labels, probabilities = scored
    lengths = np.random.default_rng(0).integers(1, 600, len(labels))
    lengths[:3] = [32, 33, 129]
    buckets = evaluation.length_buckets(lengths, [32, 128])
    assert list(buckets.categories) == ["1-32", "33-128", ">128"]
    assert list(buckets[:3]) == ["1-32", "33-128", ">128"]
    table = evaluation.length_bucket_metrics(labels, {"m": probabilities}, lengths, {"m": 0.5}, [32, 128])
    assert table["rows"].sum() == len(labels)
    assert set(table.columns) == {"rows", "toxic_share", "m roc_auc", "m f1"}
    with pytest.raises(ValueError, match="increasing"):
        evaluation.length_buckets(lengths, [128, 32])


def test_confident_errors_are_the_surest_mistakes():
    frame = pd.DataFrame({"comment_text": list("abcdefgh"), "label": [0, 0, 0, 1, 1, 1, 0, 1],
                          "probability": [0.9, 0.7, 0.1, 0.05, 0.3, 0.95, 0.6, 0.45]})
    errors = evaluation.confident_errors(frame, threshold=0.5, count=2)
    assert errors["comment_text"].tolist() == ["a", "b", "d", "e"]
    assert errors["error"].tolist() == ["false positive"] * 2 + ["false negative"] * 2
    assert evaluation.confident_errors(frame.assign(comment_text="x" * 500), 0.5, 1, text_chars=10)[
        "comment_text"][0] == "x" * 10 + " ..."


def test_majority_baseline_predicts_the_training_majority_on_other_rows():
    """The floor of lesson 1: the TRAINING split's majority class, scored on the other split."""
    assert evaluation.majority_metrics([0, 0, 0, 1], [0, 1, 1, 1])["accuracy"] == 0.25
    assert evaluation.majority_metrics([1, 1, 1, 0], [0, 1, 1, 1])["accuracy"] == 0.75

