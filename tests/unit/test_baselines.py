"""Lesson 7's baselines: TF-IDF with logistic regression on real rows (its C chosen on
validation, its top terms), bad training input, and the majority-class probability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from toxhelpers import baselines


@pytest.fixture(scope="module")
def real_rows(shared_sample) -> dict[str, pd.DataFrame]:
    """2,000 training and 800 held-out rows of the real train.csv, drawn with a fixed seed."""
    frame = pd.read_csv(shared_sample / "train.csv").sample(2800, random_state=0)
    return {"train": frame.iloc[:2000], "held_out": frame.iloc[2000:]}


@pytest.mark.parametrize("features", ["word", "word+char"])
def test_tfidf_baseline_learns_toxicity_from_real_comments(real_rows, features):
    train, held_out = real_rows["train"], real_rows["held_out"]
    pipeline = baselines.fit_tfidf_logistic_regression(train["comment_text"], train["toxic"], features=features)
    probabilities = baselines.toxic_probability(pipeline, held_out["comment_text"])
    assert probabilities.shape == (len(held_out),)
    assert skm.roc_auc_score(held_out["toxic"], probabilities) > 0.85


def test_C_is_chosen_on_validation_and_the_kept_model_is_that_fit(real_rows):
    train, held_out = real_rows["train"], real_rows["held_out"]
    chosen, table = baselines.choose_tfidf_C(train["comment_text"], train["toxic"], held_out["comment_text"],
                                             held_out["toxic"], grid=(0.05, 4.0), features="word")
    best = table["validation_roc_auc"].idxmax()
    assert chosen.named_steps["classifier"].C == best
    assert table.loc[0.05, "validation_roc_auc"] != table.loc[4.0, "validation_roc_auc"]
    fresh = baselines.fit_tfidf_logistic_regression(train["comment_text"], train["toxic"], C=best, features="word")
    np.testing.assert_allclose(baselines.toxic_probability(chosen, held_out["comment_text"]),
                               baselines.toxic_probability(fresh, held_out["comment_text"]), atol=1e-6)


def test_top_terms_read_what_the_linear_model_learned():
    texts = ["you idiot", "what an idiot", "idiot idiot", "thanks a lot", "thanks for this", "nice edit thanks"] * 3
    pipeline = baselines.fit_tfidf_logistic_regression(texts, [1, 1, 1, 0, 0, 0] * 3, features="word")
    terms = baselines.top_terms(pipeline, 3)
    assert terms.loc[0, "toxic term"] == "idiot" and terms.loc[0, "non-toxic term"] == "thanks"
    assert terms.loc[0, "toxic weight"] > 0 > terms.loc[0, "non-toxic weight"]


@pytest.mark.parametrize("texts, labels, error, message", [
    ("one comment", [1], TypeError, "single string"),
    (["fine", None], [0, 1], TypeError, "comment 1 is NoneType"),
    (["a", "b", "c"], [0, 1], ValueError, "3 comments but 2 labels"),
    (["a", "b"], [1, 1], ValueError, "both toxic and non-toxic"),
    (["a", "b"], [0, 2], ValueError, "0 or 1"),
])
def test_bad_training_input_is_one_clear_error(texts, labels, error, message):
    with pytest.raises(error, match=message):
        baselines.fit_tfidf_logistic_regression(texts, labels)


def test_unknown_feature_set_is_rejected():
    with pytest.raises(ValueError, match="features must be one of"):
        baselines.tfidf_features("bytes")


def test_majority_probability_is_the_training_majority():
    assert baselines.majority_probability([0, 0, 1], 4).tolist() == [0.0] * 4
    assert baselines.majority_probability([1, 1, 0], 2).tolist() == [1.0] * 2


@pytest.mark.parametrize("features", ["word", "word+char"])
def test_saved_tfidf_pipeline_scores_as_before(tmp_path, features):
    texts = ["you idiot", "stupid idiot", "thanks for the edit", "good source, thanks", "a\x00b nul idiot"] * 3
    pipeline = baselines.fit_tfidf_logistic_regression(texts, [1, 1, 0, 0, 1] * 3, features=features)
    with pytest.raises(FileNotFoundError, match="07_evaluation.ipynb"):
        baselines.load_tfidf(tmp_path)
    baselines.save_tfidf(pipeline, tmp_path)
    again = baselines.load_tfidf(tmp_path)
    unseen = ["what an idiot", "thanks, good edit", "zzz", "a\x00b"]
    assert np.array_equal(baselines.toxic_probability(again, texts + unseen),
                          baselines.toxic_probability(pipeline, texts + unseen))
    assert baselines.top_terms(again, 3).equals(baselines.top_terms(pipeline, 3))


class _RunsCode:
    """A pickle that runs a command when loaded (what a planted joblib file can do)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_a_planted_pickle_is_refused_without_running_it(tmp_path):
    """Issue 22 row 1: a shared artifacts folder must not be able to run code in lesson 9."""
    import joblib

    from toxhelpers.artifacts import artifact_path

    marker = tmp_path / "ran"
    path = artifact_path(tmp_path / "artifacts", "tfidf_model")
    path.parent.mkdir(parents=True)
    joblib.dump(_RunsCode(marker), path)
    with pytest.raises(ValueError, match="not a TF-IDF model saved by baselines.save_tfidf"):
        baselines.load_tfidf(tmp_path / "artifacts")
    assert not marker.exists()


def test_a_pipeline_that_is_not_plain_data_is_not_saved(tmp_path):
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = ["you idiot", "thanks for the edit"] * 3
    pipeline = baselines.fit_tfidf_logistic_regression(texts, [1, 0] * 3, features="word")
    pipeline.named_steps["tfidf"].transformer_list[0] = ("word", TfidfVectorizer(tokenizer=str.split).fit(texts))
    with pytest.raises(ValueError, match="cannot be saved as data"):
        baselines.save_tfidf(pipeline, tmp_path)
