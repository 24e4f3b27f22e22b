"""Fine-tuning helpers: the learning-rate schedule, exact batch counts (token budgets included),
and validation scored after each epoch."""

from __future__ import annotations

import numpy as np
import pytest

from toxhelpers import batches, evaluation, model, pretrained, tokenization, training

from test_tokenization import synthetic_encoded


def rates(schedule, steps: int) -> np.ndarray:
    return np.array([float(schedule(step)) for step in range(steps)])


def test_linear_warmup_decay_by_hand():
    """peak 1.0, 10 steps, 2 of warm-up: 0.5, 1.0, then 8/8 ... 1/8 down to the last step."""
    schedule = training.LinearWarmupDecay(1.0, total_steps=10, warmup_steps=2)
    expected = [0.5, 1.0, 1.0, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8]
    np.testing.assert_allclose(rates(schedule, 10), expected, rtol=1e-6)
    assert float(schedule(10)) == 0.0 and float(schedule(50)) == 0.0  # past the end: no more learning


def test_linear_schedule_without_warmup_starts_at_the_peak():
    schedule = training.learning_rate_schedule(5e-5, 4, "linear", warmup_fraction=0.0)
    np.testing.assert_allclose(rates(schedule, 4), [5e-5, 3.75e-5, 2.5e-5, 1.25e-5], rtol=1e-6)
    assert training.learning_rate_schedule(2e-5, 100, "constant") == 2e-5


@pytest.mark.parametrize("bad", [dict(schedule="cosine"), dict(warmup_fraction=1.0)])
def test_schedule_rejects_unknown_choices(bad):
    with pytest.raises(ValueError):
        training.learning_rate_schedule(**{"peak": 1e-4, "total_steps": 10, **bad})


def test_schedule_survives_a_keras_config_round_trip():
    schedule = training.LinearWarmupDecay(3e-5, 100, 10)
    again = training.LinearWarmupDecay.from_config(schedule.get_config())
    np.testing.assert_allclose(rates(again, 100), rates(schedule, 100))


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


def test_validation_scores_feed_early_stopping_and_keep_each_epochs_probabilities(bundled_checkpoint, tokenizer):
    comments = ["you are an idiot", "thanks for the fix", "stupid pathetic troll", "I added a source",
                "shut up loser", "good edit, agreed"]
    labels = np.array([1, 0, 1, 0, 1, 0])
    encoded = tokenization.encode(tokenizer, comments, max_length=16)
    encoder = pretrained.load_encoder(bundled_checkpoint)
    classifier = model.build_classifier(encoder, model.build_head(encoder.config.hidden_size, [8]), "cls")
    steps = batches.batches_per_epoch(encoded, 2)
    model.compile_model(classifier, training.learning_rate_schedule(1e-3, steps * 2, "linear", warmup_fraction=0.5))
    scores, log = training.ValidationScores(encoded, labels), training.StepLog()
    history = classifier.fit(batches.training_dataset(encoded, labels, 2), epochs=2, verbose=0,
                             callbacks=[scores, training.early_stopping(1), log])
    assert sorted(scores.probabilities) == [1, 2]
    for epoch, probabilities in scores.probabilities.items():
        assert history.history["val_roc_auc"][epoch - 1] == pytest.approx(
            evaluation.binary_metrics(labels, probabilities)["roc_auc"])
    steps_log = log.frame()
    assert list(steps_log.index) == list(range(1, 2 * steps + 1))
    assert steps_log["learning_rate"].iloc[0] < steps_log["learning_rate"].max()  # warm-up


def test_the_parameter_check_knows_every_schedule():
    from toxhelpers.run import checks

    assert checks.LEARNING_RATE_SCHEDULES == training.SCHEDULES
