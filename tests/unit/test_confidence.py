"""Calibration, prior shift and bootstrap intervals, on numbers checked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toxhelpers import confidence, evaluation
from toxhelpers.run import checks as parameter_checks


def test_ece_of_a_perfectly_calibrated_toy_is_zero() -> None:
    # bin 0.2-0.3: 10 rows at 0.25, 2.5 of 10 toxic is impossible, so use 0.2 with 2 of 10 toxic, etc.
    probabilities = np.repeat([0.2, 0.5, 0.9], 10)
    labels = np.concatenate([[1] * 2 + [0] * 8, [1] * 5 + [0] * 5, [1] * 9 + [0] * 1])
    assert confidence.expected_calibration_error(labels, probabilities) == pytest.approx(0.0, abs=1e-12)
    table = confidence.reliability_table(labels, probabilities)
    assert table["rows"].tolist() == [10, 10, 10]
    np.testing.assert_allclose(table["observed"], table["predicted"])


def test_ece_of_a_known_miscalibrated_toy() -> None:
    # Always 0.9 where half are toxic: one bin, gap 0.4. Then two bins: 0.9 with 5/10 toxic (gap 0.4)
    # and 0.1 with 0/30 toxic (gap 0.1): ECE = (10 * 0.4 + 30 * 0.1) / 40 = 0.175.
    assert confidence.expected_calibration_error([1, 0] * 5, [0.9] * 10) == pytest.approx(0.4)
    labels = np.array([1] * 5 + [0] * 5 + [0] * 30)
    probabilities = np.array([0.9] * 10 + [0.1] * 30)
    assert confidence.expected_calibration_error(labels, probabilities) == pytest.approx(0.175)
    # Brier by hand: 5 * 0.01 + 5 * 0.81 + 30 * 0.01 = 4.4, / 40 = 0.11
    assert confidence.brier_score(labels, probabilities) == pytest.approx(0.11)


def test_a_score_of_one_falls_in_the_last_bin() -> None:
    table = confidence.reliability_table([1, 1], [1.0, 0.95], bins=10)
    assert table.index.tolist() == ["0.9-1.0"] and table["rows"].iloc[0] == 2


def test_scaling_repairs_a_known_distortion_and_keeps_the_order() -> None:
    rng = np.random.default_rng(0)
    true_logit = rng.normal(0, 2, 20_000)
    labels = (rng.random(20_000) < confidence.sigmoid(true_logit)).astype(int)
    distorted = confidence.sigmoid(0.5 * true_logit - 1.0)  # too timid and shifted down
    platt = confidence.fit_scaling(labels, distorted, "platt")
    assert platt.slope == pytest.approx(2.0, rel=0.05) and platt.intercept == pytest.approx(2.0, rel=0.1)
    temperature = confidence.fit_scaling(labels, confidence.sigmoid(0.5 * true_logit), "temperature")
    assert temperature.intercept == 0.0 and temperature.temperature == pytest.approx(0.5, rel=0.05)  # no shift needed
    repaired = platt(distorted)
    assert confidence.expected_calibration_error(labels, repaired) < 0.02 < confidence.expected_calibration_error(labels, distorted)
    assert (np.argsort(repaired, kind="stable") == np.argsort(distorted, kind="stable")).all()
    np.testing.assert_allclose(platt.inverse(repaired), distorted, rtol=1e-6, atol=1e-9)


def test_prior_shift_formula_on_a_case_computed_by_hand() -> None:
    # p = 0.8 on a half-toxic sample, deployment 9.5% toxic: r1 = 0.095 / 0.5 = 0.19,
    # r0 = 0.905 / 0.5 = 1.81; p' = 0.8 * 0.19 / (0.8 * 0.19 + 0.2 * 1.81) = 0.152 / 0.514 = 0.295720...
    assert confidence.adjust_to_prevalence(0.8, 0.5, 0.095) == pytest.approx(0.152 / 0.514)
    assert confidence.adjust_to_prevalence(0.5, 0.5, 0.095) == pytest.approx(0.095)  # no evidence: the prior
    np.testing.assert_allclose(confidence.adjust_to_prevalence([0.0, 1.0], 0.3, 0.1), [0.0, 1.0])
    there = confidence.adjust_to_prevalence(np.array([0.2, 0.6]), 0.4, 0.1)
    np.testing.assert_allclose(confidence.adjust_to_prevalence(there, 0.1, 0.4), [0.2, 0.6])  # and back
    with pytest.raises(ValueError):
        confidence.adjust_to_prevalence(0.5, 0.0, 0.1)


def test_expected_f1_threshold_by_hand() -> None:
    # p = 0.9, 0.6, 0.2. Flag 1: TP .9 FP .1 FN .8 -> 1.8/2.7 = 0.667; flag 2: TP 1.5 FP .5 FN .2
    # -> 3/3.7 = 0.811; flag 3: TP 1.7 FP 1.3 FN 0 -> 3.4/4.7 = 0.723. Best: flag two, threshold 0.6.
    assert confidence.expected_f1_threshold([0.2, 0.9, 0.6]) == pytest.approx(0.6)
    # ties are never split: two rows at 0.6 are flagged together
    assert confidence.expected_f1_threshold([0.6, 0.6, 0.9, 0.01]) in (0.6, 0.9)


def test_bootstrap_is_reproducible_under_a_seed() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    scores = {"a": np.clip(labels * 0.3 + rng.random(300) * 0.7, 0, 1), "b": rng.random(300)}
    run = lambda seed: confidence.metric_intervals(labels, scores, {"a": 0.5, "b": 0.5}, resamples=200, seed=seed)  # noqa: E731
    first, again, other = run(7), run(7), run(8)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)
    assert list(first.index) == ["a", "b", "a - b"]
    for metric in ("roc_auc", "pr_auc", "f1"):
        assert (first[f"{metric} low"] <= first[metric]).all() and (first[metric] <= first[f"{metric} high"]).all()
        point = evaluation.binary_metrics(labels, scores["a"], 0.5)[metric]
        assert first.loc["a", metric] == pytest.approx(point)
        assert first.loc["a - b", metric] == pytest.approx(point - evaluation.binary_metrics(labels, scores["b"], 0.5)[metric])


def test_single_metric_equals_binary_metrics() -> None:
    rng = np.random.default_rng(3)
    labels, probabilities = rng.integers(0, 2, 200), rng.random(200)
    full = evaluation.binary_metrics(labels, probabilities, 0.4)
    for metric in ("roc_auc", "pr_auc", "f1"):
        assert evaluation.single_metric(metric, labels, probabilities, 0.4) == pytest.approx(full[metric])


def test_bootstrap_intervals_cover_a_known_value() -> None:
    """95% intervals cover the truth in most simulated samples: of a mean (known: 0) in 200 samples
    (190 expected; fewer than 180 has binomial probability below 0.01), and of a ROC-AUC (known:
    Phi(1 / sqrt 2) = 0.7602 for toxic scores N(1, 1) and others N(0, 1)) in 25 samples (23.75
    expected; fewer than 21 below 0.04). Seeded, so the outcome is fixed; the bounds say it is not luck."""
    from scipy.stats import norm

    rng = np.random.default_rng(2024)
    mean_hits = 0
    for sample in range(200):
        values = rng.normal(0, 1, 60)
        table = confidence.bootstrap(lambda i: {"mean": values[i].mean()}, len(values), 300, seed=sample)
        low, high = confidence.percentile_interval(table["mean"])
        mean_hits += low <= 0 <= high
    true_auc, auc_hits = norm.cdf(1 / np.sqrt(2)), 0
    labels = np.repeat([0, 1], 100)
    for sample in range(25):
        scores = confidence.sigmoid(rng.normal(labels, 1.0))
        interval = confidence.metric_intervals(labels, {"m": scores}, {"m": 0.5}, resamples=200, seed=sample,
                                               metrics=("roc_auc",))
        auc_hits += interval.loc["m", "roc_auc low"] <= true_auc <= interval.loc["m", "roc_auc high"]
    assert mean_hits >= 180 and auc_hits >= 21, (mean_hits, auc_hits)


def test_labels_vs_f1_and_its_knee() -> None:
    rng = np.random.default_rng(5)
    labels = np.repeat([0, 1], 300)
    scores = confidence.sigmoid(rng.normal(labels * 2.5 - 1, 1.0))
    table = confidence.labels_vs_f1(labels, scores, [0, 20, 200], 0.1, fallback_threshold=0.9, repeats=5, seed=1)
    assert len(table) == 15 and set(table["labels"]) == {0, 20, 200}
    assert (table.loc[table["labels"] == 0, "threshold"] == 0.9).all()  # no labels: the fallback
    assert (table["f1"] <= table["best_f1"] + 1e-9).all()  # never better than hindsight on the same half
    again = confidence.labels_vs_f1(labels, scores, [0, 20, 200], 0.1, fallback_threshold=0.9, repeats=5, seed=1)
    pd.testing.assert_frame_equal(table, again)
    curve = pd.Series([0.70, 0.50, 0.60, 0.645, 0.65], index=[0, 25, 50, 100, 200])
    assert confidence.knee(curve, tolerance=0.01) == 100  # n = 0 is not a candidate


def test_scalings_in_the_parameter_table_match() -> None:
    assert parameter_checks.CALIBRATION_SCALINGS == confidence.SCALINGS
