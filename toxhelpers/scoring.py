"""Scoring new comments with a saved classifier.

Load once, then score lists of comments. A comment longer than the model's ``max_length`` is
not silently cut: it is split into overlapping windows of tokens, each window is scored, and the
comment gets the highest window score (a comment is toxic if any part of it is).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toxhelpers import batches, model
from toxhelpers.tokenization import check_texts


@dataclass
class Windows:
    """Token windows of a list of comments, and which comment each window belongs to."""

    encoded: dict[str, np.ndarray]
    owner: np.ndarray


def token_windows(tokenizer: Any, texts: list[str], max_length: int, stride: int | None = None) -> Windows:
    """Split each comment's word pieces into windows of ``max_length - 2`` (room for [CLS] and
    [SEP]) that overlap by ``stride`` pieces, each framed and padded like the training data."""
    body = max_length - 2
    stride = body // 4 if stride is None else stride
    if not 0 <= stride < body:
        raise ValueError(f"stride must be in [0, {body}), got {stride}")
    pieces = tokenizer(texts, add_special_tokens=False, truncation=False, return_attention_mask=False,
                       return_token_type_ids=False, verbose=False)["input_ids"]
    rows, owners = [], []
    for index, ids in enumerate(pieces):
        starts = range(0, max(len(ids) - stride, 1), body - stride)
        for start in starts:
            rows.append([tokenizer.cls_token_id, *ids[start:start + body], tokenizer.sep_token_id])
            owners.append(index)
    input_ids = np.full((len(rows), max_length), tokenizer.pad_token_id, dtype=np.int32)
    attention_mask = np.zeros((len(rows), max_length), dtype=np.int32)
    for row, ids in enumerate(rows):
        input_ids[row, :len(ids)] = ids
        attention_mask[row, :len(ids)] = 1
    return Windows({"input_ids": input_ids, "attention_mask": attention_mask}, np.array(owners))


class ToxicityScorer:
    """A saved classifier ready to score comments: ``ToxicityScorer.load(folder).score([...])``."""

    def __init__(self, classifier: Any, tokenizer: Any, spec: model.ClassifierSpec):
        self.classifier, self.tokenizer, self.spec = classifier, tokenizer, spec

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "ToxicityScorer":
        return cls(*model.load_classifier(Path(folder)))

    @property
    def threshold(self) -> float:
        """The decision threshold chosen on validation when the model was saved."""
        return self.spec.threshold

    def score(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Probability that each comment is toxic (the highest over its token windows)."""
        texts = check_texts(texts)
        if not texts:
            return np.zeros(0, dtype=np.float32)
        windows = token_windows(self.tokenizer, texts, self.spec.max_length)
        window_scores = batches.predict(self.classifier, windows.encoded, batch_size)[:, 0]
        scores = np.zeros(len(texts), dtype=np.float32)
        np.maximum.at(scores, windows.owner, window_scores)
        return scores

    def classify(self, texts: list[str]) -> list[bool]:
        """True for comments scored at or above the saved threshold."""
        return [bool(score >= self.threshold) for score in self.score(texts)]


Predict = Callable[[dict[str, np.ndarray]], np.ndarray]
"""Any backend: a batch ``{"input_ids", "attention_mask"}`` (int32, batch x length) -> probabilities."""


def predict_bucketed(predict: Predict, encoded: dict[str, np.ndarray], batch_size: int = 64,
                     step: int = 16) -> np.ndarray:
    """``predict`` over all rows, in batches of similar length each cut to its bucket width (as
    :func:`batches.predict` does for Keras models), probabilities returned in the rows' order."""
    lengths = batches.row_lengths(encoded)
    if len(lengths) == 0:
        raise ValueError("nothing to predict: the encoded input has no rows")
    widths = batches.bucket_widths(encoded["input_ids"].shape[1], step)
    order = np.argsort(lengths, kind="stable")
    probabilities = np.zeros(len(lengths), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        width = next(width for width in widths if width >= lengths[rows].max())
        batch = {name: np.ascontiguousarray(encoded[name][rows, :width], dtype=np.int32)
                 for name in batches.INPUT_NAMES}
        probabilities[rows] = np.asarray(predict(batch), dtype=np.float32).reshape(-1)
    return probabilities


class TextScorer:
    """Comments in, probabilities out, whatever runs the model (TensorFlow, ONNX Runtime...).

    The same windowing as :class:`ToxicityScorer`: a comment longer than ``max_length`` tokens is
    scored in overlapping windows and gets its highest window score, so a long comment whose
    insult comes late is not silently cut before the insult.
    """

    def __init__(self, predict: Predict, tokenizer: Any, max_length: int, threshold: float = 0.5,
                 batch_size: int = 64):
        self.predict, self.tokenizer = predict, tokenizer
        self.max_length, self.threshold, self.batch_size = max_length, threshold, batch_size

    @classmethod
    def from_keras(cls, classifier: Any, tokenizer: Any, spec: model.ClassifierSpec, batch_size: int = 64) -> "TextScorer":
        """The TensorFlow classifier as a backend (one traced graph for every batch shape)."""
        graph = batches.inference_function(classifier)
        return cls(lambda inputs: graph(inputs).numpy()[:, 0], tokenizer, spec.max_length, spec.threshold, batch_size)

    def windows(self, texts: list[str]) -> Windows:
        """The token windows the comments are scored in (checked to be a list of strings)."""
        return token_windows(self.tokenizer, check_texts(texts), self.max_length)

    def score(self, texts: list[str]) -> np.ndarray:
        """Probability that each comment is toxic (the highest over its token windows)."""
        texts = check_texts(texts)
        if not texts:
            return np.zeros(0, dtype=np.float32)
        windows = self.windows(texts)
        window_scores = predict_bucketed(self.predict, windows.encoded, self.batch_size)
        scores = np.zeros(len(texts), dtype=np.float32)
        np.maximum.at(scores, windows.owner, window_scores)
        return scores

    def classify(self, texts: list[str]) -> list[bool]:
        """True for comments scored at or above the threshold."""
        return [bool(score >= self.threshold) for score in self.score(texts)]
