"""Scoring new comments with a saved classifier.

Load once, then score lists of comments. A comment longer than the model's ``max_length`` is
not silently cut: it is split into overlapping windows of tokens, each window is scored, and the
comment gets the highest window score (a comment is toxic if any part of it is).

At most :data:`MAX_WINDOWS` (64) windows are scored per comment, so one huge comment cannot take
minutes and gigabytes: at ``max_length`` 128 that covers about 6,100 word pieces, more than any
Jigsaw comment has (Kaggle cut them at 5,000 characters). A longer comment is scored on its first
32 and last 32 windows (its head and tail); the middle is not scored, and :class:`Windows` lists
such comments in ``capped``. Only the head and tail of a very long text are even tokenized.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toxhelpers import batches, model
from toxhelpers.tokenization import check_texts


MAX_WINDOWS = 64
CHUNK_COMMENTS = 1024  # comments tokenized and scored together: memory stays flat in their number
CHARS_PER_PIECE = 8  # generous (English word pieces average about 4 characters): see _head_and_tail


@dataclass
class Windows:
    """Token windows of a list of comments, and which comment each window belongs to."""

    encoded: dict[str, np.ndarray]
    owner: np.ndarray
    capped: list[int] = field(default_factory=list)  # comments scored on head and tail windows only


def token_windows(tokenizer: Any, texts: list[str], max_length: int, stride: int | None = None,
                  max_windows: int = MAX_WINDOWS) -> Windows:
    """Split each comment's word pieces into windows of ``max_length - 2`` (room for [CLS] and
    [SEP]) that overlap by ``stride`` pieces, each framed and padded like the training data.

    A comment needing more than ``max_windows`` windows keeps its first ``max_windows // 2`` and
    its last ``max_windows - max_windows // 2`` (see the module docstring)."""
    body = max_length - 2
    stride = body // 4 if stride is None else stride
    if not 0 <= stride < body:
        raise ValueError(f"stride must be in [0, {body}), got {stride}")
    if isinstance(max_windows, bool) or not isinstance(max_windows, (int, np.integer)) or max_windows < 2:
        raise ValueError(f"max_windows must be an integer >= 2 (a head and a tail window), got {max_windows!r}")
    step = body - stride
    reach = CHARS_PER_PIECE * (body + (max_windows - 1) * step)  # more characters: head and tail only
    pieces = _pieces(tokenizer, [text if len(text) <= reach else "" for text in texts])
    rows, owners, capped = [], [], []
    for index, (text, ids) in enumerate(zip(texts, pieces)):
        windows, only_head_and_tail = _comment_windows(tokenizer, text, ids, body, step, max_windows, reach)
        rows += [[tokenizer.cls_token_id, *window, tokenizer.sep_token_id] for window in windows]
        owners += [index] * len(windows)
        if only_head_and_tail:
            capped.append(index)
    input_ids = np.full((len(rows), max_length), tokenizer.pad_token_id, dtype=np.int32)
    attention_mask = np.zeros((len(rows), max_length), dtype=np.int32)
    for row, ids in enumerate(rows):
        input_ids[row, :len(ids)] = ids
        attention_mask[row, :len(ids)] = 1
    return Windows({"input_ids": input_ids, "attention_mask": attention_mask}, np.array(owners), capped)


def _pieces(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Word pieces of each text, no special tokens, nothing cut."""
    return tokenizer(texts, add_special_tokens=False, truncation=False, return_attention_mask=False,
                     return_token_type_ids=False, verbose=False)["input_ids"]


def _windows(ids: list[int], body: int, step: int) -> list[list[int]]:
    """Windows of ``body`` pieces every ``step`` pieces, the last one reaching the end (one window,
    maybe empty, for a short comment)."""
    overlap = body - step
    return [ids[start:start + body] for start in range(0, max(len(ids) - overlap, 1), step)]


def _comment_windows(tokenizer: Any, text: str, ids: list[int], body: int, step: int, max_windows: int,
                     reach: int) -> tuple[list[list[int]], bool]:
    """One comment's windows (``ids``: its pieces, unless it is longer than ``reach`` characters),
    and whether only its head and tail windows were kept."""
    head, tail = max_windows // 2, max_windows - max_windows // 2
    if len(text) > reach:
        kept = _head_and_tail(tokenizer, text, body, step, head, tail)
        if kept is not None:
            return kept, True
        ids = _pieces(tokenizer, [text])[0]
    windows = _windows(ids, body, step)
    if len(windows) <= max_windows:
        return windows, False
    return windows[:head] + windows[-tail:], True


def _head_and_tail(tokenizer: Any, text: str, body: int, step: int, head: int, tail: int) -> list[list[int]] | None:
    """The first ``head`` and last ``tail`` windows of a text too long to tokenize whole, from its
    first and last characters only (cut at white space, so no word is split). None when those
    characters hold too few pieces (mostly white space, say): then the whole text is tokenized."""
    reach = CHARS_PER_PIECE * (body + (max(head, tail) - 1) * step)
    first = (text[:reach].rsplit(maxsplit=1) or [""])[0]  # without the word the cut may have split
    last = (text[-reach:].split(maxsplit=1) or [""])[-1]
    head_windows, tail_windows = (_windows(ids, body, step) for ids in _pieces(tokenizer, [first, last]))
    if len(head_windows) <= head or len(tail_windows) <= tail:
        return None
    return head_windows[:head] + tail_windows[-tail:]


def check_threshold(threshold: Any) -> float:
    """A decision threshold: a real number in [0, 1] (text, NaN or 1.5 used to pass, or fail in numpy)."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)) \
            or not 0 <= float(threshold) <= 1:
        raise ValueError(f"threshold must be a number in [0, 1], got {threshold!r}")
    return float(threshold)


def check_max_length(max_length: Any) -> int:
    """Tokens per window: [CLS], [SEP] and at least one word piece."""
    if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < 3:
        raise ValueError(f"max_length must be an integer >= 3 ([CLS], [SEP] and a word piece), got {max_length!r}")
    return int(max_length)


Predict = Callable[[dict[str, np.ndarray]], np.ndarray]
"""Any backend: a batch ``{"input_ids", "attention_mask"}`` (int32, batch x length) -> probabilities."""


class ToxicityScorer:
    """Comments in, probabilities out, whatever runs the model: ``ToxicityScorer.load(folder)``
    for the saved TensorFlow classifier, :func:`serving.load_onnx_scorer` for ONNX Runtime.

    A comment longer than ``max_length`` tokens is scored in overlapping windows and gets its
    highest window score (see the module docstring), so an insult late in a long comment is not
    silently cut off. Windows are batched by length with :func:`batches.predict_with`, and built
    ``chunk_size`` comments at a time: a million short comments used to be turned into a million
    windows at once (3.9 GB with a model that cost nothing).
    """

    def __init__(self, predict: Predict, tokenizer: Any, max_length: int, threshold: float = 0.5,
                 batch_size: int = 64, chunk_size: int = CHUNK_COMMENTS):
        self.predict, self.tokenizer = predict, tokenizer
        self.max_length, self.threshold = check_max_length(max_length), check_threshold(threshold)
        self.batch_size = batches.check_batch_size(batch_size)
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
            raise ValueError(f"chunk_size must be an integer >= 1 (comments scored together), got {chunk_size!r}")
        self.chunk_size = int(chunk_size)

    @classmethod
    def from_keras(cls, classifier: Any, tokenizer: Any, spec: model.ClassifierSpec,
                   batch_size: int = 64) -> "ToxicityScorer":
        """The TensorFlow classifier as a backend (one traced graph for every batch shape); the
        threshold is the one chosen on validation and saved in ``spec``."""
        graph = batches.inference_function(classifier)
        return cls(lambda inputs: graph(inputs).numpy()[:, 0], tokenizer, spec.max_length, spec.threshold, batch_size)

    @classmethod
    def load(cls, folder: str | os.PathLike, batch_size: int = 64) -> "ToxicityScorer":
        """A classifier saved by :func:`model.save_classifier` (lesson 6), with TensorFlow."""
        return cls.from_keras(*model.load_classifier(Path(folder)), batch_size=batch_size)

    def windows(self, texts: list[str]) -> Windows:
        """The token windows the comments are scored in (checked to be a list of strings)."""
        return token_windows(self.tokenizer, check_texts(texts), self.max_length)

    def score(self, texts: list[str]) -> np.ndarray:
        """Probability that each comment is toxic (the highest over its token windows)."""
        texts = check_texts(texts)
        scores = np.zeros(len(texts), dtype=np.float32)
        for start in range(0, len(texts), self.chunk_size):
            windows = self.windows(texts[start:start + self.chunk_size])
            window_scores = np.asarray(batches.predict_with(self.predict, windows.encoded, self.batch_size),
                                       dtype=np.float32).reshape(-1)
            np.maximum.at(scores, start + windows.owner, window_scores)
        return scores

    def classify(self, texts: list[str]) -> list[bool]:
        """True for comments scored at or above the threshold."""
        return [bool(score >= self.threshold) for score in self.score(texts)]
