"""Training helpers for the two phases: a head on a frozen encoder, then fine-tuning everything.

Phase 1 trick: with the encoder frozen, its output for a comment never changes, so the pooled
vectors can be computed ONCE and the head trained on them for as many epochs and grid
configurations as we like, at the cost of a tiny dense network per step. The trade-off: the
encoder's dropout no longer acts during phase 1 (the features are computed in inference mode),
so the head sees the same vector for a comment every epoch instead of a slightly noisy one.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toxhelpers.tf_setup import tf_keras

from toxhelpers import batches, model

MONITOR = "val_roc_auc"


def seed_everything(seed: int) -> None:
    """Python, numpy and TensorFlow seeds in one call, for repeatable training."""
    tf_keras.utils.set_random_seed(int(seed))


class WeightAverage:
    """The element-wise mean of several runs' weights (``model.get_weights()`` lists) that started
    from the same weights: a "model soup" (Wortsman et al. 2022). Short fine-tunings from one start
    stay in one basin, so their average is a model too; it keeps what the runs agree on while the
    seed-to-seed noise cancels (lesson 9 averages three mitigation runs). A running sum, so only one
    extra copy of the weights is held however many runs are added."""

    def __init__(self) -> None:
        self.runs = 0
        self._sum: list[np.ndarray] = []

    def add(self, weights: Sequence[np.ndarray]) -> None:
        arrays = [np.array(array, dtype=np.float32) for array in weights]  # a copy: the sum is updated in place
        if self.runs and [array.shape for array in arrays] != [total.shape for total in self._sum]:
            raise ValueError(f"run {self.runs + 1}'s weights do not have run 1's shapes: average runs of one model only")
        if self.runs:
            for total, array in zip(self._sum, arrays):
                total += array
        else:
            self._sum = arrays
        self.runs += 1

    def mean(self, dtype: Any = np.float32) -> list[np.ndarray]:
        if not self.runs:
            raise ValueError("no runs added: WeightAverage needs the weights of at least one run")
        return [(total / self.runs).astype(dtype) for total in self._sum]


def restart_optimizer(classifier: tf_keras.Model) -> None:
    """Zero the compiled optimizer's state (step count, Adam moments) so the next ``fit`` starts its
    learning-rate schedule afresh, as a new ``compile`` would, but reuses the traced training step:
    each recompile keeps another traced graph alive (lesson 9: about 0.4 GB per run)."""
    from toxhelpers.tf_setup import tf

    variables = classifier.optimizer.variables
    for variable in variables() if callable(variables) else variables:  # a method in Keras's legacy optimizers
        variable.assign(tf.zeros_like(variable))


def extract_features(encoder: Any, encoded: dict[str, np.ndarray], batch_size: int = 64,
                     padding: str = "bucketed", predict: Any = batches.predict) -> dict[str, np.ndarray]:
    """Pooled vectors of every row from one pass of the (frozen) encoder: {"cls": ..., "mean": ...}.
    ``predict`` runs a model over the rows: ``batches.predict``, or one that saves as it goes."""
    extractor = model.build_feature_extractor(encoder)
    cls_vectors, mean_vectors = predict(extractor, encoded, batch_size=batch_size, padding=padding)
    return {"cls": cls_vectors, "mean": mean_vectors}


def early_stopping(patience: int) -> tf_keras.callbacks.EarlyStopping:
    """Stop when validation ROC-AUC stops improving and go back to the best epoch's weights."""
    return tf_keras.callbacks.EarlyStopping(monitor=MONITOR, mode="max", patience=patience,
                                            restore_best_weights=True)


@tf_keras.utils.register_keras_serializable(package="toxhelpers")
class LinearWarmupDecay(tf_keras.optimizers.schedules.LearningRateSchedule):
    """BERT's fine-tuning schedule: the learning rate climbs linearly from 0 to ``peak`` over
    ``warmup_steps``, then falls linearly to 0 at ``total_steps``.

    Why: the first updates come from a head that has never seen a moving encoder, and Adam's
    moment estimates are still poor; small steps then protect the pretrained weights. Decaying to
    0 lets one short run settle instead of stopping mid-stride, which is what makes a single epoch
    at a higher peak rate as good as several epochs at a constant low one (lesson 6 measures it).
    """

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0):
        super().__init__()
        if peak <= 0 or total_steps < 1 or not 0 <= warmup_steps < total_steps:
            raise ValueError(f"need peak > 0 and 0 <= warmup_steps < total_steps, got peak {peak}, "
                             f"total_steps {total_steps}, warmup_steps {warmup_steps}")
        self.peak, self.total_steps, self.warmup_steps = float(peak), int(total_steps), int(warmup_steps)

    def __call__(self, step: Any) -> Any:
        from toxhelpers.tf_setup import tf

        step = tf.cast(step, tf.float32) + 1.0  # Keras counts from 0; the first update is step 1
        rising = self.peak * step / max(self.warmup_steps, 1)
        falling = self.peak * tf.maximum(self.total_steps - step + 1.0, 0.0) / (self.total_steps - self.warmup_steps)
        return tf.where(step <= self.warmup_steps, rising, tf.minimum(falling, self.peak))

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}


def learning_rate_schedule(peak: float, total_steps: int, schedule: str = "linear",
                           warmup_fraction: float = 0.1) -> Any:
    """The learning rate lesson 6 fine-tunes with: ``"constant"`` (the article: ``peak`` throughout)
    or ``"linear"`` (warm-up over ``warmup_fraction`` of the steps, then linear decay to 0)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if not 0 <= warmup_fraction < 1:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
    if schedule == "constant":
        return float(peak)
    return LinearWarmupDecay(peak, total_steps, int(warmup_fraction * total_steps))


SCHEDULES = ("constant", "linear")


class ValidationScores(tf_keras.callbacks.Callback):
    """Validation ROC-AUC and PR-AUC after every epoch, put into the epoch's logs as
    ``val_roc_auc``/``val_pr_auc`` (so :func:`early_stopping` can watch them).

    Cheaper than ``fit(validation_data=...)``: it scores through :func:`batches.predict`, rows
    sorted by length and one inference graph for every shape (the same graph lesson 6 later scores
    validation and test with), instead of Keras tracing a test step per bucket width. The
    probabilities of every epoch are kept, so the best epoch's need no second pass.
    """

    def __init__(self, encoded: dict[str, np.ndarray], labels: np.ndarray, batch_size: int = 64):
        super().__init__()
        self.encoded, self.labels, self.batch_size = encoded, np.asarray(labels), batch_size
        self.probabilities: dict[int, np.ndarray] = {}
        self.seconds = 0.0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from toxhelpers import evaluation

        started = time.perf_counter()
        probabilities = batches.predict(self.model, self.encoded, self.batch_size)[:, 0]
        scores = evaluation.binary_metrics(self.labels, probabilities)
        self.probabilities[epoch + 1] = probabilities
        self.seconds += time.perf_counter() - started
        if logs is not None:
            logs.update({"val_roc_auc": scores["roc_auc"], "val_pr_auc": scores["pr_auc"]})

    def get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """For :class:`toxhelpers.checkpointing.TrainingCheckpoint`: the epochs scored so far and their probabilities."""
        epochs = sorted(self.probabilities)
        return {"epochs": epochs, "seconds": self.seconds}, {"probabilities": [self.probabilities[e] for e in epochs]}

    def set_state(self, values: dict[str, Any], arrays: dict[str, Any]) -> None:
        self.probabilities = dict(zip(values["epochs"], arrays.get("probabilities", [])))
        self.seconds = values["seconds"]


class StepLog(tf_keras.callbacks.Callback):
    """The learning rate and the running training loss at every step, for plotting one epoch
    from the inside (a one-epoch history has a single point per metric).

    It uses only the callback interface Keras 3 kept, so a Keras 3 ``fit`` takes it too (lesson
    12), as it takes :class:`ValidationScores` and :class:`ProgressBar`."""

    def __init__(self):
        super().__init__()
        self.rows: list[dict[str, float]] = []

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        optimizer = self.model.optimizer
        step = int(optimizer.iterations.numpy())
        rate, schedule = optimizer.learning_rate, getattr(optimizer, "_learning_rate", None)
        if not callable(rate) and callable(schedule):  # Keras 3 (lesson 12) gives the rate of the step to come
            rate = schedule
        rate = rate(step - 1) if callable(rate) else rate
        # get_value, not np.asarray: under a tf.distribute strategy the rate is a mirrored variable
        self.rows.append({"step": step, "learning_rate": float(tf_keras.backend.get_value(rate)),
                          "loss": float((logs or {}).get("loss", np.nan))})

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows).set_index("step")

    def get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """For :class:`toxhelpers.checkpointing.TrainingCheckpoint`: the steps logged so far."""
        return {"rows": self.rows}, {}

    def set_state(self, values: dict[str, Any], arrays: dict[str, Any]) -> None:
        self.rows = [dict(row) for row in values["rows"]]


class ProgressBar(tf_keras.callbacks.Callback):
    """One plain-text progress bar per epoch, then one line of metrics.

    Plain text (not a widget) so it reads the same in JupyterLab, in a papermill log and in an
    executed notebook. ``batches_per_epoch`` may be an estimate (bucketed batching makes a few
    partial batches): the bar just runs a little past or short of its end.
    """

    def __init__(self, batches_per_epoch: int, mininterval: float = 5.0):
        super().__init__()
        self.batches_per_epoch = batches_per_epoch
        self.mininterval = mininterval
        self.bar = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=self.batches_per_epoch, desc=f"epoch {epoch + 1}/{self.params['epochs']}",
                        unit="batch", mininterval=self.mininterval, ascii=True, leave=True)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if batch > self.bar.n:  # a resumed epoch starts past its first batch: the time left is the rest's
            self.bar.n = self.bar.last_print_n = self.bar.initial = batch
            self.bar.refresh()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.bar.update(1)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.bar.close()
        print(f"epoch {epoch + 1}: " + ", ".join(f"{name} {value:.4f}" for name, value in (logs or {}).items()))


def fit_head(head: tf_keras.Model, train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray,
             val_y: np.ndarray, learning_rate: float, epochs: int = 6, batch_size: int = 32,
             gamma: float = 2.0, alpha: float = 0.2, patience: int = 2, seed: int = 42,
             verbose: int = 0) -> pd.DataFrame:
    """Train a head on cached features with early stopping; return the per-epoch history."""
    seed_everything(seed)
    model.compile_model(head, learning_rate=learning_rate, gamma=gamma, alpha=alpha)
    history = head.fit(train_x, np.asarray(train_y, np.float32), validation_data=(val_x, np.asarray(val_y, np.float32)),
                       epochs=epochs, batch_size=batch_size, shuffle=True, verbose=verbose,
                       callbacks=[early_stopping(patience)])
    return history_frame(history)


def history_frame(history: Any) -> pd.DataFrame:
    """Keras History as a table, one row per epoch (epoch numbers from 1)."""
    frame = pd.DataFrame(history.history)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="epoch")
    return frame


def best_epoch(history: pd.DataFrame) -> int:
    return int(history[MONITOR].idxmax())


def head_grid(features: dict[str, dict[str, np.ndarray]], labels: dict[str, np.ndarray],
              poolings: Iterable[str], learning_rates: Iterable[float], head_sizes: Iterable[list[int]],
              head_dropout: float, epochs: int, batch_size: int, gamma: float, alpha: float,
              patience: int, seed: int) -> pd.DataFrame:
    """Train one head per (pooling, learning rate, sizes) and score it on VALIDATION only.

    ``features[split][pooling]`` are cached pooled vectors; ``labels[split]`` the 0/1 labels,
    for splits "train" and "validation". Returns a table sorted best first.
    """
    rows = []
    for pooling, learning_rate, sizes in itertools.product(poolings, learning_rates, head_sizes):
        train_x, val_x = features["train"][pooling], features["validation"][pooling]
        head = model.build_head(train_x.shape[1], sizes, head_dropout, seed=seed)
        started = time.perf_counter()
        history = fit_head(head, train_x, labels["train"], val_x, labels["validation"], learning_rate,
                           epochs, batch_size, gamma, alpha, patience, seed)
        best = history.loc[best_epoch(history)]
        rows.append({"pooling": pooling, "learning_rate": learning_rate, "head_sizes": list(sizes),
                     "best_epoch": best_epoch(history), "epochs_run": len(history),
                     "val_roc_auc": best["val_roc_auc"], "val_pr_auc": best["val_pr_auc"],
                     "val_loss": best["val_loss"], "seconds": time.perf_counter() - started})
    return pd.DataFrame(rows).sort_values("val_roc_auc", ascending=False, ignore_index=True)


# Lesson 5's choices: train lesson 4's head, or carry the best head of a grid into lesson 6.
HEAD_CHOICES = ("lesson 4", "grid")


def grid_winner(grid: pd.DataFrame) -> dict[str, Any]:
    """The best configuration of a :func:`head_grid` table (its first row), to carry into fine-tuning.

    The grid ranks heads by phase-1 validation ROC-AUC, i.e. as frozen models. That is not the
    same as the best starting point for fine-tuning, which only a phase-2 run can tell; hence
    lesson 5's ``head_choice``, made once on validation results and kept as a parameter.
    """
    if grid.empty:
        raise ValueError("head_choice='grid' needs at least one trained grid configuration")
    best = grid.iloc[0]
    return {"pooling": str(best["pooling"]), "learning_rate": float(best["learning_rate"]),
            "head_sizes": [int(size) for size in best["head_sizes"]]}


def seconds_per_step(classifier: tf_keras.Model, dataset: Any, timed_batches: int, warmup_batches: int = 2) -> float:
    """Average seconds of a training step over ``timed_batches`` steps of ``dataset``.

    The first ``warmup_batches`` steps are not timed: they trace the training graph. With bucketed
    batches, warm up on every width first (:func:`batches.warmup_dataset`, as
    :func:`padding_throughput` does), or a width met for the first time is billed to the timing.
    A measurement, not a test.
    """
    dataset = dataset.repeat()  # a small training split still yields every batch asked for
    classifier.fit(dataset.take(warmup_batches), epochs=1, verbose=0)
    started = time.perf_counter()
    classifier.fit(dataset.skip(warmup_batches).take(timed_batches), epochs=1, verbose=0)
    return (time.perf_counter() - started) / timed_batches


def seconds_per_epoch(classifier: tf_keras.Model, dataset: Any, batches_in_epoch: int, timed_batches: int,
                      warmup_batches: int = 2) -> float:
    """Time ``timed_batches`` training steps and extrapolate to an epoch of ``batches_in_epoch``
    (:func:`batches.batches_per_epoch`)."""
    return seconds_per_step(classifier, dataset, timed_batches, warmup_batches) * batches_in_epoch


def examples_per_second(classifier: tf_keras.Model, dataset: Any, rows_per_batch: float, timed_batches: int,
                        warmup_batches: int = 2) -> float:
    """Training throughput over ``timed_batches`` steps (after warm-up). ``rows_per_batch`` is the
    dataset's average (rows / batches per epoch): with a token cap, batches of long comments are
    smaller, and the timed steps are a random draw of the epoch's batches."""
    return rows_per_batch / seconds_per_step(classifier, dataset, timed_batches, warmup_batches)


TIMING_ROWS = 4096  # rows a speed measurement draws its steps from (padding_throughput)


def padding_throughput(classifier: tf_keras.Model, encoded: dict[str, np.ndarray], labels: np.ndarray,
                       batch_size: int, timed_batches: int, seed: int = 42,
                       tokens_per_batch: int | None = None) -> dict[str, float]:
    """Training examples/s with fixed and with bucketed padding, both from the same weights.

    Before each timing the model trains one batch of every width that padding produces
    (:func:`batches.warmup_dataset`), so no first-time cost of a new width falls in the timed
    steps. The weights are put back afterwards, but the optimiser has taken steps: compile the
    model again before training it for real. The steps come from a seeded draw of at most
    ``TIMING_ROWS`` rows: a dataset of every training row (a copy of the arrays and a shuffle
    buffer of all of them, 150-250 MB at Kaggle's size) to time a handful of steps was waste. The
    weights to put back wait on disk, not in memory: a copy of every weight (91 MB for the bundled
    encoder, 265 MB for DistilBERT) raised lesson 6's high-water mark past its fit's at Kaggle's size
    (2,883 -> 2,948 MB on one machine; +110 MB against +1 MB in a probe on the bundled encoder).
    """
    if len(labels) > TIMING_ROWS:
        drawn = np.sort(np.random.default_rng(seed).choice(len(labels), TIMING_ROWS, replace=False))
        encoded, labels = {name: values[drawn] for name, values in encoded.items()}, np.asarray(labels)[drawn]
    speed = {}
    with tempfile.TemporaryDirectory(prefix="toxhelpers-timing-") as scratch:
        start = str(Path(scratch) / "weights")
        classifier.save_weights(start)
        for padding in ("fixed", "bucketed"):
            classifier.fit(batches.warmup_dataset(encoded, labels, batch_size, padding, tokens_per_batch=tokens_per_batch),
                           epochs=1, verbose=0)
            dataset = batches.training_dataset(encoded, labels, batch_size, padding, seed, tokens_per_batch=tokens_per_batch)
            rows_per_batch = len(labels) / batches.batches_per_epoch(encoded, batch_size, padding,
                                                                     tokens_per_batch=tokens_per_batch)
            speed[padding] = examples_per_second(classifier, dataset, rows_per_batch, timed_batches, warmup_batches=1)
            classifier.load_weights(start).expect_partial()
    speed["speedup"] = speed["bucketed"] / speed["fixed"]
    return speed
