"""Turning comments into the fixed-size integer arrays a Transformer encoder reads.

A comment becomes ``[CLS] word pieces [SEP]``, cut at ``max_length`` tokens and padded with
``[PAD]`` to exactly ``max_length``, plus an attention mask (1 = real token, 0 = padding) so
the encoder ignores the padding. Token type ids are not needed: there is one segment per input.

Every row is padded to the same length on purpose: fixed-shape arrays stay valid whatever the
batch size (a ragged last batch cannot break them). Lesson 6 then shows how to trim each
batch back to its longest row to stop paying for padding.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence, Set
from pathlib import Path
from typing import Any

import numpy as np

from toxhelpers.artifacts import LESSONS, artifact_path, read_arrays, read_json, require_artifact, write_arrays, write_json

CHUNK_ROWS = 4096  # comments per tokenizer call: its temporary lists stay ~100 MB at any data size


def check_texts(texts: Any, max_length: int | None = None) -> list[str]:
    """The comments as a list of strings (and ``max_length``, when given, at least 2); anything
    else is one clear error naming the comment.

    Refused, each with its own message: a single string or ``bytes`` (iterating them gives
    characters or integers), a dict (its keys would be scored), a set (its order is arbitrary,
    so scores could not be matched back to comments), anything not a string, and text that is
    not valid Unicode (a lone surrogate, which the tokenizer rejects with a raw TypeError)."""
    if max_length is not None and (not isinstance(max_length, int) or max_length < 2):
        raise ValueError(f"max_length must be an integer >= 2 ([CLS] and [SEP]), got {max_length!r}")
    if isinstance(texts, (str, bytes, bytearray)):
        kind = "a single string" if isinstance(texts, str) else f"{type(texts).__name__} (decode it to text first)"
        raise TypeError(f"expected a list of comments, got {kind}; wrap it in a list")
    if isinstance(texts, (Mapping, Set)):
        why = "its keys are not comments" if isinstance(texts, Mapping) else "its order is arbitrary"
        raise TypeError(f"expected a list of comments, got a {type(texts).__name__} ({why}); pass a list")
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"expected a list of comments (strings), got {type(texts).__name__}") from None
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"comment {index} is {type(text).__name__} ({text!r:.40}); expected a string")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(f"comment {index} is not valid Unicode text (a lone surrogate {text[error.start]!r} at "
                             f"character {error.start}); expected text that encodes as UTF-8") from None
    return texts


def encode(tokenizer: Any, texts: Sequence[str], max_length: int = 128) -> dict[str, np.ndarray]:
    """Token ids and attention masks, cut and padded to exactly ``max_length`` tokens per comment.

    Padding every comment to the same length keeps the arrays one shape whatever the batch size,
    so a ragged last batch cannot break a model built for fixed-shape inputs. A comment is one
    segment, so token type ids (which segment a token belongs to) are left out. The comments go
    through the tokenizer ``CHUNK_ROWS`` at a time into arrays made once: one call on 104,000
    comments held 2.9 GB of the tokenizer's temporary lists (26 KB per comment) until it returned.
    """
    texts = check_texts(texts, max_length)  # one clear error for a lone string, a non-string or max_length < 2
    encoded = {name: np.zeros((len(texts), max_length), dtype=np.int32) for name in ("input_ids", "attention_mask")}
    for start in range(0, len(texts), CHUNK_ROWS):
        batch = tokenizer(texts[start:start + CHUNK_ROWS], max_length=max_length, truncation=True,
                          padding="max_length", return_token_type_ids=False, return_tensors="np")
        for name, array in encoded.items():
            array[start:start + CHUNK_ROWS] = batch[name]
    return encoded


def token_lengths(tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
    """Length of each comment in tokens, special tokens included, before any truncation (in chunks
    of ``CHUNK_ROWS`` comments, as :func:`encode`: only the lengths are kept)."""
    texts = check_texts(texts)
    lengths = np.zeros(len(texts), dtype=np.int64)
    for start in range(0, len(texts), CHUNK_ROWS):
        encoded = tokenizer(texts[start:start + CHUNK_ROWS], add_special_tokens=True, truncation=False,
                            return_attention_mask=False, return_token_type_ids=False, verbose=False)
        lengths[start:start + CHUNK_ROWS] = [len(ids) for ids in encoded["input_ids"]]
    return lengths


def throughput(tokenizer: Any, texts: Sequence[str], max_length: int = 128, repeats: int = 3) -> float:
    """Comments encoded per second (best of ``repeats``): a benchmark, never a test condition."""
    texts = check_texts(texts)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        encode(tokenizer, texts, max_length)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def save_encoded(artifacts_dir: str | os.PathLike, split: str, encoded: dict[str, np.ndarray],
                 labels: np.ndarray, ids: Sequence[str]) -> Path:
    """Store one split's arrays with its labels and row ids (so predictions can be traced back)."""
    return write_arrays({**encoded, "label": np.asarray(labels, dtype=np.int32),
                         "id": np.asarray(list(ids), dtype=str)}, artifact_path(artifacts_dir, "tokens", split=split))


TRAINING_SETS = ("unbalanced", "balanced")


def training_split(training_set: str) -> str:
    """The encoded split a training set is stored as: ``train`` or ``train_balanced``."""
    if training_set not in TRAINING_SETS:
        raise ValueError(f"training_set must be one of {TRAINING_SETS}, got {training_set!r}")
    return "train" if training_set == "unbalanced" else "train_balanced"


def load_encoded(artifacts_dir: str | os.PathLike, split: str, ids: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """A split encoded by lesson 3: input_ids, attention_mask, label, id. With ``ids`` (the split's
    rows as a lesson holds them), the arrays must hold exactly those rows in that order, so their
    scores line up with the lesson's labels; anything else is one clear error."""
    path = artifact_path(artifacts_dir, "tokens", split=split)
    if split == "train_balanced" and not path.exists():
        raise FileNotFoundError(f"{path} does not exist: the "
                                f"balanced training set is made by {LESSONS['augmentation']} and then encoded "
                                f"by {LESSONS['tokenization']}; run both with the same artifacts_dir.")
    arrays = read_arrays(require_artifact(artifacts_dir, "tokens", split=split))
    wanted = None if ids is None else np.asarray(list(ids)).astype(str)
    if wanted is not None and not np.array_equal(arrays["id"], wanted):
        raise ValueError(f"{path} does not hold the {len(wanted):,} rows of the {split} split given, in their "
                         f"order: rerun {LESSONS['tokenization']} after {LESSONS['data']} with the same artifacts_dir")
    return arrays


def record_checkpoint(artifacts_dir: str | os.PathLike, checkpoint: Any) -> Path:
    """Note which pretrained weights the token ids were made for: the one place the walkthrough
    decides the checkpoint (later lessons read it with :func:`tokenized_checkpoint`)."""
    return write_json(checkpoint.describe(), artifact_path(artifacts_dir, "tokenized_for"))


def tokenized_checkpoint(artifacts_dir: str | os.PathLike, announce: bool = True) -> Any:
    """The pretrained weights lesson 3 encoded the comments for, for lessons 4-6.

    Token ids only mean something to the vocabulary they were made with, so the checkpoint is
    decided once, in lesson 3, and read back here instead of being asked again. The weights are
    hashed again: weights changed since lesson 3 are an error, not a silent mismatch."""
    from toxhelpers import pretrained

    return pretrained.checkpoint_from_record(read_json(require_artifact(artifacts_dir, "tokenized_for")), announce)
