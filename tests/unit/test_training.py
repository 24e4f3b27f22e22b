"""Training helpers: the head trained on cached encoder features (lesson 5), the head choice, the
padding throughput measurement, the learning-rate schedule, and validation scored after each epoch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tiny_bert import tiny_encoder
from toxhelpers import batches, evaluation, model, tokenization, training


def rates(schedule, steps: int) -> np.ndarray:
    return np.array([float(schedule(step)) for step in range(steps)])


def test_weight_average_is_the_element_wise_mean_of_the_runs():
    runs = [[np.array([1.0, 2.0], np.float32), np.array([[0.0]], np.float32)],
            [np.array([3.0, 6.0], np.float32), np.array([[1.0]], np.float32)],
            [np.array([5.0, 1.0], np.float32), np.array([[2.0]], np.float32)]]
    soup = training.WeightAverage()
    with pytest.raises(ValueError, match="at least one run"):
        soup.mean()
    soup.add(runs[0])
    assert soup.mean()[0].tolist() == [1.0, 2.0]
    for weights in runs[1:]:
        soup.add(weights)
    mean = soup.mean()
    assert soup.runs == 3 and np.allclose(mean[0], [3.0, 3.0]) and np.allclose(mean[1], [[1.0]])
    assert mean[0].dtype == np.float32
    with pytest.raises(ValueError, match="run 4's weights do not have run 1's shapes"):
        soup.add([np.zeros(3), np.zeros((1, 1))])


def test_restart_optimizer_makes_the_next_fit_repeat_a_fresh_compile():
    from toxhelpers.tf_setup import tf_keras

    x, y = np.random.default_rng(0).random((16, 3)), np.random.default_rng(1).random((16, 1))

    def fresh_model():
        tf_keras.utils.set_random_seed(0)
        net = tf_keras.Sequential([tf_keras.layers.Dense(1, input_shape=(3,))])
        net.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=training.learning_rate_schedule(0.1, 4, "linear", 0.25)), loss="mse")
        return net

    fresh = fresh_model()
    start = fresh.get_weights()
    fresh.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    reused = fresh_model()
    reused.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)  # a first run moves the optimizer on
    reused.set_weights(start)
    training.restart_optimizer(reused)
    assert int(reused.optimizer.iterations) == 0
    reused.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for got, want in zip(reused.get_weights(), fresh.get_weights()):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)


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


def test_validation_scores_feed_early_stopping_and_keep_each_epochs_probabilities(tokenizer):
    comments = ["you are an idiot", "thanks for the fix", "stupid pathetic troll", "I added a source",
                "shut up loser", "good edit, agreed"]
    labels = np.array([1, 0, 1, 0, 1, 0])
    encoded = tokenization.encode(tokenizer, comments, max_length=16)
    encoder = tiny_encoder()  # what the callbacks record, not what the encoder knows
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


def test_the_parameter_check_knows_every_schedule_and_head_choice():
    from toxhelpers.run import checks

    assert checks.LEARNING_RATE_SCHEDULES == training.SCHEDULES
    assert checks.HEAD_CHOICES == training.HEAD_CHOICES


@pytest.mark.parametrize("pooling", model.POOLINGS)
def test_head_trained_on_cached_features_drops_into_full_model(encoder, encoded, comment_labels, pooling):
    """Training on cached pooled vectors, then placing the same head on the encoder, must give
    the same probabilities as the head on the cached vectors."""
    features = training.extract_features(encoder, encoded, batch_size=3)
    head = model.build_head(encoder.config.hidden_size, [16], 0.2, seed=1)
    history = training.fit_head(head, features[pooling], comment_labels, features[pooling], comment_labels,
                                learning_rate=1e-2, epochs=3, batch_size=4)
    assert len(history) >= 1
    on_features = head.predict(features[pooling], verbose=0)[:, 0]
    full = model.build_classifier(encoder, head, pooling)
    on_text = batches.predict(full, encoded, batch_size=3)[:, 0]
    np.testing.assert_allclose(on_text, on_features, atol=1e-5)
    assert on_features.std() > 0  # the head produces distinct outputs: the comparison means something


def test_features_saved_as_they_go_are_the_features_and_a_rerun_reads_them(encoder, encoded, tmp_path, monkeypatch):
    """Lesson 5 hands ``extract_features`` a ResumableScoring's ``saved_as``: the same vectors, and
    a rerun (after an interrupt, or not) reads the saved batches instead of running the encoder."""
    from toxhelpers import resumable_scoring

    want = training.extract_features(encoder, encoded, batch_size=3)
    scoring = resumable_scoring.ResumableScoring(tmp_path, "training", save_every=1)
    got = training.extract_features(encoder, encoded, batch_size=3, predict=scoring.saved_as("train"))
    for pooling in model.POOLINGS:
        np.testing.assert_array_equal(got[pooling], want[pooling])
    assert (tmp_path / ".checkpoints" / "training" / "scoring" / "train" / "part-00000.npz").is_file()

    def never_run(model):
        return lambda inputs: pytest.fail("the encoder ran again")

    monkeypatch.setattr(batches, "inference_function", never_run)
    again = training.extract_features(encoder, encoded, batch_size=3,
                                      predict=resumable_scoring.ResumableScoring(tmp_path, "training").saved_as("train"))
    np.testing.assert_array_equal(again["mean"], want["mean"])


def test_padding_throughput_puts_the_weights_back(encoded, comment_labels, monkeypatch):
    encoder = tiny_encoder()
    full = model.compile_model(model.build_classifier(encoder, model.build_head(encoder.config.hidden_size, [8]), "cls"),
                               learning_rate=1e-3)
    before = full.get_weights()
    # fewer rows allowed than there are: the steps come from a seeded draw of them (memory at Kaggle's size)
    monkeypatch.setattr(training, "TIMING_ROWS", len(comment_labels) - 2)
    speed = training.padding_throughput(full, encoded, comment_labels, batch_size=4, timed_batches=1)
    assert speed["fixed"] > 0 and speed["bucketed"] > 0
    assert all(np.array_equal(a, b) for a, b in zip(before, full.get_weights()))


def test_the_grid_winner_is_its_best_row():
    grid = pd.DataFrame([{"pooling": "mean", "learning_rate": 1e-3, "head_sizes": [128], "val_roc_auc": 0.96},
                         {"pooling": "cls", "learning_rate": 5e-5, "head_sizes": [256, 32], "val_roc_auc": 0.92}])
    assert training.grid_winner(grid) == {"pooling": "mean", "learning_rate": 1e-3, "head_sizes": [128]}
    with pytest.raises(ValueError, match="needs at least one trained grid configuration"):
        training.grid_winner(grid.iloc[:0])
