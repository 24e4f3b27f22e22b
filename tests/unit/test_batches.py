"""Batching encoded comments: length buckets, token budgets, exact batch counts, and batched
prediction with any backend."""

from __future__ import annotations

import numpy as np
import pytest

from toxhelpers import batches, model, scoring


def synthetic_encoded(lengths: list[int], max_length: int = 64) -> dict[str, np.ndarray]:
    """Encoded rows of the given lengths, without a tokenizer; every token of row i is 10 * (i + 1),
    so a batch's first column says which rows it holds."""
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


@pytest.mark.parametrize("padding, tokens_per_batch",
                         [("fixed", None), ("bucketed", None), ("bucketed", 256), ("bucketed", 600)])
def test_batches_per_epoch_is_exact(padding, tokens_per_batch):
    lengths = np.random.default_rng(4).integers(2, 65, size=301).tolist()
    encoded, labels = synthetic_encoded(lengths), np.zeros(301, np.float32)
    dataset = batches.training_dataset(encoded, labels, 16, padding, seed=1, tokens_per_batch=tokens_per_batch)
    shapes = [inputs["input_ids"].shape for inputs, _ in dataset]
    assert len(shapes) == batches.batches_per_epoch(encoded, 16, padding, tokens_per_batch=tokens_per_batch)
    if tokens_per_batch:
        assert all(rows * width <= tokens_per_batch for rows, width in shapes)
        assert max(rows for rows, width in shapes if width == 64) == min(16, tokens_per_batch // 64)
        assert max(rows for rows, width in shapes if width == 16) == 16  # short comments: batch_size rows


def test_token_budget_must_hold_one_longest_row():
    with pytest.raises(ValueError, match="at least one row of 64"):
        batches.bucket_batch_sizes(batches.bucket_widths(64), 16, tokens_per_batch=63)


def test_bucketed_and_fixed_padding_predict_the_same(encoder, encoded):
    full = model.build_classifier(encoder, model.build_head(encoder.config.hidden_size), "cls")
    fixed = batches.predict(full, encoded, batch_size=3, padding="fixed")
    bucketed = batches.predict(full, encoded, batch_size=3, padding="bucketed", step=8)
    np.testing.assert_allclose(bucketed, fixed, atol=1e-5)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_batch_size_must_be_at_least_one(batch_size):
    """0 used to fail obscurely and -1 to return zeros for every comment without scoring any."""
    encoded = {"input_ids": np.ones((3, 4), np.int32), "attention_mask": np.ones((3, 4), np.int32)}
    always_toxic = lambda batch: np.ones(len(batch["input_ids"]))  # noqa: E731
    message = "batch_size must be an integer >= 1"
    with pytest.raises(ValueError, match=message):
        batches.predict_with(always_toxic, encoded, batch_size)
    with pytest.raises(ValueError, match=message):
        batches.predict(object(), encoded, batch_size)
    with pytest.raises(ValueError, match=message):
        scoring.ToxicityScorer(always_toxic, tokenizer=None, max_length=8, batch_size=batch_size)


def test_predict_with_any_backend_equals_keras_batched_prediction(saved_classifier):
    classifier, encoded = saved_classifier["classifier"], saved_classifier["encoded"]
    np.testing.assert_allclose(
        batches.predict_with(lambda inputs: classifier(inputs, training=False).numpy()[:, 0], encoded, 3, step=8),
        batches.predict(classifier, encoded, batch_size=3)[:, 0], atol=1e-5)



def test_a_long_scoring_shows_progress_and_a_short_one_stays_quiet(monkeypatch, capsys):
    """Scoring Kaggle's 63,978 test rows takes minutes: a bar with the time left (issue 23)."""
    rng = np.random.default_rng(0)
    encoded = {"input_ids": rng.integers(1, 100, (40, 16)).astype(np.int32),
               "attention_mask": (np.arange(16) < rng.integers(2, 17, (40, 1))).astype(np.int32)}
    score = lambda inputs: inputs["input_ids"][:, :1].astype(np.float32)  # noqa: E731
    expected = batches.predict_with(score, encoded, batch_size=8)
    assert "scoring" not in capsys.readouterr().err  # under PROGRESS_ROWS
    monkeypatch.setattr(batches, "PROGRESS_ROWS", 10)
    np.testing.assert_array_equal(batches.predict_with(score, encoded, batch_size=8), expected)
    err = capsys.readouterr().err
    assert "scoring 40 rows" in err and "100%" in err, err
