"""Unit tests for toxhelpers.augment: one text augmented reproducibly, awkward inputs, the contextual guard."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from augment_samples import AWKWARD, LONG, TEXT, frame, tiny_splits
from toxhelpers import augment, data, oversampling, word_vectors
from toxhelpers.artifacts import sha256_file, write_parquet


# --- one text -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", augment.OFFLINE_METHODS)
def test_same_input_and_seed_give_the_same_text(augmenters, method):
    augmenter = augmenters[method]
    first = augment.augment_text(augmenter, TEXT, seed=7)
    assert augment.augment_text(augmenter, TEXT, seed=7) == first
    assert not augment.same_words(first, TEXT), f"{method} changed nothing in a 25-word comment"
    outputs = {augment.augment_text(augmenter, TEXT, seed=s) for s in range(6)}
    assert len(outputs) > 1, f"{method} ignores the seed"


@pytest.mark.parametrize("method", augment.OFFLINE_METHODS)
def test_awkward_inputs_do_not_crash(augmenters, method):
    for text in AWKWARD:
        result = augment.augment_text(augmenters[method], text, seed=1)
        assert isinstance(result, str)
        if not text.strip():
            assert result == text
        elif any(ch.isalnum() for ch in text):
            assert any(ch.isalnum() for ch in result), f"{method} left no word in {text[:20]!r}: {result!r}"


def test_seeding_leaves_the_callers_random_state_alone(augmenters):
    import random

    random.seed(3)
    np.random.seed(3)
    expected = (random.random(), np.random.random())
    random.seed(3)
    np.random.seed(3)
    augment.augment_text(augmenters["random_swap"], TEXT, seed=99)
    assert (random.random(), np.random.random()) == expected


def test_results_do_not_depend_on_python_hash_seed(augmenters, artifacts):
    """nlpaug's spelling dictionary is built through a set; without sorting, a new process
    (another PYTHONHASHSEED) would pick other misspellings for the same seed."""
    here = {name: augment.augment_text(aug, TEXT, seed=5) for name, aug in augmenters.items()}
    script = (
        "import json, sys\n"
        "from toxhelpers import augment\n"
        f"augs = {{m: augment.make_augmenter(m, 0.1, artifacts_dir={str(artifacts)!r}) for m in augment.OFFLINE_METHODS}}\n"
        f"print(json.dumps({{m: augment.augment_text(a, {TEXT!r}, seed=5) for m, a in augs.items()}}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONHASHSEED": "12345", "USE_TF": "0"})
    assert json.loads(result.stdout.strip().splitlines()[-1]) == here


# --- the contextual method ------------------------------------------------------------------------


def test_contextual_refuses_clearly_without_a_masked_lm(monkeypatch, tmp_path):
    from toxhelpers import pretrained

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(augment.ContextualUnavailable, match="hub is not reachable") as offline:
        augment.make_augmenter("contextual", contextual_checkpoint="distilbert-base-uncased")
    assert "word_embedding" in str(offline.value) and "random_swap" in str(offline.value)
    with pytest.raises(augment.ContextualUnavailable, match="no masked-LM head"):
        augment.resolve_masked_lm(pretrained.BUNDLED)
    tf_only = tmp_path / "tf-only"
    tf_only.mkdir()
    (tf_only / "config.json").write_text(json.dumps({"model_type": "distilbert"}))
    (tf_only / "tf_model.h5").write_bytes(b"")
    with pytest.raises(augment.ContextualUnavailable, match="no PyTorch weights"):
        augment.resolve_masked_lm(str(tf_only))
    monkeypatch.setattr(augment.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(augment.ContextualUnavailable, match="PyTorch is not installed"):
        augment.resolve_masked_lm("distilbert-base-uncased")


@pytest.fixture(scope="module")
def tiny_masked_lm(tmp_path_factory) -> Path:
    """A 1-layer, 32-wide BertForMaskedLM with random weights and the bundled (DistilBERT)
    vocabulary and tokenizer, saved like a hub checkpoint."""
    torch = pytest.importorskip("torch")
    from transformers import BertConfig, BertForMaskedLM

    from toxhelpers import pretrained

    folder = tmp_path_factory.mktemp("tiny") / "tiny-bert-mlm"
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=64)
    BertForMaskedLM(config).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(pretrained.bundled_encoder_dir() / name, folder / name)
    return folder


@pytest.fixture
def one_torch_thread():
    """The tiny model is quicker on one thread, and much quicker on a busy shared machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_contextual_code_path_on_a_tiny_random_masked_lm(tiny_masked_lm, one_torch_thread):
    """CODE PATH ONLY: the masked LM here has random weights, so the words it puts in are random
    and say nothing about the method's quality. What is tested: the checkpoint checks accept a
    PyTorch masked-LM folder, nlpaug's ContextualWordEmbsAug runs with model_type "bert" (its
    "distilbert" type crashes), its list result becomes a string, seeding torch makes it
    reproducible, awkward inputs (including a text longer than the model's 64 positions) work."""
    assert augment.resolve_masked_lm(str(tiny_masked_lm)) == (tiny_masked_lm, "bert")
    augmenter = augment.make_augmenter("contextual", 0.1, contextual_checkpoint=str(tiny_masked_lm))
    first = augment.augment_text(augmenter, TEXT, seed=3)
    assert isinstance(first, str) and first == augment.augment_text(augmenter, TEXT, seed=3)
    assert not augment.same_words(first, TEXT.lower())
    for text in AWKWARD:
        result = augment.augment_text(augmenter, text, seed=1)
        assert isinstance(result, str) and (result == text if not text.strip() else result.strip())
    train = tiny_splits()["train"]
    balanced, run = oversampling.oversample_toxic(train, augmenter, "contextual", progress=False)
    assert run.rows_added == 6 and balanced[data.TARGET_COLUMN].mean() == 0.5


def test_identical_token_share_counts_pairs_across_tokenizer_chunks(tokenizer, monkeypatch):
    """The share is counted a chunk of comments at a time (memory at Kaggle's size); chunk
    borders (2 per chunk over 5 pairs) change nothing."""
    from toxhelpers import tokenization

    texts = ["a cat", "You are rude .", "same words", "hello world", "x"]
    others = ["a  cat", "You are rude.", "other words", "hello  world", "y"]
    whole = augment.identical_token_share(tokenizer, texts, others)
    monkeypatch.setattr(tokenization, "CHUNK_ROWS", 2)
    assert augment.identical_token_share(tokenizer, texts, others) == whole == 3 / 5
