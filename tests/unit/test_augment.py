"""Unit tests for toxhelpers.augment: determinism, awkward inputs, no leakage, the contextual guard."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from toxhelpers import augment, data
from toxhelpers.artifacts import sha256_file, write_parquet

TEXT = ("You are a stupid idiot and everybody on this page knows it. Stop editing my article, "
        "you ignorant fool! I will report you to the admins.")
LONG = ("You are an idiot and everybody knows it. Stop reverting my edits! " * 80)[:5000]
AWKWARD = ["", "   ", "\n\t ", "idiot", "IDIOT!", "?!", LONG]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def augmenters(artifacts) -> dict:
    """Every offline augmenter, built once (the word vectors are exported into ``artifacts``)."""
    return {name: augment.make_augmenter(name, 0.1, artifacts_dir=artifacts) for name in augment.OFFLINE_METHODS}


def frame(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    """A split in 01_data's layout from (id, text, label) rows."""
    out = pd.DataFrame(rows, columns=[data.ID_COLUMN, data.TEXT_COLUMN, data.TARGET_COLUMN])
    for column in data.LABEL_COLUMNS:
        out[column] = out[data.TARGET_COLUMN] if column in ("toxic", "insult") else 0
    out = out[[data.ID_COLUMN, data.TEXT_COLUMN, *data.LABEL_COLUMNS, data.TARGET_COLUMN]]
    return out.astype({data.ID_COLUMN: "string", data.TEXT_COLUMN: "string",
                       **{c: "int8" for c in (*data.LABEL_COLUMNS, data.TARGET_COLUMN)}})


def tiny_splits() -> dict[str, pd.DataFrame]:
    toxic = ["you are a stupid idiot and a fool", "shut up you ignorant moron, nobody likes you",
             "go to hell. you are a pathetic loser", "what a dumb and useless editor you are"]
    clean = [f"thanks for fixing the article about paris number {i}" for i in range(10)]
    train = frame([(f"t{i}", text, 1) for i, text in enumerate(toxic)]
                  + [(f"c{i}", text, 0) for i, text in enumerate(clean)])
    validation = frame([("v0", "you idiot", 1), ("v1", "nice work on the page", 0)])
    test = frame([("x0", "moron", 1), ("x1", "see the talk page", 0)])
    return {"train": train, "validation": validation, "test": test}


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


def test_word_vectors_are_exported_once_and_have_meaningful_neighbours(artifacts, augmenters):
    from toxhelpers import pretrained

    sha = pretrained.resolve_checkpoint(pretrained.BUNDLED, announce=False).weights_sha256
    path = augment.word_vectors_path(artifacts, sha)
    assert path.is_file()
    stamp = path.stat().st_mtime_ns
    assert augment.ensure_word_vectors(artifacts) == path and path.stat().st_mtime_ns == stamp
    vectors = augment.load_word_vectors(path)
    words = vectors.get_vocab()
    assert 15_000 < len(words) < 30_522 and "paris" in words and "PARIS" in words
    assert not any(w.startswith("##") or w.startswith("[") for w in words)
    assert {"france", "london"} & set(augment.substitution_candidates(vectors, "paris"))
    assert {"stupid", "fool", "fools"} & set(augment.substitution_candidates(vectors, "idiot"))
    assert augment.substitution_candidates(vectors, "IDIOT")[0].isupper()
    assert "editing" not in augment.substitution_candidates(vectors, "edit")  # a form of the same word


# --- the training set ------------------------------------------------------------------------------


def test_oversampling_balances_the_training_split_only(augmenters):
    splits = tiny_splits()
    train = splits["train"]
    balanced, run = augment.oversample_toxic(train, augmenters["random_swap"], "random_swap", progress=False)
    counts = balanced[data.TARGET_COLUMN].value_counts()
    assert counts[1] == counts[0] == 10 and run.rows_added == 6
    new = balanced[balanced["augmented"]]
    assert set(new["source_id"]) <= set(train.loc[train[data.TARGET_COLUMN] == 1, data.ID_COLUMN])
    assert all(i == f"{s}-aug{i.rsplit('aug', 1)[1]}" for i, s in zip(new[data.ID_COLUMN], new["source_id"]))
    assert (new["method"] == "random_swap").all() and balanced[data.ID_COLUMN].is_unique
    originals = balanced[~balanced["augmented"]]
    assert (originals["source_id"] == originals[data.ID_COLUMN]).all()
    checked = augment.check_no_leakage(balanced, train, {k: splits[k] for k in ("validation", "test")})
    assert checked["augmented_rows"] == 6


def test_leakage_checks_catch_held_out_rows(augmenters):
    splits = tiny_splits()
    balanced, _ = augment.oversample_toxic(splits["train"], augmenters["random_swap"], "random_swap",
                                           progress=False)
    held_out = {k: splits[k] for k in ("validation", "test")}
    smuggled = balanced.copy()
    smuggled.loc[smuggled.index[-1], "source_id"] = "v0"
    with pytest.raises(AssertionError, match="non-training"):
        augment.check_no_leakage(smuggled, splits["train"], held_out)
    relabelled = balanced.copy()
    relabelled.loc[relabelled.index[-1], data.TARGET_COLUMN] = 0
    with pytest.raises(AssertionError, match="labels"):
        augment.check_no_leakage(relabelled, splits["train"], held_out)
    with pytest.raises(AssertionError, match="differ from the training split"):
        augment.check_no_leakage(balanced.drop(index=0), splits["train"], held_out)


def test_same_input_and_seed_give_the_same_frame_and_a_cap_gives_a_prefix(augmenters):
    train = tiny_splits()["train"]
    aug = augmenters["word_embedding"]
    first, _ = augment.oversample_toxic(train, aug, "word_embedding", seed=11, progress=False)
    again, _ = augment.oversample_toxic(train, aug, "word_embedding", seed=11, progress=False)
    pd.testing.assert_frame_equal(first, again)
    capped, _ = augment.oversample_toxic(train, aug, "word_embedding", seed=11, max_augmented_rows=3,
                                         progress=False)
    pd.testing.assert_frame_equal(capped, first.iloc[: len(train) + 3])
    other, _ = augment.oversample_toxic(train, aug, "word_embedding", seed=12, progress=False)
    assert not other[data.TEXT_COLUMN].equals(first[data.TEXT_COLUMN])


def test_plan_spreads_variants_evenly_and_says_when_it_falls_short(capsys):
    train = tiny_splits()["train"]  # 4 toxic, 10 clean
    assert augment.rows_needed(train) == 6 and augment.rows_needed(train, 0.2) == 0
    plan = augment.plan_variants(train, 6, seed=1)
    assert plan["variant"].tolist() == [1, 1, 1, 1, 2, 2] and plan["source_id"].iloc[:4].is_unique
    short = augment.plan_variants(train, 6, variants_per_row=1, seed=1)
    assert len(short) == 4 and "raise variants_per_row" in capsys.readouterr().out
    capped = augment.plan_variants(train, 6, max_augmented_rows=2, seed=1)
    assert len(capped) == 2 and "not balanced" in capsys.readouterr().out


def test_unchanged_texts_are_kept_and_counted(augmenters, capsys):
    train = frame([("t0", "idiot", 1), ("t1", "moron", 1), ("c0", "hello", 0), ("c1", "thanks", 0),
                   ("c2", "welcome", 0), ("c3", "ok", 0)])
    balanced, run = augment.oversample_toxic(train, augmenters["random_swap"], "random_swap", progress=False)
    new = balanced[balanced["augmented"]]
    assert run.rows_added == len(new) == 2 and run.unchanged == 2 and not new["text_changed"].any()
    assert new[data.TEXT_COLUMN].tolist() == [train.set_index("id").loc[s, data.TEXT_COLUMN] for s in new["source_id"]]
    assert "2 still unchanged" in capsys.readouterr().out


def test_split_files_stay_byte_identical_and_balanced_set_round_trips(tmp_path, augmenters):
    splits = tiny_splits()
    for name, split in splits.items():
        write_parquet(split, data.split_path(tmp_path, name))
    before = augment.split_file_hashes(tmp_path)
    train = data.load_split(tmp_path, "train")
    balanced, _ = augment.oversample_toxic(train, augmenters["keyboard"], "keyboard", progress=False)
    path = augment.write_balanced(balanced, tmp_path)
    assert path == data.split_path(tmp_path, "train", variant="balanced")
    assert augment.split_file_hashes(tmp_path) == before
    pd.testing.assert_frame_equal(data.load_split(tmp_path, "train", variant="balanced"), balanced)


def test_bad_parameters_get_one_clear_error(augmenters, artifacts):
    train = tiny_splits()["train"]
    with pytest.raises(ValueError, match="method must be one of"):
        augment.make_augmenter("synonym", artifacts_dir=artifacts)
    for aug_p in (0, 1.5, "0.1", True):
        with pytest.raises(ValueError, match="aug_p"):
            augment.make_augmenter("keyboard", aug_p)
    with pytest.raises(ValueError, match="target"):
        augment.rows_needed(train, "more")
    with pytest.raises(ValueError, match="variants_per_row"):
        augment.plan_variants(train, 6, variants_per_row=0)
    with pytest.raises(ValueError, match="missing"):
        augment.oversample_toxic(train.drop(columns=["label"]), augmenters["keyboard"], "keyboard")
    with pytest.raises(ValueError, match="artifacts_dir"):
        augment.make_augmenter("word_embedding")
    with pytest.raises(TypeError, match="str"):
        augment.augment_text(augmenters["keyboard"], None, 1)


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
    balanced, run = augment.oversample_toxic(train, augmenter, "contextual", progress=False)
    assert run.rows_added == 6 and balanced[data.TARGET_COLUMN].mean() == 0.5
