"""Scoring new comments with a saved classifier.

Load once, then score lists of comments. A comment longer than the model's ``max_length`` is
not silently cut: it is split into overlapping windows of tokens, each window is scored, and the
comment gets the highest window score (a comment is toxic if any part of it is).
"""

from __future__ import annotations

import os
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
