"""Honest evaluation: threshold-free metrics, a threshold chosen on validation, the baseline beside.

Accuracy depends on the decision threshold and on how common toxic comments are; ROC-AUC does
not depend on either, and PR-AUC shows how well the rare class is found. A threshold other than
0.5 is chosen on the VALIDATION split and then applied unchanged to the test split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

METRIC_NAMES = ("accuracy", "roc_auc", "pr_auc", "precision", "recall", "f1")


def check_scores(labels: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).reshape(-1)
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if labels.shape != probabilities.shape:
        raise ValueError(f"{len(labels)} labels but {len(probabilities)} probabilities")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if not np.isfinite(probabilities).all() or probabilities.min() < 0 or probabilities.max() > 1:
        raise ValueError("probabilities must be finite numbers in [0, 1]")
    return labels.astype(int), probabilities


def binary_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, ROC-AUC, PR-AUC, precision, recall, F1 and the confusion counts at ``threshold``."""
    labels, probabilities = check_scores(labels, probabilities)
    predicted = (probabilities >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    both_classes = len(np.unique(labels)) == 2
    return {
        "threshold": float(threshold),
        "accuracy": skm.accuracy_score(labels, predicted),
        "roc_auc": skm.roc_auc_score(labels, probabilities) if both_classes else float("nan"),
        "pr_auc": skm.average_precision_score(labels, probabilities) if both_classes else float("nan"),
        "precision": skm.precision_score(labels, predicted, zero_division=0),
        "recall": skm.recall_score(labels, predicted, zero_division=0),
        "f1": skm.f1_score(labels, predicted, zero_division=0),
        "tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp),
    }


def majority_metrics(train_labels: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The baseline that predicts the training majority class for every comment (a constant score,
    so its ROC-AUC is 0.5 and its PR-AUC the toxic share)."""
    majority = int(np.mean(train_labels) >= 0.5)
    return binary_metrics(labels, np.full(len(np.asarray(labels)), float(majority)), threshold=0.5)


def best_f1_threshold(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The threshold that maximises F1 on these rows (use validation rows, never test)."""
    labels, probabilities = check_scores(labels, probabilities)
    precision, recall, thresholds = skm.precision_recall_curve(labels, probabilities)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])


def metrics_table(results: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Named metric dicts as one table with the headline metrics first."""
    frame = pd.DataFrame(results).T
    return frame[[*METRIC_NAMES, "tn", "fp", "fn", "tp", "threshold"]]


def plot_curves(labels: np.ndarray, curves: dict[str, np.ndarray]):
    """ROC and precision-recall curves of one or more score sets on the same rows."""
    import matplotlib.pyplot as plt

    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for name, probabilities in curves.items():
        fpr, tpr, _ = skm.roc_curve(labels, probabilities)
        precision, recall, _ = skm.precision_recall_curve(labels, probabilities)
        roc_ax.plot(fpr, tpr, label=f"{name} (AUC {skm.roc_auc_score(labels, probabilities):.3f})")
        pr_ax.plot(recall, precision, label=f"{name} (AP {skm.average_precision_score(labels, probabilities):.3f})")
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    pr_ax.axhline(np.mean(labels), color="grey", linestyle=":", label="chance (toxic share)")
    roc_ax.set(title="ROC curve", xlabel="false positive rate", ylabel="true positive rate")
    pr_ax.set(title="Precision-recall curve", xlabel="recall", ylabel="precision")
    roc_ax.legend(loc="lower right")
    pr_ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


def plot_confusion(results: dict[str, dict[str, float]]):
    """Confusion matrices (counts) side by side, one per named result."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.6), squeeze=False)
    for ax, (name, result) in zip(axes[0], results.items()):
        matrix = np.array([[result["tn"], result["fp"]], [result["fn"], result["tp"]]])
        sns.heatmap(matrix, annot=True, fmt="d", cbar=False, cmap="Blues", ax=ax,
                    xticklabels=["non-toxic", "toxic"], yticklabels=["non-toxic", "toxic"])
        ax.set(title=name, xlabel="predicted", ylabel="true")
    fig.tight_layout()
    return fig


def plot_history(history: pd.DataFrame, metrics: tuple[str, ...] = ("loss", "roc_auc", "pr_auc"), title: str = ""):
    """Training and validation curves per epoch."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2))
    for ax, metric in zip(np.atleast_1d(axes), metrics):
        ax.plot(history.index, history[metric], marker="o", label="train")
        ax.plot(history.index, history[f"val_{metric}"], marker="o", label="validation")
        ax.set(title=metric, xlabel="epoch")
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
