"""Fixed-length encoding of comments, saving and loading the encoded splits, training-set names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toxhelpers import tokenization

COMMENTS = ["short", "a somewhat longer comment with several more words in it",
            "word " * 300, "Thanks!", "You are an idiot.", "🙂 emoji and ünïcödé", " ", ""]


@pytest.mark.parametrize("count", [1, 3, 8])
def test_fixed_length_for_any_batch_size(tokenizer, count):
    encoded = tokenization.encode(tokenizer, COMMENTS[:count], max_length=16)
    assert set(encoded) == {"input_ids", "attention_mask"}  # no token type ids
    assert encoded["input_ids"].shape == (count, 16) == encoded["attention_mask"].shape
    assert encoded["input_ids"].dtype == np.int32
    assert (encoded["input_ids"][:, 0] == tokenizer.cls_token_id).all()
    lengths = encoded["attention_mask"].sum(axis=1)
    assert (encoded["input_ids"][np.arange(count), lengths - 1] == tokenizer.sep_token_id).all()
    assert (encoded["input_ids"][encoded["attention_mask"] == 0] == tokenizer.pad_token_id).all()


def test_long_comments_are_truncated_to_max_length(tokenizer):
    encoded = tokenization.encode(tokenizer, ["word " * 300], max_length=32)
    assert encoded["attention_mask"].sum() == 32
    assert tokenization.token_lengths(tokenizer, ["word " * 300])[0] == 302


def test_chunks_give_what_one_tokenizer_call_gives(tokenizer, monkeypatch):
    """encode and token_lengths tokenize CHUNK_ROWS comments at a time (memory); chunk borders
    (3 per chunk: a border inside the list and a short last chunk) change no number."""
    one_call = tokenizer(COMMENTS, max_length=16, truncation=True, padding="max_length",
                         return_token_type_ids=False, return_tensors="np")
    lengths = [len(ids) for ids in tokenizer(COMMENTS, truncation=False)["input_ids"]]
    monkeypatch.setattr(tokenization, "CHUNK_ROWS", 3)
    encoded = tokenization.encode(tokenizer, COMMENTS, max_length=16)
    for name in ("input_ids", "attention_mask"):
        np.testing.assert_array_equal(encoded[name], one_call[name])
    np.testing.assert_array_equal(tokenization.token_lengths(tokenizer, COMMENTS), lengths)


def test_empty_list_and_bad_input(tokenizer):
    assert tokenization.encode(tokenizer, [], max_length=8)["input_ids"].shape == (0, 8)
    with pytest.raises(TypeError, match="single string"):
        tokenization.encode(tokenizer, "just one")
    with pytest.raises(TypeError, match=r"comment 1 is float"):
        tokenization.encode(tokenizer, ["ok", float("nan")])
    with pytest.raises(ValueError, match="max_length"):
        tokenization.encode(tokenizer, ["ok"], max_length=1)


def test_fast_and_slow_tokenizers_agree(bundled_checkpoint, tokenizer):
    from toxhelpers import pretrained

    slow = pretrained.load_tokenizer(bundled_checkpoint, fast=False)
    fast_ids = tokenization.encode(tokenizer, COMMENTS, 24)["input_ids"]
    assert np.array_equal(tokenization.encode(slow, COMMENTS, 24)["input_ids"], fast_ids)


def test_save_and_load_encoded(tmp_path, tokenizer):
    encoded = tokenization.encode(tokenizer, COMMENTS[:3], 8)
    tokenization.save_encoded(tmp_path, "validation", encoded, [0, 1, 0], ["a", "b", "c"])
    loaded = tokenization.load_encoded(tmp_path, "validation")
    assert np.array_equal(loaded["input_ids"], encoded["input_ids"]) and loaded["id"].tolist() == ["a", "b", "c"]
    with pytest.raises(FileNotFoundError, match="03_tokenization"):
        tokenization.load_encoded(tmp_path, "test")


def test_load_encoded_checks_the_rows_a_lesson_holds(tmp_path, tokenizer):
    """With ``ids``, the arrays must hold those rows in that order: scores computed from them line
    up with the lesson's labels (lesson 9 relies on it)."""
    encoded = tokenization.encode(tokenizer, COMMENTS[:3], 8)
    tokenization.save_encoded(tmp_path, "validation", encoded, [0, 1, 0], ["a", "b", "c"])
    assert tokenization.load_encoded(tmp_path, "validation", ids=pd.Series(["a", "b", "c"]))["id"].tolist() == ["a", "b", "c"]
    for other in (["a", "c", "b"], ["a", "b"], ["a", "b", "c", "d"]):
        with pytest.raises(ValueError, match=f"does not hold the {len(other)} rows of the validation split given"):
            tokenization.load_encoded(tmp_path, "validation", ids=other)


def test_training_set_names():
    assert tokenization.training_split("unbalanced") == "train"
    assert tokenization.training_split("balanced") == "train_balanced"
    with pytest.raises(ValueError, match="training_set must be one of"):
        tokenization.training_split("augmented")


def test_later_lessons_get_the_checkpoint_lesson_3_recorded_and_changed_weights_are_an_error(tmp_path, capsys,
                                                                                            monkeypatch):
    """Decided once: lesson 3 records the weights; lessons 4-6 resolve exactly those again."""
    import shutil

    from toxhelpers import pretrained

    monkeypatch.setattr(pretrained, "_ANNOUNCED", set())  # said once per process: say it here

    folder = tmp_path / "encoder"
    shutil.copytree(pretrained.bundled_encoder_dir(), folder)
    recorded = pretrained.resolve_checkpoint(str(folder), announce=False)
    tokenization.record_checkpoint(tmp_path / "artifacts", recorded)
    again = tokenization.tokenized_checkpoint(tmp_path / "artifacts")
    assert again == recorded
    assert "as tokenized for in lesson 3" in capsys.readouterr().out
    with open(recorded.weights_file, "r+b") as handle:  # one weight changed, the file still well-formed
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 1]))
    with pytest.raises(ValueError, match="changed since 03_tokenization.ipynb encoded the comments"):
        tokenization.tokenized_checkpoint(tmp_path / "artifacts", announce=False)
    shutil.rmtree(folder)
    with pytest.raises(FileNotFoundError, match="which no longer exists; rerun 03_tokenization.ipynb"):
        tokenization.tokenized_checkpoint(tmp_path / "artifacts", announce=False)
