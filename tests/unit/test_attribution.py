"""Integrated gradients on the real bundled encoder: completeness, and agreement with the classifier."""

from __future__ import annotations

import numpy as np
import pytest

from toxhelpers import attribution, model, pretrained

TOLERANCE = 0.01  # |sum of attributions - score change|, in probability, at 64 trapezoid steps


@pytest.fixture(scope="module")
def classifier(bundled_checkpoint):
    """The bundled encoder with a seeded random head (mean pooling), dropout on in the config:
    the explanations must switch it off themselves."""
    encoder = pretrained.load_encoder(bundled_checkpoint, pretrained.encoder_config(bundled_checkpoint, 0.2, 0.2))
    head = model.build_head(encoder.config.hidden_size, [32], 0.2, seed=3)
    return model.build_classifier(encoder, head, "mean")


TEXTS = ["Shut up, you pathetic idiot. Nobody wants you here.",
         "Thank you for the careful edit, the sources look good."]


def test_the_embedding_scorer_gives_the_classifier_s_scores(classifier, tokenizer) -> None:
    scorer = attribution.EmbeddingScorer(classifier)
    encoded = tokenizer(TEXTS, padding=True, return_tensors="np")
    expected = classifier({"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]},
                          training=False).numpy().ravel()
    got = scorer(scorer.embed(encoded["input_ids"]), encoded["attention_mask"]).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("text", TEXTS)
def test_completeness_on_the_real_encoder(classifier, tokenizer, text) -> None:
    scorer = attribution.EmbeddingScorer(classifier)
    result = attribution.integrated_gradients(scorer, tokenizer, text, max_length=64, steps=64)
    assert result.steps == 64 and len(result.values) == len(result.tokens)
    assert result.tokens[0] == "[CLS]" and result.tokens[-1] == "[SEP]"
    assert abs(result.values.sum() - (result.score - result.baseline_score)) <= TOLERANCE
    assert result.completeness_error <= TOLERANCE
    # [CLS] and [SEP] are the same in the baseline: no embedding difference, no attribution
    assert result.values[0] == pytest.approx(0.0, abs=1e-7) and result.values[-1] == pytest.approx(0.0, abs=1e-7)


def test_refinement_only_adds_steps_while_needed(classifier, tokenizer) -> None:
    scorer = attribution.EmbeddingScorer(classifier)
    coarse = attribution.integrated_gradients(scorer, tokenizer, TEXTS[0], 64, steps=2)
    refined = attribution.integrated_gradients(scorer, tokenizer, TEXTS[0], 64, steps=2, tolerance=1e-9, max_steps=16)
    assert refined.steps == 16 and refined.completeness_error <= coarse.completeness_error + 1e-6
    plain = attribution.integrated_gradients(scorer, tokenizer, TEXTS[0], 64, steps=16)
    np.testing.assert_allclose(refined.values, plain.values, atol=1e-5)  # nested trapezoid = direct 16 steps


def test_words_join_word_pieces_and_html_escapes(tokenizer) -> None:
    result = attribution.Attribution(["[CLS]", "id", "##iot", "<b>", "[SEP]"], np.array([0.0, 0.2, 0.3, -0.1, 0.0]),
                                     0.9, 0.4, 8)
    assert attribution.words(result) == [("idiot", pytest.approx(0.5)), ("<b>", pytest.approx(-0.1))]
    assert result.completeness_error == pytest.approx(0.1)
    html = attribution.highlight_html(result, "false positive")
    assert "&lt;b&gt;" in html and "idiot" in html and "false positive" in html
    assert attribution.top_words(result, 1) == [("idiot", pytest.approx(0.5))]
