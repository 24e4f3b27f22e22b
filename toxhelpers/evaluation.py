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


def single_metric(name: str, labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> float:
    """One of :func:`binary_metrics`' numbers (``roc_auc``, ``pr_auc``, ``f1``), computed the same
    way but alone and without re-checking the inputs: a bootstrap computes thousands of them."""
    if name == "roc_auc":
        return skm.roc_auc_score(labels, probabilities)
    if name == "pr_auc":
        return skm.average_precision_score(labels, probabilities)
    if name == "f1":
        return skm.f1_score(labels, (probabilities >= threshold).astype(int), zero_division=0)
    raise ValueError(f"single_metric computes roc_auc, pr_auc or f1, not {name!r}")


def majority_metrics(train_labels: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """:func:`binary_metrics` of the majority-class baseline (:mod:`toxhelpers.baselines`): a
    constant score, so its ROC-AUC is 0.5 and its PR-AUC the toxic share."""
    from toxhelpers.baselines import majority_probability

    return binary_metrics(labels, majority_probability(train_labels, len(np.asarray(labels))), threshold=0.5)


def f1_curve(labels: np.ndarray, probabilities: np.ndarray,
             sample_weight: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Precision, recall and F1 at every distinct threshold (``thresholds[i]`` gives ``f1[i]``),
    from scikit-learn's precision-recall curve; ``sample_weight`` reweights rows."""
    labels, probabilities = check_scores(labels, probabilities)
    precision, recall, thresholds = skm.precision_recall_curve(labels, probabilities, sample_weight=sample_weight)
    precision, recall = precision[:-1], recall[:-1]  # the curve's last point has no threshold
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return {"thresholds": thresholds, "precision": precision, "recall": recall, "f1": f1}


def best_f1_threshold(labels: np.ndarray, probabilities: np.ndarray,
                      sample_weight: np.ndarray | None = None) -> float:
    """The threshold that maximises F1 on these rows: choose it on validation rows, then apply it
    unchanged to test."""
    curve = f1_curve(labels, probabilities, sample_weight)
    return float(curve["thresholds"][int(np.argmax(curve["f1"]))])


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


def plot_training_steps(steps: pd.DataFrame, title: str = ""):
    """Learning rate and running training loss per optimiser step (``training.StepLog.frame()``)."""
    import matplotlib.pyplot as plt

    fig, (rate_ax, loss_ax) = plt.subplots(1, 2, figsize=(9, 3))
    rate_ax.plot(steps.index, steps["learning_rate"])
    rate_ax.set(title="learning rate", xlabel="step")
    loss_ax.plot(steps.index, steps["loss"])
    loss_ax.set(title="training loss (running mean within the epoch)", xlabel="step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --- Lesson 7: thresholds, prevalence, and where the errors are ----------------------------------

NATURAL_PREVALENCE = 0.095  # toxic share of Kaggle's full test set (9.52%) and of a random train draw


def recall_target_threshold(labels: np.ndarray, probabilities: np.ndarray, target_recall: float) -> float:
    """The highest threshold that still finds ``target_recall`` of the toxic rows (use validation
    rows): for a moderator who must miss few toxic comments and accepts more false alarms."""
    if not 0 < target_recall <= 1:
        raise ValueError(f"target_recall must be in (0, 1], got {target_recall!r}")
    curve = f1_curve(labels, probabilities)
    reaching = np.flatnonzero(curve["recall"] >= target_recall)  # recall falls as the threshold rises
    return float(curve["thresholds"][reaching[-1]])


def check_prevalence(prevalence: float) -> float:
    if not 0 < prevalence < 1:
        raise ValueError(f"prevalence must be a toxic share strictly between 0 and 1, got {prevalence!r}")
    return float(prevalence)


def prevalence_weights(labels: np.ndarray, prevalence: float) -> np.ndarray:
    """Row weights that make these rows count as if ``prevalence`` of them were toxic: every toxic
    row weighs ``prevalence / share``, every other row ``(1 - prevalence) / (1 - share)``.

    Within each class nothing changes, so rates measured per class (recall, false positive rate,
    ROC-AUC) are unchanged; what changes is how many false alarms stand beside each true alert.
    """
    prevalence = check_prevalence(prevalence)
    labels = np.asarray(labels).reshape(-1)
    share = float(np.mean(labels))
    if share in (0.0, 1.0):
        raise ValueError("both classes are needed to reweight to another prevalence")
    return np.where(labels == 1, prevalence / share, (1 - prevalence) / (1 - share))


def metrics_at_prevalence(labels: np.ndarray, probabilities: np.ndarray, threshold: float,
                          prevalence: float = NATURAL_PREVALENCE, per: int = 10_000) -> dict[str, float]:
    """What :func:`binary_metrics` would be, in expectation, where ``prevalence`` of comments are toxic.

    The true and false positive rates measured on these rows carry over (assuming the rows of each
    class are a fair sample of that class); precision is then
    ``TPR * p / (TPR * p + FPR * (1 - p))``. The counts are expected counts per ``per`` comments.
    """
    labels, probabilities = check_scores(labels, probabilities)
    prevalence = check_prevalence(prevalence)
    predicted = probabilities >= threshold
    tpr, fpr = float(predicted[labels == 1].mean()), float(predicted[labels == 0].mean())
    flagged = tpr * prevalence + fpr * (1 - prevalence)
    precision = tpr * prevalence / flagged if flagged > 0 else 0.0
    f1 = 2 * precision * tpr / (precision + tpr) if precision + tpr > 0 else 0.0
    return {
        "threshold": float(threshold), "prevalence": prevalence,
        "accuracy": prevalence * tpr + (1 - prevalence) * (1 - fpr),
        "roc_auc": skm.roc_auc_score(labels, probabilities),
        "pr_auc": skm.average_precision_score(labels, probabilities,
                                              sample_weight=prevalence_weights(labels, prevalence)),
        "precision": precision, "recall": tpr, "f1": f1,
        "tn": per * (1 - prevalence) * (1 - fpr), "fp": per * (1 - prevalence) * fpr,
        "fn": per * prevalence * (1 - tpr), "tp": per * prevalence * tpr,
    }


def best_f1_threshold_at_prevalence(labels: np.ndarray, probabilities: np.ndarray,
                                    prevalence: float = NATURAL_PREVALENCE) -> float:
    """The threshold that maximises the expected F1 at ``prevalence`` (use validation rows): where
    toxic comments are rare, the best threshold is higher than on an enriched sample."""
    labels, probabilities = check_scores(labels, probabilities)
    return best_f1_threshold(labels, probabilities, sample_weight=prevalence_weights(labels, prevalence))


def subsample_to_prevalence(labels: np.ndarray, prevalence: float, seed: int = 42) -> np.ndarray:
    """Indices of a random subset whose toxic share is ``prevalence``: one class is kept whole,
    the other is drawn without replacement. The honest but noisy alternative to reweighting."""
    prevalence = check_prevalence(prevalence)
    labels = np.asarray(labels).reshape(-1)
    toxic, clean = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    rng = np.random.default_rng(seed)
    wanted_toxic = round(len(clean) * prevalence / (1 - prevalence))
    if wanted_toxic <= len(toxic):
        toxic = rng.choice(toxic, wanted_toxic, replace=False)
    else:
        clean = rng.choice(clean, round(len(toxic) * (1 - prevalence) / prevalence), replace=False)
    if len(toxic) == 0 or len(clean) == 0:
        raise ValueError(f"too few rows to reach a toxic share of {prevalence:g} with both classes present")
    return np.sort(np.concatenate([toxic, clean]))


def length_buckets(lengths: np.ndarray, edges: list[int] | tuple[int, ...]) -> pd.Categorical:
    """Bucket labels like ``1-32``, ``33-64`` ... ``>256`` for token lengths and increasing ``edges``."""
    edges = [int(edge) for edge in edges]
    if not edges or edges != sorted(set(edges)) or edges[0] < 1:
        raise ValueError(f"edges must be increasing positive token counts, got {edges!r}")
    bounds = [0, *edges, np.inf]
    names = [f"{low + 1}-{high}" for low, high in zip(bounds[:-2], bounds[1:-1])] + [f">{edges[-1]}"]
    return pd.cut(np.asarray(lengths), bins=bounds, labels=names, right=True)


def length_bucket_metrics(labels: np.ndarray, scores: dict[str, np.ndarray], lengths: np.ndarray,
                          thresholds: dict[str, float], edges: list[int] | tuple[int, ...]) -> pd.DataFrame:
    """Per comment-length bucket: rows, toxic share, and ROC-AUC and F1 of each named score set
    (F1 at that score set's threshold). Shows where a model struggles, e.g. beyond its max_length."""
    labels = np.asarray(labels).reshape(-1)
    buckets = length_buckets(lengths, edges)
    rows = {}
    for bucket in buckets.categories:
        inside = np.asarray(buckets == bucket)
        if not inside.any():
            continue
        row = {"rows": int(inside.sum()), "toxic_share": float(labels[inside].mean())}
        for name, probabilities in scores.items():
            result = binary_metrics(labels[inside], np.asarray(probabilities)[inside], thresholds[name])
            row[f"{name} roc_auc"], row[f"{name} f1"] = result["roc_auc"], result["f1"]
        rows[bucket] = row
    return pd.DataFrame(rows).T.rename_axis("tokens")


def confident_errors(frame: pd.DataFrame, threshold: float, count: int = 5, text_chars: int = 300) -> pd.DataFrame:
    """The false positives the model was surest of and the false negatives it was surest of.

    ``frame`` needs columns ``comment_text``, ``label`` and ``probability``; texts are shortened
    to ``text_chars`` characters for display.
    """
    missing = {"comment_text", "label", "probability"} - set(frame.columns)
    if missing:
        raise ValueError(f"frame lacks columns {sorted(missing)}")
    predicted = frame["probability"] >= threshold
    false_positive = frame[predicted & (frame["label"] == 0)].nlargest(count, "probability")
    false_negative = frame[~predicted & (frame["label"] == 1)].nsmallest(count, "probability")
    table = pd.concat([false_positive.assign(error="false positive"), false_negative.assign(error="false negative")])
    shorten = lambda text: text if len(text) <= text_chars else text[:text_chars].rstrip() + " ..."  # noqa: E731
    return table.assign(comment_text=table["comment_text"].map(shorten))[
        ["error", "probability", "label", "comment_text"]].reset_index(drop=True)


def plot_threshold_tradeoff(labels: np.ndarray, probabilities: np.ndarray, marked: dict[str, float]):
    """Precision, recall and F1 against the threshold, and the precision-recall curve, with the
    named thresholds marked: what each choice of threshold buys and costs."""
    import matplotlib.pyplot as plt

    labels, probabilities = check_scores(labels, probabilities)
    curve = f1_curve(labels, probabilities)
    fig, (line_ax, pr_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for name in ("precision", "recall", "f1"):
        line_ax.plot(curve["thresholds"], curve[name], label="F1" if name == "f1" else name)
    pr_ax.plot(curve["recall"], curve["precision"], color="grey")
    for (name, threshold), color in zip(marked.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"][3:]):
        result = binary_metrics(labels, probabilities, threshold)
        line_ax.axvline(threshold, color=color, linestyle="--", label=f"{name} ({threshold:.3f})")
        pr_ax.scatter(result["recall"], result["precision"], color=color, zorder=3,
                      label=f"{name}: P {result['precision']:.2f}, R {result['recall']:.2f}")
    line_ax.set(title="Trade-off on validation", xlabel="threshold", xlim=(0, 1))
    pr_ax.set(title="Precision-recall curve (validation)", xlabel="recall", ylabel="precision")
    line_ax.legend(loc="lower left", fontsize=8)
    pr_ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig
