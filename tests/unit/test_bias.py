"""Unintended-bias metrics (:mod:`toxhelpers.bias`), checked against numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toxhelpers import bias

# Eight sentences, the first four mention the term. By hand (pairs toxic > non-toxic, ties none):
#   subgroup: toxic {0.7, 0.4} vs non-toxic {0.6, 0.2}: 0.7>0.6, 0.7>0.2, 0.4>0.2, not 0.4>0.6 -> 3/4
#   BPSN: in-group non-toxic {0.6, 0.2} vs background toxic {0.8, 0.5}: 0.8>both, 0.5>0.2 -> 3/4
#   BNSP: in-group toxic {0.7, 0.4} vs background non-toxic {0.1, 0.75}: only the two >0.1 -> 2/4
LABELS = np.array([0, 0, 1, 1, 0, 0, 1, 1])
SCORES = np.array([0.6, 0.2, 0.7, 0.4, 0.1, 0.75, 0.8, 0.5])
IN_GROUP = np.array([True, True, True, True, False, False, False, False])


def test_subgroup_bpsn_bnsp_by_hand() -> None:
    assert bias.subgroup_auc(LABELS, SCORES, IN_GROUP) == pytest.approx(0.75)
    assert bias.bpsn_auc(LABELS, SCORES, IN_GROUP) == pytest.approx(0.75)
    assert bias.bnsp_auc(LABELS, SCORES, IN_GROUP) == pytest.approx(0.5)


def test_one_class_subgroup_gives_nan() -> None:
    assert np.isnan(bias.subgroup_auc(LABELS, SCORES, [True, True, False, False, False, False, False, False]))


def test_power_mean_by_hand() -> None:
    # ((0.5**-5 + 1**-5) / 2) ** (-1/5) = 16.5 ** -0.2 = exp(-ln(16.5) / 5) = exp(-0.560672) = 0.570825
    assert bias.power_mean([0.5, 1.0]) == pytest.approx(0.570825, abs=1e-6)
    assert bias.power_mean([0.5, 1.0], p=1) == pytest.approx(0.75)
    assert bias.power_mean([0.8, np.nan, 0.8]) == pytest.approx(0.8)  # NaN (one-class term) ignored
    with pytest.raises(ValueError, match="at least one value that is not NaN .* template_rows"):
        bias.power_mean([np.nan])


def test_a_term_at_auc_0_makes_the_power_mean_0_its_limit() -> None:
    """A term with few templates can order every pair wrongly (AUC 0): with p = -5 the mean's limit
    is 0. Lesson 9 with template_rows=1000 stopped here with "needs at least one positive value"."""
    assert bias.power_mean([0.0, 0.9]) == 0.0
    assert bias.power_mean([1e-3, 0.9]) < 2e-3  # and it approaches 0 continuously
    assert bias.power_mean([0.0, 1.0], p=1) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="values >= 0, got -0.1"):
        bias.power_mean([-0.1, 0.5])


def test_term_table_and_final_score_by_hand() -> None:
    membership = pd.DataFrame({"gay": IN_GROUP, "muslim": ~IN_GROUP})
    table = bias.term_table(LABELS, SCORES, membership, threshold=0.5)
    assert table.loc["gay", ["subgroup_auc", "bpsn_auc", "bnsp_auc"]].tolist() == pytest.approx([0.75, 0.75, 0.5])
    # the "muslim" rows are the background of "gay": its BPSN is gay's BNSP and the other way round
    assert table.loc["muslim", ["bpsn_auc", "bnsp_auc"]].tolist() == pytest.approx([0.5, 0.75])
    assert table.loc["gay", "fpr"] == pytest.approx(0.5)  # non-toxic in-group {0.6, 0.2} at 0.5: one flagged
    assert table.loc["muslim", "fpr"] == pytest.approx(0.5)  # {0.1, 0.75}
    assert table.loc["gay", "non_toxic_rows"] == 2
    score = bias.bias_score(LABELS, SCORES, table)
    # overall AUC: 16 toxic/non-toxic pairs, toxic {0.7,0.4,0.8,0.5} vs non-toxic {0.6,0.2,0.1,0.75}: 11 right
    assert score["overall_auc"] == pytest.approx(11 / 16)
    # subgroup AUC is 0.75 for both terms (muslim: toxic {0.8, 0.5} vs {0.1, 0.75}, 3 of 4 pairs);
    # BPSN and BNSP are {0.75, 0.5}: power mean ((0.75**-5 + 0.5**-5) / 2) ** -0.2
    both = ((0.75 ** -5 + 0.5 ** -5) / 2) ** -0.2
    assert both == pytest.approx(0.56031, abs=1e-5)  # (1024/243 + 32) / 2 = 18.107; 18.107 ** -0.2
    assert score["power_mean_bpsn_auc"] == pytest.approx(both)
    assert score["power_mean_bnsp_auc"] == pytest.approx(both)
    assert score["power_mean_subgroup_auc"] == pytest.approx(0.75)
    assert score["final_bias_score"] == pytest.approx(0.25 * 11 / 16 + 0.75 * (0.75 + 2 * both) / 3)


def test_worst_terms_sorted_by_false_positive_rate() -> None:
    table = pd.DataFrame({"fpr": [0.1, 0.9, 0.5], "bpsn_auc": [0.9, 0.6, 0.7]}, index=["old", "gay", "deaf"])
    table = table.sort_values(["fpr", "bpsn_auc"], ascending=[False, True])
    assert bias.worst_terms(table, 2) == [("gay", 0.9), ("deaf", 0.5)]
    assert bias.describe_worst(table, 2) == "gay 90%, deaf 50%"


@pytest.mark.parametrize("text, expected", [
    ("I am an African American woman.", {"african american"}),  # the longer term, not also its words
    ("An American and an African.", {"american", "african"}),
    ("MY NEIGHBOUR IS GAY", {"gay"}),  # case
    ("gay.", {"gay"}),  # punctuation is a boundary
    ("Older people", {"older"}),  # whole words: not "old"
    ("A bold move, a golden era", set()),  # "old" inside words is no match
    ("a transgender teacher", {"transgender"}),  # not "trans"
    ("lgbtq rights", {"lgbtq"}),  # not "lgbt"
    ("Middle   Eastern food", {"middle eastern"}),  # any spaces inside a multi-word term
    ("a gaylord", set()),
])
def test_identity_matching(text: str, expected: set[str]) -> None:
    terms = ["african american", "african", "american", "gay", "old", "older", "trans", "transgender",
             "lgbt", "lgbtq", "middle eastern"]
    found = bias.match_terms([text], terms)
    assert list(found.columns) == terms
    assert {term for term in terms if found.loc[0, term]} == expected


def test_shipped_templates_load_and_match() -> None:
    templates, words = bias.load_templates()
    assert len(templates) == 76_564 and templates["label"].mean() == pytest.approx(0.5)
    assert len(bias.identity_terms(words)) == 51 and len(bias.identity_terms(words, "toxic")) == 6
    sample = bias.sample_rows(templates, 500, seed=1)
    assert sample.equals(bias.sample_rows(templates, 500, seed=1)) and len(sample) == 500


def test_templates_folder_without_the_columns_is_one_clear_error(tmp_path) -> None:
    pd.DataFrame({"sentence": ["x"], "toxicity": ["toxic"]}).to_csv(tmp_path / "en_sentence_templates.csv", index=False)
    pd.DataFrame({"type": ["identity"], "subtype": ["x"], "connotation": ["neutral"], "word": ["gay"]}).to_csv(
        tmp_path / "words.csv", index=False)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['template', 'phrase'\]"):
        bias.load_templates(tmp_path)
    with pytest.raises(FileNotFoundError, match="neither words.csv nor words.csv.gz"):
        (tmp_path / "words.csv").unlink()
        pd.DataFrame({"template": ["a"], "toxicity": ["toxic"], "phrase": ["x"]}).to_csv(
            tmp_path / "en_sentence_templates.csv", index=False)
        bias.load_templates(tmp_path)


def test_held_out_terms_split_by_subtype_seeded() -> None:
    _, words = bias.load_templates()
    train, held_out = bias.split_terms(words, 0.5, seed=42)
    assert not set(train) & set(held_out) and len(train) + len(held_out) == 51
    assert (train, held_out) == bias.split_terms(words, 0.5, seed=42)
    neutral = words[(words["type"] == "identity") & (words["connotation"] == "neutral")]
    for subtype, group in neutral.groupby("subtype"):
        assert set(group["word"]) & set(held_out) and set(group["word"]) & set(train), subtype


def test_identity_sentences_are_balanced_and_never_templates() -> None:
    sentences = bias.identity_sentences(["gay", "deaf"], 20, seed=3)
    assert len(sentences) == 20 and sentences["label"].sum() == 10 and set(sentences["term"]) == {"gay", "deaf"}
    assert not sentences["text"].duplicated().any()
    frames = min(len(bias.NON_TOXIC_FRAMES), len(bias.TOXIC_FRAMES))  # per class, for one term
    with pytest.raises(ValueError, match="are evaluation templates"):  # every sentence of "gay" drawn
        bias.identity_sentences(["gay"], 2 * frames, exclude=["I am gay and I agree with the proposed merge."])
    with pytest.raises(ValueError, match=f"count must be between 2 and {2 * frames}"):
        bias.identity_sentences(["gay"], 2 * frames + 2)


def test_mitigation_mix_replays_training_rows_and_keeps_held_out_terms_unseen() -> None:
    train = pd.DataFrame({"comment_text": [f"comment {i}" for i in range(50)], "label": [i % 5 == 0 for i in range(50)]})
    mix = bias.mitigation_mix(train, ["gay", "deaf"], replay_rows=10, sentences=20, seed=3, held_out=["queer"])
    replayed, written = mix[mix["term"].isna()], mix[mix["term"].notna()]
    assert len(replayed) == 10 and set(replayed["text"]) <= set(train["comment_text"])
    assert len(written) == 20 and written["label"].sum() == 10 and set(written["source"]) == {"identity sentence"}
    other = bias.mitigation_mix(train, ["gay", "deaf"], replay_rows=10, sentences=20, seed=4)
    assert set(other["text"]) != set(mix["text"])  # each seed draws afresh: the runs differ
    assert len(bias.mitigation_mix(train, ["gay"], replay_rows=0, sentences=4, seed=3)) == 4
    with pytest.raises(ValueError, match=r"held-out term\(s\) \['gay'\]"):
        bias.mitigation_mix(train, ["gay", "deaf"], replay_rows=10, sentences=20, seed=3, held_out=["gay"])
    # matched as the metrics match: "african american" is one term and does not leak "american"
    assert len(bias.mitigation_mix(train, ["african american"], 0, 4, seed=3, held_out=["american"])) == 4
