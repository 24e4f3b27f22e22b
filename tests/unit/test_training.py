"""Training helpers: the head trained on cached encoder features (lesson 5), the head choice, the
padding throughput measurement, the learning-rate schedule, and validation scored after each epoch."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from toxhelpers import batches, evaluation, model, pretrained, tokenization, training


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


def test_padding_throughput_puts_the_weights_back(encoder, encoded, comment_labels, monkeypatch):
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


# ------------------------------------------------------------------------------ resuming a fit
#
# In-process tests on a tiny model (an embedding, dropout, a dense unit: seconds), for the rules;
# then separate processes (resumable_fit.py) stopped by SIGINT and by SIGKILL in the middle of
# their fit, rerun, and compared with a fit without the checkpoint: the tiny model in the default
# suite, the bundled encoder in the slow tier.


# A resumed fit is the same computation in another process: measured identical (0.0); a rerun
# from step 0, or a shuffle one epoch off, moves the weights by far more than this.
RESUME_TOLERANCE = 1e-6


class StopAfter(Exception):
    """Stands in for an interrupt in the in-process tests."""


def tiny_training(artifacts, every: int, stop_after: int | None = None, seed: int = 3, epochs: int = 3):
    """``tiny_model`` fitted with lesson 6's callbacks and a checkpoint (``every=0``: without the
    checkpoint callback, the reference); ``stop_after``: raise after that many steps, as an
    interrupt would."""
    from resumable_fit import tiny_model
    from toxhelpers.tf_setup import tf_keras

    class Stop(tf_keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if stop_after is not None and int(self.model.optimizer.iterations.numpy()) >= stop_after:
                raise StopAfter

    net, data, steps, encoded, labels = tiny_model(seed, epochs)
    validation, log = training.ValidationScores(encoded, labels), training.StepLog()
    checkpoint = training.TrainingCheckpoint(artifacts, "finetuning", data, every=every) if every else None
    try:
        fit = net.fit(data, epochs=epochs, steps_per_epoch=steps, verbose=0,
                      callbacks=[validation, training.early_stopping(5), log, Stop()] + ([checkpoint] if every else []))
    except StopAfter:
        return None
    return {"weights": net.get_weights(), "history": training.history_frame(fit), "steps": log.frame(),
            "checkpoint": checkpoint, "probabilities": validation.probabilities}


def assert_same_training(got: dict, want: dict) -> None:
    for mine, theirs in zip(got["weights"], want["weights"]):
        np.testing.assert_array_equal(mine, theirs)
    pd.testing.assert_frame_equal(got["history"], want["history"])
    pd.testing.assert_frame_equal(got["steps"], want["steps"])
    assert got["probabilities"].keys() == want["probabilities"].keys()
    for epoch in want["probabilities"]:
        np.testing.assert_array_equal(got["probabilities"][epoch], want["probabilities"][epoch])


@pytest.fixture(scope="module")
def never_saved(tmp_path_factory) -> dict:
    """The tiny fit without the checkpoint callback: what every checkpointed fit must equal."""
    return tiny_training(tmp_path_factory.mktemp("never_saved"), every=0)


# 5 steps an epoch, saved after steps 2 and 4 of each and as each later epoch begins; the stop
# comes before that step's save. Stopped after step 3 (resumes epoch 1 after its step 2), 7
# (resumes epoch 2 at its start) and 9 (resumes epoch 2 after its step 2)
@pytest.mark.parametrize("stop_after", [3, 7, 9])
def test_a_fit_stopped_and_rerun_ends_where_an_unstopped_one_does(tmp_path, stop_after, never_saved):
    assert tiny_training(tmp_path / "run", every=2, stop_after=stop_after) is None
    assert (tmp_path / "run" / ".checkpoints" / "finetuning" / "latest.json").is_file()
    rerun = tiny_training(tmp_path / "run", every=2)
    position = rerun["checkpoint"].resumed_from
    steps = len(never_saved["steps"]) // 3
    assert position is not None and stop_after - 2 <= steps * position["epoch"] + position["step"] <= stop_after
    # the callback changes no number (its dropout draws Keras's masks), and the rerun goes on exactly
    assert_same_training(rerun, never_saved)
    assert not (tmp_path / "run" / ".checkpoints" / "finetuning").exists()  # removed when the fit completed


def test_a_checkpoint_of_other_batches_is_not_resumed_from(tmp_path, capsys):
    assert tiny_training(tmp_path, every=2, stop_after=4) is None
    other_seed = tiny_training(tmp_path, every=2, seed=4)
    assert other_seed["checkpoint"].resumed_from is None
    assert "saved by a fit with other batches, starting weights; training from the first step" in capsys.readouterr().out


def test_a_fit_that_saves_but_is_never_stopped_computes_what_one_without_the_callback_does(tmp_path, never_saved):
    """The default run (checkpoint_every=50, no interrupt) must keep the numbers a fit without
    checkpoints had, bit for bit: the dropout masks included."""
    assert_same_training(tiny_training(tmp_path / "saving", every=2), never_saved)


def test_the_checkpoint_must_come_last_and_get_a_dataset_it_can_replay(tmp_path):
    from resumable_fit import tiny_model
    from toxhelpers.tf_setup import tf_keras

    net, data, steps, _, _ = tiny_model()
    checkpoint = training.TrainingCheckpoint(tmp_path, "finetuning", data, every=2)
    with pytest.raises(ValueError, match="must come last in fit's callbacks"):
        net.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[checkpoint, training.StepLog()])
    with pytest.raises(ValueError, match="expected a dataset made by batches.training_dataset"):
        training.TrainingCheckpoint(tmp_path, "finetuning", data.take(2), every=2)
    with pytest.raises(ValueError, match="every must be a whole number of steps >= 0"):
        training.TrainingCheckpoint(tmp_path, "finetuning", data, every=-1)
    assert isinstance(checkpoint, tf_keras.callbacks.Callback)


RESUMABLE_FIT = Path(__file__).with_name("resumable_fit.py")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def start_fit(tmp: Path, kind: str, name: str, every: int, pause: float = 0.0) -> subprocess.Popen:
    """resumable_fit.py (``--model kind``) writing its checkpoints under ``tmp/<name>`` and its
    result to ``<name>.npz``."""
    from toxhelpers import distribute

    env = {**distribute.local_worker_environment(), "PYTHONPATH": str(PROJECT_ROOT)}
    log = open(tmp / f"{name}.log", "a")
    return subprocess.Popen([sys.executable, str(RESUMABLE_FIT), "--model", kind, "--artifacts", str(tmp / name),
                             "--every", str(every), "--pause", str(pause), "--result", str(tmp / f"{name}.npz")],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=RESUMABLE_FIT.parent)


def saved_position(tmp: Path, name: str) -> dict | None:
    try:
        return json.loads((tmp / name / ".checkpoints" / "finetuning" / "latest.json").read_text())["position"]
    except (OSError, ValueError, KeyError):
        return None


def fit_result(tmp: Path, name: str, process: subprocess.Popen) -> dict:
    assert process.wait(timeout=600) == 0, (tmp / f"{name}.log").read_text()[-3000:]
    with np.load(tmp / f"{name}.npz") as saved:
        return {key: saved[key] for key in saved.files}


# (model, what stops it): the tiny model, killed by SIGKILL in epoch 2, in the default suite (three
# processes, about 25 s on 2 cores); the bundled encoder, stopped by SIGINT in epoch 1 and killed
# by SIGKILL in epoch 2, in the slow tier
SIGNALS = {"tiny": [("sigkill", signal.SIGKILL, 8, 1)],
           "encoder": [("sigint", signal.SIGINT, 2, 0), ("sigkill", signal.SIGKILL, 8, 1)]}
PAUSE = {"tiny": 0.5, "encoder": 1.0}  # seconds after each step of a process to be stopped


@pytest.mark.parametrize("kind", ["tiny", pytest.param("encoder", marks=pytest.mark.slow)])
def test_a_fit_killed_mid_fit_resumes_and_ends_with_the_model_never_stopped(tmp_path, kind):
    """A fit saved every 2 steps, in a process stopped by a real signal once a save of at least
    that many steps is on disk, then rerun into the same folder, ends with the weights,
    validation probabilities, history and step log of a process without the checkpoint callback
    (measured: identical, max |difference| 0.0). The stopped processes and the reference run side
    by side, then the reruns. ``tiny``: resumable_fit.py's tiny model; ``encoder``: the bundled
    encoder cut to one layer, dropout on."""
    from resumable_fit import STEPS

    processes = {"never_saved": start_fit(tmp_path, kind, "never_saved", every=0)}
    processes.update({name: start_fit(tmp_path, kind, name, every=2, pause=PAUSE[kind]) for name, *_ in SIGNALS[kind]})
    stopped = {}
    for name, signal_number, iterations, epoch in SIGNALS[kind]:
        deadline = time.monotonic() + 600
        while (saved_position(tmp_path, name) or {}).get("iterations", 0) < iterations:
            assert processes[name].poll() is None, (tmp_path / f"{name}.log").read_text()[-3000:]
            assert time.monotonic() < deadline, f"{name}: no checkpoint after {iterations} steps in 10 minutes"
            time.sleep(0.1)
        processes[name].send_signal(signal_number)
        assert processes[name].wait(timeout=120) != 0  # stopped mid-fit, not finished
        assert not (tmp_path / f"{name}.npz").exists()
        stopped[name] = saved_position(tmp_path, name)
        assert stopped[name]["epoch"] == epoch
    reruns = {name: start_fit(tmp_path, kind, name, every=2) for name in stopped}
    reference = fit_result(tmp_path, "never_saved", processes["never_saved"])
    for name, process in reruns.items():
        result = fit_result(tmp_path, name, process)
        position = stopped[name]
        assert result["resumed_from"].tolist() == [position["epoch"], position["step"]]
        assert position["epoch"] * STEPS[kind] + position["step"] > 0  # not from step 0
        assert not bool(result["checkpoint_left"])
        for key in ("weights", "probabilities", "step_log"):
            difference = float(np.abs(result[key] - reference[key]).max())
            print(name, key, "max |difference|", difference)
            assert difference <= RESUME_TOLERANCE, (name, key, difference)
        assert result["history_columns"].tolist() == reference["history_columns"].tolist()
        assert float(np.abs(result["history"] - reference["history"]).max()) <= RESUME_TOLERANCE
