"""Unit tests for toxhelpers.oversampling: only the training split grows, no leakage, seeded, clear errors."""

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


# --- the training set ------------------------------------------------------------------------------


def test_oversampling_balances_the_training_split_only(augmenters):
    splits = tiny_splits()
    train = splits["train"]
    balanced, run = oversampling.oversample_toxic(train, augmenters["random_swap"], "random_swap", progress=False)
    counts = balanced[data.TARGET_COLUMN].value_counts()
    assert counts[1] == counts[0] == 10 and run.rows_added == 6
    new = balanced[balanced["augmented"]]
    assert set(new["source_id"]) <= set(train.loc[train[data.TARGET_COLUMN] == 1, data.ID_COLUMN])
    assert all(i == f"{s}-aug{i.rsplit('aug', 1)[1]}" for i, s in zip(new[data.ID_COLUMN], new["source_id"]))
    assert (new["method"] == "random_swap").all() and balanced[data.ID_COLUMN].is_unique
    originals = balanced[~balanced["augmented"]]
    assert (originals["source_id"] == originals[data.ID_COLUMN]).all()
    checked = oversampling.check_no_leakage(balanced, train, {k: splits[k] for k in ("validation", "test")})
    assert checked["augmented_rows"] == 6


def test_leakage_checks_catch_held_out_rows(augmenters):
    splits = tiny_splits()
    balanced, _ = oversampling.oversample_toxic(splits["train"], augmenters["random_swap"], "random_swap",
                                           progress=False)
    held_out = {k: splits[k] for k in ("validation", "test")}
    smuggled = balanced.copy()
    smuggled.loc[smuggled.index[-1], "source_id"] = "v0"
    with pytest.raises(AssertionError, match="non-training"):
        oversampling.check_no_leakage(smuggled, splits["train"], held_out)
    relabelled = balanced.copy()
    relabelled.loc[relabelled.index[-1], data.TARGET_COLUMN] = 0
    with pytest.raises(AssertionError, match="labels"):
        oversampling.check_no_leakage(relabelled, splits["train"], held_out)
    with pytest.raises(AssertionError, match="differ from the training split"):
        oversampling.check_no_leakage(balanced.drop(index=0), splits["train"], held_out)


def test_same_input_and_seed_give_the_same_frame_and_a_cap_gives_a_prefix(augmenters):
    train = tiny_splits()["train"]
    aug = augmenters["word_embedding"]
    first, _ = oversampling.oversample_toxic(train, aug, "word_embedding", seed=11, progress=False)
    again, _ = oversampling.oversample_toxic(train, aug, "word_embedding", seed=11, progress=False)
    pd.testing.assert_frame_equal(first, again)
    capped, _ = oversampling.oversample_toxic(train, aug, "word_embedding", seed=11, max_augmented_rows=3,
                                         progress=False)
    pd.testing.assert_frame_equal(capped, first.iloc[: len(train) + 3])
    other, _ = oversampling.oversample_toxic(train, aug, "word_embedding", seed=12, progress=False)
    assert not other[data.TEXT_COLUMN].equals(first[data.TEXT_COLUMN])


def test_plan_spreads_variants_evenly_and_says_when_it_falls_short(capsys):
    train = tiny_splits()["train"]  # 4 toxic, 10 clean
    assert oversampling.rows_needed(train) == 6 and oversampling.rows_needed(train, 0.2) == 0
    plan = oversampling.plan_variants(train, 6, seed=1)
    assert plan["variant"].tolist() == [1, 1, 1, 1, 2, 2] and plan["source_id"].iloc[:4].is_unique
    short = oversampling.plan_variants(train, 6, variants_per_row=1, seed=1)
    assert len(short) == 4 and "raise variants_per_row" in capsys.readouterr().out
    capped = oversampling.plan_variants(train, 6, max_augmented_rows=2, seed=1)
    assert len(capped) == 2 and "not balanced" in capsys.readouterr().out


def test_unchanged_texts_are_kept_and_counted(augmenters, capsys):
    train = frame([("t0", "idiot", 1), ("t1", "moron", 1), ("c0", "hello", 0), ("c1", "thanks", 0),
                   ("c2", "welcome", 0), ("c3", "ok", 0)])
    balanced, run = oversampling.oversample_toxic(train, augmenters["random_swap"], "random_swap", progress=False)
    new = balanced[balanced["augmented"]]
    assert run.rows_added == len(new) == 2 and run.unchanged == 2 and not new["text_changed"].any()
    assert new[data.TEXT_COLUMN].tolist() == [train.set_index("id").loc[s, data.TEXT_COLUMN] for s in new["source_id"]]
    assert "2 still unchanged" in capsys.readouterr().out


def test_split_files_stay_byte_identical_and_balanced_set_round_trips(tmp_path, augmenters):
    splits = tiny_splits()
    for name, split in splits.items():
        write_parquet(split, data.split_path(tmp_path, name))
    before = oversampling.split_file_hashes(tmp_path)
    train = data.load_split(tmp_path, "train")
    balanced, _ = oversampling.oversample_toxic(train, augmenters["keyboard"], "keyboard", progress=False)
    path = oversampling.write_balanced(balanced, tmp_path)
    assert path == data.split_path(tmp_path, "train", variant="balanced")
    assert oversampling.split_file_hashes(tmp_path) == before
    pd.testing.assert_frame_equal(data.load_split(tmp_path, "train", variant="balanced"), balanced)


def test_bad_parameters_get_one_clear_error(augmenters, artifacts):
    train = tiny_splits()["train"]
    with pytest.raises(ValueError, match="method must be one of"):
        augment.make_augmenter("synonym", artifacts_dir=artifacts)
    for aug_p in (0, 1.5, "0.1", True):
        with pytest.raises(ValueError, match="aug_p"):
            augment.make_augmenter("keyboard", aug_p)
    with pytest.raises(ValueError, match="target"):
        oversampling.rows_needed(train, "more")
    with pytest.raises(ValueError, match="variants_per_row"):
        oversampling.plan_variants(train, 6, variants_per_row=0)
    with pytest.raises(ValueError, match="missing"):
        oversampling.oversample_toxic(train.drop(columns=["label"]), augmenters["keyboard"], "keyboard")
    with pytest.raises(ValueError, match="artifacts_dir"):
        augment.make_augmenter("word_embedding")
    with pytest.raises(ValueError, match="aug_p"):
        augment.nlpaug_augmenter("keyboard", 1.5)  # lesson 2's builder checks it too
    with pytest.raises(ValueError, match="make_augmenter builds 'contextual'"):
        augment.nlpaug_augmenter("contextual", 0.1)
    with pytest.raises(TypeError, match="str"):
        augment.augment_text(augmenters["keyboard"], None, 1)
