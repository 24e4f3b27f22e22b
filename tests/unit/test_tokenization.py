"""Fixed-length encoding and length-bucketed batching."""

from __future__ import annotations

import numpy as np
import pytest

from toxhelpers import batches, tokenization

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


def test_training_set_names():
    assert tokenization.training_split("unbalanced") == "train"
    assert tokenization.training_split("balanced") == "train_balanced"
    with pytest.raises(ValueError, match="training_set must be one of"):
        tokenization.training_split("augmented")


def synthetic_encoded(lengths: list[int], max_length: int = 64) -> dict[str, np.ndarray]:
    mask = (np.arange(max_length)[None, :] < np.array(lengths)[:, None]).astype(np.int32)
    ids = np.where(mask == 1, np.arange(1, len(lengths) + 1)[:, None] * 10, 0).astype(np.int32)
    return {"input_ids": ids, "attention_mask": mask}


def test_bucket_widths():
    assert batches.bucket_widths(128) == [16, 32, 48, 64, 80, 96, 112, 128]
    assert batches.bucket_widths(40, 16) == [16, 32, 40]


@pytest.mark.parametrize("padding", batches.PADDINGS)
def test_training_batches_cover_every_row_once_with_bounded_shapes(padding):
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 65, size=203).tolist()
    encoded = synthetic_encoded(lengths)
    labels = (np.arange(203) % 2).astype(np.float32)
    widths_seen, rows_seen = set(), []
    for inputs, label in batches.training_dataset(encoded, labels, batch_size=16, padding=padding, seed=3):
        ids, mask = inputs["input_ids"].numpy(), inputs["attention_mask"].numpy()
        widths_seen.add(ids.shape[1])
        row = ids[:, 0] // 10 - 1
        assert np.array_equal(label.numpy(), labels[row])  # labels stay with their rows
        assert np.array_equal(mask.sum(axis=1), np.array(lengths)[row])  # nothing real was cut
        rows_seen.extend(row.tolist())
    assert sorted(rows_seen) == list(range(203))
    assert widths_seen <= set(batches.bucket_widths(64)) if padding == "bucketed" else widths_seen == {64}


@pytest.mark.parametrize("padding", batches.PADDINGS)
def test_warmup_dataset_meets_every_width_training_will(padding):
    rng = np.random.default_rng(1)
    lengths = rng.integers(2, 65, size=203).tolist()
    encoded, labels = synthetic_encoded(lengths), np.zeros(203, np.float32)

    def widths(dataset):
        return [inputs["input_ids"].shape[1] for inputs, _ in dataset]

    training_widths = set(widths(batches.training_dataset(encoded, labels, 16, padding, seed=3)))
    warmup_widths = widths(batches.warmup_dataset(encoded, labels, 16, padding))
    assert set(warmup_widths) == training_widths
    assert len(warmup_widths) == len(training_widths)  # one batch each: a short warm-up


def test_bucketed_batches_are_seeded():
    encoded = synthetic_encoded(list(range(2, 60)))
    labels = np.zeros(58, np.float32)

    def first_rows(seed):
        inputs, _ = next(iter(batches.training_dataset(encoded, labels, 8, "bucketed", seed)))
        return inputs["input_ids"].numpy()[:, 0].tolist()

    assert first_rows(1) == first_rows(1)


def test_padded_share():
    encoded = synthetic_encoded([16] * 10, max_length=64)
    assert batches.padded_share(encoded, "fixed") == pytest.approx(0.75)
    assert batches.padded_share(encoded, "bucketed") == pytest.approx(0.0)
