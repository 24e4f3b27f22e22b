"""Why did it flag this? Token attributions by integrated gradients.

Integrated gradients (Sundararajan et al., 2017) credit each input token with part of the change
in the score between a *baseline* input and the real one: the gradient of the score with respect
to the token's input embedding, averaged along the straight path from the baseline to the input,
times the embedding's difference from the baseline. Its defining check is **completeness**: the
attributions add up to ``score(input) - score(baseline)``, up to the error of the numerical
integral, which :func:`integrated_gradients` measures and returns so a reader can judge it.

The path runs through the word embeddings that the encoder takes as ``inputs_embeds`` (position
and segment embeddings are added inside the encoder, as for token ids). The baseline keeps [CLS]
and [SEP] and replaces every other token by [PAD]: "the same comment with its words removed".
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np

from toxhelpers.tf_setup import tf, tf_keras


@dataclass
class Attribution:
    """One comment's attributions: a value per token, and the completeness check's numbers."""

    tokens: list[str]
    values: np.ndarray
    score: float
    baseline_score: float
    steps: int

    @property
    def completeness_error(self) -> float:
        """|sum of attributions - (score - baseline score)|: the numerical integral's error."""
        return float(abs(self.values.sum() - (self.score - self.baseline_score)))


class EmbeddingScorer:
    """The classifier as a function of the input embeddings: embeddings -> encoder -> pooling -> head.

    Built from the pieces of a classifier made by :func:`model.build_classifier`, so its scores
    are the classifier's (checked in the tests); dropout is off (``training=False``).
    """

    def __init__(self, classifier: tf_keras.Model):
        from toxhelpers.model import ClsPooling, MaskedMeanPooling, encoder_of

        layers = classifier.layers
        self.encoder = encoder_of(classifier)
        self.pooling = next(layer for layer in layers if isinstance(layer, (ClsPooling, MaskedMeanPooling)))
        self.head = classifier.get_layer("head")
        self.word_embeddings = self.encoder.get_input_embeddings().weight

        hidden_size = int(self.word_embeddings.shape[-1])
        # One traced graph for every batch size and length: eager mode runs BERT op by op, which
        # made the gradients about twice as slow on a laptop CPU.
        self.gradients = tf.function(self._gradients, reduce_retracing=True, input_signature=[
            tf.TensorSpec([None, None, hidden_size], self.word_embeddings.dtype), tf.TensorSpec([None, None], tf.int32)])

    def _gradients(self, embeddings: tf.Tensor, attention_mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Scores of a batch of embedded inputs and the gradient of each score with respect to its embeddings."""
        with tf.GradientTape() as tape:
            tape.watch(embeddings)
            scores = self(embeddings, attention_mask)
        return scores, tape.gradient(scores, embeddings)

    def embed(self, input_ids: np.ndarray) -> tf.Tensor:
        return tf.gather(self.word_embeddings, tf.constant(input_ids, dtype=tf.int32))

    def __call__(self, embeddings: tf.Tensor, attention_mask: tf.Tensor) -> tf.Tensor:
        hidden = self.encoder(None, attention_mask=attention_mask, inputs_embeds=embeddings,
                              training=False).last_hidden_state
        return tf.reshape(self.head(self.pooling(hidden, attention_mask), training=False), [-1])


def baseline_ids(input_ids: np.ndarray, tokenizer: Any) -> np.ndarray:
    """The input with every token but [CLS], [SEP] (and padding) replaced by [PAD]: the same
    comment with its words removed."""
    keep = np.isin(input_ids, [tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id])
    return np.where(keep, input_ids, tokenizer.pad_token_id)


def gradient_sum(scorer: EmbeddingScorer, x: tf.Tensor, x0: tf.Tensor, mask: np.ndarray, alphas: np.ndarray,
                 weights: np.ndarray, batch: int) -> tuple[tf.Tensor, np.ndarray]:
    """Sum of ``weights[i]`` x the gradient of the score at the path point ``x0 + alphas[i] * (x - x0)``,
    and the scores at those points; ``batch`` points go through the model at a time."""
    total, scores = tf.zeros_like(x), []
    for start in range(0, len(alphas), batch):
        alpha = tf.constant(alphas[start:start + batch], dtype=x.dtype)[:, None, None]
        path = x0[None] + alpha * (x - x0)[None]
        masks = tf.constant(np.repeat(mask[None], len(alphas[start:start + batch]), axis=0), dtype=tf.int32)
        values, gradients = scorer.gradients(path, masks)
        step_weights = tf.constant(weights[start:start + batch], dtype=x.dtype)[:, None, None]
        total += tf.reduce_sum(gradients * step_weights, axis=0)
        scores.append(values.numpy())
    return total, np.concatenate(scores)


def integrated_gradients(scorer: EmbeddingScorer, tokenizer: Any, text: str, max_length: int = 128,
                         steps: int = 64, tolerance: float | None = None, max_steps: int = 256,
                         tokens_per_batch: int = 2048) -> Attribution:
    """Attributions of ``text``'s tokens to the toxic probability, by the trapezoid rule with
    ``steps`` intervals on the straight path from the [PAD] baseline to the input embeddings.

    With ``tolerance``, the steps are doubled (up to ``max_steps``) while the completeness error
    exceeds it; each doubling evaluates only the new midpoints (the trapezoid rule nests), so
    refining 64 -> 128 costs 64 more gradients, not 129. The result may still miss the tolerance
    at ``max_steps``: check ``completeness_error``. At most ``tokens_per_batch`` tokens of path
    points go through the model at once, as the gradient tape keeps every activation of a batch.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps!r}")
    encoded = tokenizer([text], truncation=True, max_length=max_length, return_tensors="np")
    ids, mask = encoded["input_ids"][0], encoded["attention_mask"][0]
    x, x0 = scorer.embed(ids), scorer.embed(baseline_ids(ids, tokenizer))
    batch = max(1, tokens_per_batch // len(ids))
    weights = np.ones(steps + 1)
    weights[[0, -1]] = 0.5  # trapezoid: the two ends count half
    total, scores = gradient_sum(scorer, x, x0, mask, np.linspace(0.0, 1.0, steps + 1), weights, batch)
    tokens = tokenizer.convert_ids_to_tokens(ids.tolist())
    while True:
        values = tf.reduce_sum(total / steps * (x - x0), axis=-1).numpy()  # mean gradient x embedding change
        result = Attribution(tokens, values, float(scores[-1]), float(scores[0]), steps)
        if tolerance is None or result.completeness_error <= tolerance or steps * 2 > max_steps:
            return result
        midpoints = (np.arange(steps) + 0.5) / steps
        extra, _ = gradient_sum(scorer, x, x0, mask, midpoints, np.ones(steps), batch)
        total, steps = total + extra, steps * 2


def words(attribution: Attribution) -> list[tuple[str, float]]:
    """Word pieces joined back into words (``id ##iot`` -> ``idiot``) with their attributions
    summed; [CLS] and [SEP] are dropped (they are the same in the baseline, so they get ~0)."""
    joined: list[list[Any]] = []
    for token, value in zip(attribution.tokens, attribution.values):
        if token in ("[CLS]", "[SEP]", "[PAD]"):
            continue
        if token.startswith("##") and joined:
            joined[-1][0] += token[2:]
            joined[-1][1] += float(value)
        else:
            joined.append([token, float(value)])
    return [(word, value) for word, value in joined]


def highlight_html(attribution: Attribution, label: str = "") -> str:
    """The comment as HTML, each word shaded red (pushes towards toxic) or blue (away), with the
    strength scaled to the comment's largest attribution; the exact value shows on hover."""
    pieces = words(attribution)
    scale = max((abs(value) for _, value in pieces), default=0.0) or 1.0
    spans = []
    for word, value in pieces:
        strength = min(abs(value) / scale, 1.0)
        color = f"rgba(220, 40, 40, {strength:.2f})" if value > 0 else f"rgba(40, 90, 220, {strength:.2f})"
        spans.append(f'<span title="{value:+.4f}" style="background:{color};padding:1px 2px;border-radius:3px">'
                     f"{html.escape(word)}</span>")
    header = (f"<b>{html.escape(label)}</b> score {attribution.score:.3f} (baseline {attribution.baseline_score:.3f}; "
              f"completeness error {attribution.completeness_error:.1e})<br>" if label else "")
    return f'<div style="line-height:1.9;margin-bottom:10px">{header}{" ".join(spans)}</div>'


def top_words(attribution: Attribution, count: int = 5) -> list[tuple[str, float]]:
    """The ``count`` words that pushed the score up the most (for a table or the model card)."""
    return sorted(words(attribution), key=lambda item: -item[1])[:count]
