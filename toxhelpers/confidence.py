"""How far to trust a score: calibration, prior shift, and error bars.

Three questions a deployer asks of a classifier, answered here with small, checkable functions:

* **Is the score a probability?** Among comments scored 0.8, are 80% toxic? The reliability
  diagram (:func:`reliability_table`) and the expected calibration error
  (:func:`expected_calibration_error`) say; the Brier score (:func:`brier_score`) mixes calibration
  with sharpness. A focal loss down-weights easy examples, which pushes scores away from
  probabilities; temperature or Platt scaling (:func:`fit_scaling`), fitted on VALIDATION only,
  repairs that without changing the ranking (ROC-AUC and PR-AUC are unchanged).
* **What if toxic comments are rarer where it is used?** A calibrated probability is calibrated
  for the toxic share of the rows it was fitted on. Bayes' rule moves it to another share
  (:func:`adjust_to_prevalence`); :func:`expected_f1_threshold` then picks a threshold from the
  probabilities alone, and :func:`labels_vs_f1` simulates how many labelled comments from the
  deployment stream it takes to choose a better one.
* **How sure are the headline numbers?** :func:`bootstrap` resamples the test rows (seeded) and
  :func:`metric_intervals` turns that into 95% intervals, paired across models so that the
  interval of their difference is honest.

F1 and threshold searches come from :mod:`toxhelpers.evaluation`; they are not redone here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from toxhelpers.evaluation import (best_f1_threshold, check_prevalence, check_scores, metrics_at_prevalence,
                                   single_metric)

EPSILON = 1e-7  # probabilities are clipped to [EPSILON, 1 - EPSILON] before taking a logit
SCALINGS = ("temperature", "platt")


# --- Calibration ---------------------------------------------------------------------------------

def reliability_table(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Per equal-width probability bin: rows, mean predicted probability and observed toxic share.

    A calibrated model has ``observed`` close to ``predicted`` in every bin (the diagonal of the
    reliability diagram). Empty bins are left out.
    """
    labels, probabilities = check_scores(labels, probabilities)
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins!r}")
    index = np.minimum((probabilities * bins).astype(int), bins - 1)  # 1.0 falls in the last bin
    rows = []
    for bin_ in np.unique(index):
        inside = index == bin_
        rows.append({"bin": f"{bin_ / bins:.1f}-{(bin_ + 1) / bins:.1f}", "rows": int(inside.sum()),
                     "predicted": float(probabilities[inside].mean()), "observed": float(labels[inside].mean())})
    return pd.DataFrame(rows).set_index("bin")


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> float:
    """The rows-weighted mean gap |observed - predicted| over the bins of :func:`reliability_table`.

    0 for a perfectly calibrated model (in every bin); a model that always says 0.9 where half the
    comments are toxic has ECE 0.4.
    """
    table = reliability_table(labels, probabilities, bins)
    return float(np.sum(table["rows"] * (table["observed"] - table["predicted"]).abs()) / table["rows"].sum())


def brier_score(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean squared difference between probability and 0/1 label (lower is better; 0.25 for a
    constant 0.5): rewards calibration and sharpness together."""
    labels, probabilities = check_scores(labels, probabilities)
    return float(np.mean((probabilities - labels) ** 2))


def logit(probabilities: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)), with p clipped to [EPSILON, 1 - EPSILON] so that scores of 0 and 1 stay finite."""
    clipped = np.clip(np.asarray(probabilities, dtype=np.float64), EPSILON, 1 - EPSILON)
    return np.log(clipped) - np.log1p(-clipped)


def sigmoid(values: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), the inverse of :func:`logit`."""
    return 1.0 / (1.0 + np.exp(-np.asarray(values, dtype=np.float64)))


@dataclass(frozen=True)
class Scaling:
    """``calibrated = sigmoid(slope * logit(score) + intercept)``: temperature scaling has
    ``slope = 1 / T`` and no intercept, Platt scaling fits both. A positive slope keeps the order
    of the scores, so ROC-AUC, PR-AUC and every threshold decision survive (moved to new numbers)."""

    kind: str
    slope: float
    intercept: float = 0.0

    @property
    def temperature(self) -> float:
        return 1.0 / self.slope

    def __call__(self, probabilities: np.ndarray) -> np.ndarray:
        return sigmoid(self.slope * logit(probabilities) + self.intercept)

    def inverse(self, calibrated: np.ndarray) -> np.ndarray:
        """The raw score that calibrates to ``calibrated``: to express a threshold on the saved scores."""
        return sigmoid((logit(calibrated) - self.intercept) / self.slope)

    def as_dict(self) -> dict[str, float | str]:
        return {**asdict(self), "temperature": self.temperature}


def fit_scaling(labels: np.ndarray, probabilities: np.ndarray, kind: str = "temperature") -> Scaling:
    """Fit temperature (one parameter) or Platt (two) scaling by minimising the log loss.

    Fit it on VALIDATION rows only; test rows are then only scored with the fitted scaling.
    """
    from scipy.optimize import minimize

    if kind not in SCALINGS:
        raise ValueError(f"kind must be one of {SCALINGS}, got {kind!r}")
    labels, probabilities = check_scores(labels, probabilities)
    z = logit(probabilities)

    def log_loss(params: np.ndarray) -> float:
        slope, intercept = np.exp(params[0]), (params[1] if kind == "platt" else 0.0)
        s = slope * z + intercept
        return float(np.mean(np.logaddexp(0.0, s) - labels * s))  # -log p(label), stable form

    start = np.zeros(2 if kind == "platt" else 1)  # log-slope keeps the slope positive
    result = minimize(log_loss, start, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 4000})
    return Scaling(kind, float(np.exp(result.x[0])), float(result.x[1]) if kind == "platt" else 0.0)


# --- Prior shift ----------------------------------------------------------------------------------

def adjust_to_prevalence(probabilities: np.ndarray, from_prevalence: float, to_prevalence: float) -> np.ndarray:
    """Bayes' rule for a new toxic share (Saerens et al., 2002): the likelihood ratio of a comment
    does not change, the prior odds do, so

    ``p' = p * r1 / (p * r1 + (1 - p) * r0)`` with ``r1 = to / from``, ``r0 = (1 - to) / (1 - from)``.

    ``probabilities`` must be calibrated for rows with ``from_prevalence`` toxic. Example: a
    comment at 0.5 on a half-toxic sample is at 0.095 where 9.5% of comments are toxic.
    """
    r1 = check_prevalence(to_prevalence) / check_prevalence(from_prevalence)
    r0 = (1 - to_prevalence) / (1 - from_prevalence)
    p = np.asarray(probabilities, dtype=np.float64)
    return p * r1 / (p * r1 + (1 - p) * r0)


def expected_f1_threshold(probabilities: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The threshold maximising the F1 that calibrated ``probabilities`` expect, with no labels.

    If each comment is toxic with its probability p, flagging the comments above t expects
    TP = sum of their p, FP = sum of their (1 - p), FN = sum of p below t; F1 = 2TP / (2TP + FP + FN).
    ``weights`` let rows stand for a deployment's mix (e.g. :func:`evaluation.prevalence_weights`).
    """
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    w = np.ones_like(p) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    order = np.argsort(-p, kind="stable")
    p, w = p[order], w[order]
    tp = np.cumsum(w * p)
    fp = np.cumsum(w * (1 - p))
    fn = tp[-1] - tp
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1e-12)
    last = np.flatnonzero(np.diff(p, append=-np.inf) != 0)  # cut only between distinct scores
    return float(p[last[int(np.argmax(f1[last]))]])


def labels_vs_f1(labels: np.ndarray, probabilities: np.ndarray, counts: list[int] | tuple[int, ...],
                 prevalence: float, fallback_threshold: float, repeats: int = 50, seed: int = 42) -> pd.DataFrame:
    """How well a threshold re-estimated from ``n`` labelled deployment comments does, for each n.

    A simulation on labelled rows (use test): each repeat splits the rows in half at random; from the
    first half it draws ``n`` comments as a stream with ``prevalence`` toxic would deliver them
    (rows weighted by class), chooses the F1-best threshold on them (``fallback_threshold`` while
    they hold no toxic comment), and scores it on the other half at ``prevalence``. Returns one row
    per repeat and n: ``labels``, ``repeat``, ``threshold``, ``f1``, and ``best_f1``, the other
    half's best F1 in hindsight.
    """
    from toxhelpers.evaluation import best_f1_threshold_at_prevalence, prevalence_weights

    labels, probabilities = check_scores(labels, probabilities)
    rng = np.random.default_rng(seed)
    rows = []
    for repeat in range(repeats):
        order = rng.permutation(len(labels))
        pool, held = order[: len(order) // 2], order[len(order) // 2:]
        draw_p = prevalence_weights(labels[pool], prevalence)
        draw_p = draw_p / draw_p.sum()
        hindsight = best_f1_threshold_at_prevalence(labels[held], probabilities[held], prevalence)
        best = metrics_at_prevalence(labels[held], probabilities[held], hindsight, prevalence)["f1"]
        for n in counts:
            picked = pool[rng.choice(len(pool), size=n, replace=True, p=draw_p)]
            threshold = (best_f1_threshold(labels[picked], probabilities[picked]) if labels[picked].any()
                         else fallback_threshold)
            f1 = metrics_at_prevalence(labels[held], probabilities[held], threshold, prevalence)["f1"]
            rows.append({"labels": n, "repeat": repeat, "threshold": threshold, "f1": f1, "best_f1": best})
    return pd.DataFrame(rows)


def knee(curve: pd.Series, tolerance: float = 0.01) -> int:
    """The smallest number of labels (n > 0; n = 0 is the threshold chosen without any) whose median
    F1 is within ``tolerance`` of the curve's plateau, its median F1 at the largest number of
    labels: beyond the knee, more labels buy little."""
    curve = curve[curve.index > 0].sort_index()
    if curve.empty:
        raise ValueError("the curve has no point with labels (n > 0)")
    plateau = float(curve.iloc[-1])
    return int(curve.index[np.flatnonzero(curve.to_numpy() >= plateau - tolerance)[0]])


# --- Error bars -----------------------------------------------------------------------------------

def bootstrap(statistic: Callable[[np.ndarray], dict[str, float]], rows: int, resamples: int = 1000,
              seed: int = 42) -> pd.DataFrame:
    """``statistic(indices)`` on ``resamples`` resamples of ``rows`` rows drawn with replacement.

    One table row per resample. The resampled indices depend only on ``seed``, ``rows`` and
    ``resamples``, so the same seed gives the same intervals, and statistics computed in one call
    (several models on the same resample) are paired.
    """
    if resamples < 1 or rows < 1:
        raise ValueError(f"need at least one row and one resample, got rows={rows}, resamples={resamples}")
    rng = np.random.default_rng(seed)
    return pd.DataFrame([statistic(rng.integers(0, rows, rows)) for _ in range(resamples)])


def percentile_interval(values: pd.Series | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` interval of bootstrap values (the percentile method)."""
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(np.asarray(values, dtype=np.float64), [tail, 100 - tail])
    return float(low), float(high)


def metric_intervals(labels: np.ndarray, scores: dict[str, np.ndarray], thresholds: dict[str, float],
                     resamples: int = 1000, seed: int = 42, level: float = 0.95,
                     metrics: tuple[str, ...] = ("roc_auc", "pr_auc", "f1")) -> pd.DataFrame:
    """Point value and bootstrap interval of each metric for each named score set, and of the
    first minus the second set (paired: both are scored on the same resampled rows).

    ``thresholds`` give each set's fixed threshold for F1 (the one chosen on validation). Rows of the
    result: ``<name>`` and ``<first> - <second>``; columns ``<metric>``, ``<metric> low``, ``<metric> high``.
    """
    names = list(scores)
    checked = {name: check_scores(labels, scores[name]) for name in names}
    labels = checked[names[0]][0]

    def statistic(index: np.ndarray) -> dict[str, float]:
        return {f"{name}|{metric}": single_metric(metric, labels[index], checked[name][1][index], thresholds[name])
                for name in names for metric in metrics}

    samples = bootstrap(statistic, len(labels), resamples, seed)
    point = statistic(np.arange(len(labels)))
    rows = {}
    for name in names:
        rows[name] = _interval_row({m: (point[f"{name}|{m}"], samples[f"{name}|{m}"]) for m in metrics}, level)
    if len(names) >= 2:
        first, second = names[:2]
        rows[f"{first} - {second}"] = _interval_row(
            {m: (point[f"{first}|{m}"] - point[f"{second}|{m}"], samples[f"{first}|{m}"] - samples[f"{second}|{m}"])
             for m in metrics}, level)
    return pd.DataFrame(rows).T


def _interval_row(values: dict[str, tuple[float, pd.Series]], level: float) -> dict[str, float]:
    row = {}
    for metric, (point, samples) in values.items():
        low, high = percentile_interval(samples, level)
        row.update({metric: point, f"{metric} low": low, f"{metric} high": high})
    return row


# --- The artifact: what lesson 10 hands to a deployer -----------------------------------------------

def save_calibration(artifacts_dir: str, scaling: Scaling, fitted_prevalence: float, deployment_prevalence: float,
                     recommended_threshold: float) -> object:
    """The scaling fitted on validation, the toxic share it is calibrated for, and the recommended
    deployment threshold (on the saved, raw scores), for a scorer to apply."""
    from toxhelpers.artifacts import artifact_path, write_json

    return write_json({"scaling": scaling.as_dict(), "fitted_prevalence": fitted_prevalence,
                       "deployment_prevalence": deployment_prevalence,
                       "recommended_threshold": recommended_threshold},
                      artifact_path(artifacts_dir, "calibration"))


def load_calibration(artifacts_dir: str) -> dict:
    from toxhelpers.artifacts import read_json, require_artifact

    content = read_json(require_artifact(artifacts_dir, "calibration"))
    scaling = {key: content["scaling"][key] for key in ("kind", "slope", "intercept")}
    return {**content, "scaling": Scaling(**scaling)}
