"""Baselines a fine-tuned Transformer has to beat to be worth its cost.

* The majority class: predicts "non-toxic" for everything. On the full Kaggle test set (9.5% toxic)
  it is 90.5% accurate, which is why accuracy alone says little under imbalance.
* TF-IDF + logistic regression: words and word pairs (and, by default, character n-grams, which
  catch misspellings like "id1ot") weighted by TF-IDF, and a linear model on top. It trains in
  seconds on a CPU and is the classic strong baseline for toxic-comment detection.

Its regularisation strength ``C`` is chosen on the validation split, like every other choice.
"""

from __future__ import annotations

import json
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
    from sklearn.pipeline import Pipeline

    texts = check_texts(texts)
    labels = check_text_labels(labels, texts)
    pipeline = Pipeline([("tfidf", tfidf_features(features, max_features)), ("classifier", logistic_regression(C, seed))])
    return pipeline.fit(texts, labels)


def logistic_regression(C: float, seed: int = 42) -> Any:
    """The classifier on the TF-IDF features (unfitted): liblinear, ``C`` the inverse L2 strength."""
    from sklearn.linear_model import LogisticRegression

    if not C > 0:
        raise ValueError(f"C must be positive, got {C!r}")
    return LogisticRegression(C=C, max_iter=2000, solver="liblinear", random_state=seed)


def toxic_probability(pipeline: Any, texts: Sequence[str]) -> np.ndarray:
    """Probability of the toxic class for each comment."""
    return pipeline.predict_proba(check_texts(texts))[:, 1]


def choose_tfidf_C(train_texts: Sequence[str], train_labels: Any, validation_texts: Sequence[str],
                   validation_labels: Any, grid: Sequence[float] = (1.0, 4.0, 16.0), features: str = "word+char",
                   max_features: int = 100_000, seed: int = 42) -> tuple[Any, pd.DataFrame]:
    """Fit one pipeline per ``C`` in ``grid``; keep the one with the best validation ROC-AUC.

    Returns the chosen pipeline and a table of validation ROC-AUC and PR-AUC per ``C``.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.pipeline import Pipeline

    if not grid:
        raise ValueError("the grid of C values is empty")
    texts, validation_texts = check_texts(train_texts), check_texts(validation_texts)
    labels, validation_labels = check_text_labels(train_labels, texts), check_text_labels(validation_labels, validation_texts)
    classifiers = [logistic_regression(C, seed) for C in grid]  # a bad C fails before the long fit
    vectoriser = tfidf_features(features, max_features)
    train_matrix = vectoriser.fit_transform(texts)  # once: the vectoriser does not depend on C
    validation_matrix = vectoriser.transform(validation_texts)
    results, fitted = {}, {}
    for C, classifier in zip(grid, classifiers):
        probabilities = classifier.fit(train_matrix, labels).predict_proba(validation_matrix)[:, 1]
        results[C] = {"validation_roc_auc": roc_auc_score(validation_labels, probabilities),
                      "validation_pr_auc": average_precision_score(validation_labels, probabilities)}
        fitted[C] = classifier
    table = pd.DataFrame(results).T.rename_axis("C")
    best = float(table["validation_roc_auc"].idxmax())
    return Pipeline([("tfidf", vectoriser), ("classifier", fitted[best])]), table


# What a saved TF-IDF pipeline may hold: the vectorisers' settings (plain values) and the fitted
# numbers. Saved as data, never pickled: a pickle (joblib) runs code when loaded, and artifacts
# folders are shared (scale-out, copies of reports).
TFIDF_SETTINGS = ("analyzer", "ngram_range", "token_pattern", "lowercase", "sublinear_tf", "min_df", "max_df",
                  "max_features", "norm", "use_idf", "smooth_idf", "binary", "strip_accents", "stop_words",
                  "encoding", "decode_error", "input")
TFIDF_FORMAT = "toxhelpers.tfidf/1"


def tfidf_as_data(pipeline: Any) -> dict[str, np.ndarray]:
    """The fitted TF-IDF + logistic-regression pipeline as named arrays: each vectoriser's
    settings and vocabulary (JSON, as UTF-8 bytes), its idf weights, and the classifier's
    coefficients, intercept and classes. Anything it cannot hold as data (a custom tokenizer,
    another model) is refused rather than pickled."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    steps = dict(getattr(pipeline, "named_steps", {}))
    classifier, union = steps.get("classifier"), steps.get("tfidf")
    parts = getattr(union, "transformer_list", None)
    if set(steps) != {"tfidf", "classifier"} or type(classifier) is not LogisticRegression or not parts \
            or any(type(part) is not TfidfVectorizer for _, part in parts):
        raise ValueError("expected the pipeline fit_tfidf_logistic_regression builds (tfidf: a FeatureUnion of "
                         f"TfidfVectorizer, classifier: LogisticRegression), got {pipeline!r:.200}")
    config: dict[str, Any] = {"format": TFIDF_FORMAT, "parts": []}
    arrays: dict[str, np.ndarray] = {}
    for name, part in parts:
        params = part.get_params()
        others = {key: value for key, value in params.items()
                  if key not in TFIDF_SETTINGS and key not in ("dtype", "vocabulary") and value is not None}
        if others or callable(params["analyzer"]):
            raise ValueError(f"TF-IDF part {name!r} has settings that cannot be saved as data: {sorted(others)}")
        settings = {key: params[key] for key in TFIDF_SETTINGS}
        settings["ngram_range"] = list(settings["ngram_range"])
        if isinstance(settings["stop_words"], (frozenset, set)):
            settings["stop_words"] = sorted(settings["stop_words"])
        terms = sorted(part.vocabulary_, key=part.vocabulary_.__getitem__)
        config["parts"].append({"name": name, "settings": settings, "dtype": np.dtype(params["dtype"]).name,
                                "terms": terms})
        arrays[f"idf_{name}"] = np.asarray(part.idf_)
    config["classifier"] = {key: value for key, value in classifier.get_params().items()
                            if isinstance(value, (int, float, str, bool, type(None)))}
    arrays.update(coef=classifier.coef_, intercept=classifier.intercept_, classes=np.asarray(classifier.classes_),
                  config=np.frombuffer(json.dumps(config).encode("utf-8"), dtype=np.uint8))
    return arrays


def tfidf_from_data(arrays: dict[str, np.ndarray], source: Any = "the saved TF-IDF model") -> Any:
    """The pipeline :func:`tfidf_as_data` described, rebuilt from its numbers (no code is loaded)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    try:
        config = json.loads(bytes(arrays["config"]).decode("utf-8"))
        if config.get("format") != TFIDF_FORMAT:
            raise ValueError(f"format {config.get('format')!r}, expected {TFIDF_FORMAT!r}")
        parts = []
        for part in config["parts"]:
            settings = dict(part["settings"], ngram_range=tuple(part["settings"]["ngram_range"]))
            vectorizer = TfidfVectorizer(**settings, dtype=np.dtype(part["dtype"]).type,
                                         vocabulary={term: index for index, term in enumerate(part["terms"])})
            vectorizer.idf_ = arrays[f"idf_{part['name']}"]
            parts.append((part["name"], vectorizer))
        classifier = LogisticRegression(**config["classifier"])
        classifier.coef_, classifier.intercept_ = arrays["coef"], arrays["intercept"]
        classifier.classes_ = arrays["classes"]
        classifier.n_features_in_ = classifier.coef_.shape[1]
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{source}: not a TF-IDF model saved by baselines.save_tfidf ({error}); "
                         "rerun lesson 7 to write it again") from None
    return Pipeline([("tfidf", FeatureUnion(parts)), ("classifier", classifier)])


def save_tfidf(pipeline: Any, artifacts_dir: Any) -> Any:
    """Keep lesson 7's fitted pipeline so lesson 9 can score new sentences with it: saved as
    plain arrays (:func:`tfidf_as_data`), never as a pickle, so loading it cannot run code."""
    from toxhelpers.artifacts import artifact_path, write_arrays

    return write_arrays(tfidf_as_data(pipeline), artifact_path(artifacts_dir, "tfidf_model"))


def load_tfidf(artifacts_dir: Any) -> Any:
    """The pipeline :func:`save_tfidf` wrote, rebuilt from its arrays (a file that is anything
    else, a pickle among them, is refused: nothing in it is executed)."""
    from toxhelpers.artifacts import read_arrays, require_artifact

    path = require_artifact(artifacts_dir, "tfidf_model")
    try:
        arrays = read_arrays(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a TF-IDF model saved by baselines.save_tfidf ({error}); "
                         "rerun lesson 7 to write it again") from None
    return tfidf_from_data(arrays, path)


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
