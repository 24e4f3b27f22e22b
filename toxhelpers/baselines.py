"""Baselines a fine-tuned Transformer has to beat to be worth its cost.

* The majority class: predicts "non-toxic" for everything. On the full Kaggle test set (9.5% toxic)
  it is 90.5% accurate, which is why accuracy alone says little under imbalance.
* TF-IDF + logistic regression: words and word pairs (and, by default, character n-grams, which
  catch misspellings like "id1ot") weighted by TF-IDF, and a linear model on top. It trains in
  seconds on a CPU and is the classic strong baseline for toxic-comment detection.

Its regularisation strength ``C`` is chosen on the validation split, like every other choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from toxhelpers.tokenization import check_texts

FEATURE_SETS = ("word", "char", "word+char")


def check_text_labels(labels: Any, texts: list[str]) -> np.ndarray:
    """One 0/1 label per comment, both classes present: what a text classifier can be fitted on.
    (Not :func:`data.check_labels`, which checks the label columns of Kaggle's files.)"""
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(texts):
        raise ValueError(f"{len(texts)} comments but {len(labels)} labels")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if len(np.unique(labels)) < 2:
        raise ValueError("training needs both toxic and non-toxic comments")
    return labels.astype(int)


def majority_probability(train_labels: Any, rows: int) -> np.ndarray:
    """The majority-class baseline: a constant score, 1.0 if most training comments are toxic,
    else 0.0, for ``rows`` comments (:func:`evaluation.majority_metrics` scores it)."""
    return np.full(rows, float(np.mean(np.asarray(train_labels)) >= 0.5))


def tfidf_features(features: str = "word+char", max_features: int = 100_000) -> Any:
    """The TF-IDF vectoriser: ``word`` (1-2 grams), ``char`` (2-5 grams within words) or both."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    if features not in FEATURE_SETS:
        raise ValueError(f"features must be one of {FEATURE_SETS}, got {features!r}")
    common = dict(lowercase=True, sublinear_tf=True, min_df=2, max_features=max_features, dtype=np.float32)
    parts = []
    if "word" in features:
        parts.append(("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b",
                                              **common)))
    if "char" in features:
        parts.append(("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), **common)))
    return FeatureUnion(parts)


def fit_tfidf_logistic_regression(texts: Sequence[str], labels: Any, C: float = 4.0, features: str = "word+char",
                                  max_features: int = 100_000, seed: int = 42) -> Any:
    """A fitted scikit-learn pipeline, TF-IDF -> logistic regression; ``predict_proba`` scores text."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    texts = check_texts(texts)
    labels = check_text_labels(labels, texts)
    if not C > 0:
        raise ValueError(f"C must be positive, got {C!r}")
    pipeline = Pipeline([("tfidf", tfidf_features(features, max_features)),
                         ("classifier", LogisticRegression(C=C, max_iter=2000, solver="liblinear",
                                                           random_state=seed))])
    return pipeline.fit(texts, labels)


def toxic_probability(pipeline: Any, texts: Sequence[str]) -> np.ndarray:
    """Probability of the toxic class for each comment."""
    return pipeline.predict_proba(check_texts(texts))[:, 1]


def choose_tfidf_C(train_texts: Sequence[str], train_labels: Any, validation_texts: Sequence[str],
                   validation_labels: Any, grid: Sequence[float] = (1.0, 4.0, 16.0), features: str = "word+char",
                   max_features: int = 100_000, seed: int = 42) -> tuple[Any, pd.DataFrame]:
    """Fit one pipeline per ``C`` in ``grid``; keep the one with the best validation ROC-AUC.

    Returns the chosen pipeline and a table of validation ROC-AUC and PR-AUC per ``C``.
    """
    from sklearn.base import clone
    from sklearn.metrics import average_precision_score, roc_auc_score

    if not grid:
        raise ValueError("the grid of C values is empty")
    texts, validation_texts = check_texts(train_texts), check_texts(validation_texts)
    labels, validation_labels = check_text_labels(train_labels, texts), check_text_labels(validation_labels, validation_texts)
    first = fit_tfidf_logistic_regression(texts, labels, grid[0], features, max_features, seed)
    train_matrix = first.named_steps["tfidf"].transform(texts)  # the vectoriser does not depend on C
    validation_matrix = first.named_steps["tfidf"].transform(validation_texts)
    results, fitted = {}, {}
    for C in grid:
        classifier = first.named_steps["classifier"] if C == grid[0] else clone(
            first.named_steps["classifier"]).set_params(C=C).fit(train_matrix, labels)
        probabilities = classifier.predict_proba(validation_matrix)[:, 1]
        results[C] = {"validation_roc_auc": roc_auc_score(validation_labels, probabilities),
                      "validation_pr_auc": average_precision_score(validation_labels, probabilities)}
        fitted[C] = classifier
    table = pd.DataFrame(results).T.rename_axis("C")
    best = float(table["validation_roc_auc"].idxmax())
    first.steps[-1] = ("classifier", fitted[best])
    return first, table


def save_tfidf(pipeline: Any, artifacts_dir: Any) -> Any:
    """Keep lesson 7's fitted pipeline (joblib) so lesson 9 can score new sentences with it."""
    import joblib

    from toxhelpers.artifacts import artifact_path, atomic_path

    path = artifact_path(artifacts_dir, "tfidf_model")
    with atomic_path(path) as tmp:
        joblib.dump(pipeline, tmp)
    return path


def load_tfidf(artifacts_dir: Any) -> Any:
    """The pipeline :func:`save_tfidf` wrote (joblib runs code when loading: only your own files)."""
    import joblib

    from toxhelpers.artifacts import require_artifact

    return joblib.load(require_artifact(artifacts_dir, "tfidf_model"))


def top_terms(pipeline: Any, count: int = 15) -> pd.DataFrame:
    """The n-grams that push a comment most towards toxic and towards non-toxic: what a linear
    model has learned, readable in one table."""
    names = pipeline.named_steps["tfidf"].get_feature_names_out()
    weights = pipeline.named_steps["classifier"].coef_.ravel()
    order = np.argsort(weights)
    toxic, clean = order[::-1][:count], order[:count]
    return pd.DataFrame({"toxic term": [_readable(names[i]) for i in toxic], "toxic weight": weights[toxic].round(2),
                         "non-toxic term": [_readable(names[i]) for i in clean],
                         "non-toxic weight": weights[clean].round(2)})


def _readable(name: str) -> str:
    """``word__you idiot`` -> ``you idiot``; ``char__ idi`` -> ``'␣idi'`` (character n-grams quoted,
    spaces shown, so a fragment is not mistaken for a word)."""
    kind, _, term = name.partition("__")
    return f"'{term.replace(' ', '␣')}'" if kind == "char" else term


def save_tfidf_predictions(artifacts_dir: Any, split: str, ids: Any, labels: Any, probabilities: Any,
                           threshold: float = 0.5) -> Any:
    """Write TF-IDF + LR's probabilities for a split (the columns of :func:`model.save_predictions`),
    so later lessons compare against the baseline without refitting it."""
    from toxhelpers.artifacts import write_predictions

    return write_predictions(artifacts_dir, "tfidf_predictions", split, ids, labels, probabilities, threshold)


def load_tfidf_predictions(artifacts_dir: Any, split: str, ids: Any = None) -> pd.DataFrame:
    """TF-IDF + LR's predictions for a split as lesson 7 saved them; with ``ids``, in that order."""
    from toxhelpers.artifacts import read_predictions

    return read_predictions(artifacts_dir, "tfidf_predictions", split, ids)
