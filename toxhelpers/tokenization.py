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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toxhelpers.artifacts import read_arrays, write_arrays

TOKENS_DIR = "tokens"


def check_texts(texts: Any) -> list[str]:
    """The comments as a list of strings; anything else is one clear error."""
    if isinstance(texts, str):
        raise TypeError("expected a list of comments, got a single string; wrap it in a list")
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"expected a list of comments (strings), got {type(texts).__name__}") from None
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"comment {index} is {type(text).__name__} ({text!r:.40}); expected a string")
    return texts


def encode(tokenizer: Any, texts: Sequence[str], max_length: int = 128) -> dict[str, np.ndarray]:
    """Token ids and attention masks, truncated and padded to exactly ``max_length``."""
    if not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be an integer >= 2 ([CLS] and [SEP]), got {max_length!r}")
    texts = check_texts(texts)
    if not texts:
        empty = np.zeros((0, max_length), dtype=np.int32)
        return {"input_ids": empty, "attention_mask": empty.copy()}
    batch = tokenizer(texts, max_length=max_length, truncation=True, padding="max_length",
                      return_token_type_ids=False, return_attention_mask=True, return_tensors="np")
    return {"input_ids": batch["input_ids"].astype(np.int32),
            "attention_mask": batch["attention_mask"].astype(np.int32)}


def token_lengths(tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
    """Length of each comment in tokens, special tokens included, before any truncation."""
    encoded = tokenizer(check_texts(texts), add_special_tokens=True, truncation=False,
                        return_attention_mask=False, return_token_type_ids=False, verbose=False)
    return np.array([len(ids) for ids in encoded["input_ids"]], dtype=np.int64)


def show_tokens(tokenizer: Any, text: str, max_length: int) -> list[tuple[str, int, int]]:
    """(token, id, mask) triples of one encoded comment: what the encoder actually sees."""
    encoded = encode(tokenizer, [text], max_length)
    ids = encoded["input_ids"][0].tolist()
    return list(zip(tokenizer.convert_ids_to_tokens(ids), ids, encoded["attention_mask"][0].tolist()))


def throughput(tokenizer: Any, texts: Sequence[str], max_length: int = 128, repeats: int = 3) -> float:
    """Comments encoded per second (best of ``repeats``): a benchmark, never a test condition."""
    texts = check_texts(texts)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        encode(tokenizer, texts, max_length)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def tokens_path(artifacts_dir: str | os.PathLike, split: str) -> Path:
    return Path(artifacts_dir) / TOKENS_DIR / f"{split}.npz"


def save_encoded(artifacts_dir: str | os.PathLike, split: str, encoded: dict[str, np.ndarray],
                 labels: np.ndarray, ids: Sequence[str]) -> Path:
    """Store one split's arrays with its labels and row ids (so predictions can be traced back)."""
    return write_arrays({**encoded, "label": np.asarray(labels, dtype=np.int32),
                         "id": np.asarray(list(ids), dtype=str)}, tokens_path(artifacts_dir, split))


TRAINING_SETS = ("unbalanced", "balanced")


def training_split(training_set: str) -> str:
    """The encoded split a training set is stored as: ``train`` or ``train_balanced``."""
    if training_set not in TRAINING_SETS:
        raise ValueError(f"training_set must be one of {TRAINING_SETS}, got {training_set!r}")
    return "train" if training_set == "unbalanced" else "train_balanced"


def load_encoded(artifacts_dir: str | os.PathLike, split: str) -> dict[str, np.ndarray]:
    """A split encoded by 03_tokenization: input_ids, attention_mask, label, id."""
    producer = "03_tokenization.ipynb"
    if split == "train_balanced" and not tokens_path(artifacts_dir, split).exists():
        producer = "02_augmentation.ipynb, then 03_tokenization.ipynb"
    return read_arrays(tokens_path(artifacts_dir, split), produced_by=producer)


CHECKPOINT_RECORD = "checkpoint.json"


def record_checkpoint(artifacts_dir: str | os.PathLike, checkpoint: Any) -> Path:
    """Note which pretrained weights the token ids were made for (the model must use the same)."""
    from toxhelpers.artifacts import write_json

    return write_json(checkpoint.describe(), Path(artifacts_dir) / TOKENS_DIR / CHECKPOINT_RECORD)


def check_checkpoint(artifacts_dir: str | os.PathLike, checkpoint: Any) -> None:
    """Fail when a later lesson resolves other weights than 03_tokenization tokenized for."""
    from toxhelpers.artifacts import read_json, require

    recorded = read_json(require(Path(artifacts_dir) / TOKENS_DIR / CHECKPOINT_RECORD,
                                 produced_by="03_tokenization.ipynb"))
    if recorded["weights_sha256"] != checkpoint.weights_sha256:
        raise ValueError(
            f"03_tokenization encoded the comments for {recorded['model_id']} "
            f"({recorded['weights_sha256'][:12]}...), but this lesson resolved "
            f"{checkpoint.describe()['model_id']} ({checkpoint.weights_sha256[:12]}...). Use the same "
            "checkpoint parameter in every lesson, or rerun 03_tokenization with this one."
        )
