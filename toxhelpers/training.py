"""Training helpers for the two phases: a head on a frozen encoder, then fine-tuning everything.

Phase 1 trick: with the encoder frozen, its output for a comment never changes, so the pooled
vectors can be computed ONCE and the head trained on them for as many epochs and grid
configurations as we like, at the cost of a tiny dense network per step. The trade-off: the
encoder's dropout no longer acts during phase 1 (the features are computed in inference mode),
so the head sees the same vector for a comment every epoch instead of a slightly noisy one.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
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
                     padding: str = "bucketed") -> dict[str, np.ndarray]:
    """Pooled vectors of every row from one pass of the (frozen) encoder: {"cls": ..., "mean": ...}."""
    extractor = model.build_feature_extractor(encoder)
    cls_vectors, mean_vectors = batches.predict(extractor, encoded, batch_size, padding)
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
        """For :class:`TrainingCheckpoint`: the epochs scored so far and their probabilities."""
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
        """For :class:`TrainingCheckpoint`: the steps logged so far."""
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
    buffer of all of them, 150-250 MB at Kaggle's size) to time a handful of steps was waste.
    """
    if len(labels) > TIMING_ROWS:
        drawn = np.sort(np.random.default_rng(seed).choice(len(labels), TIMING_ROWS, replace=False))
        encoded, labels = {name: values[drawn] for name, values in encoded.items()}, np.asarray(labels)[drawn]
    start = classifier.get_weights()
    speed = {}
    for padding in ("fixed", "bucketed"):
        classifier.fit(batches.warmup_dataset(encoded, labels, batch_size, padding, tokens_per_batch=tokens_per_batch),
                       epochs=1, verbose=0)
        dataset = batches.training_dataset(encoded, labels, batch_size, padding, seed, tokens_per_batch=tokens_per_batch)
        rows_per_batch = len(labels) / batches.batches_per_epoch(encoded, batch_size, padding,
                                                                 tokens_per_batch=tokens_per_batch)
        speed[padding] = examples_per_second(classifier, dataset, rows_per_batch, timed_batches, warmup_batches=1)
        classifier.set_weights(start)
    speed["speedup"] = speed["bucketed"] / speed["fixed"]
    return speed


# ------------------------------------------------------------------------------ resuming a fit


class TrainingCheckpoint(tf_keras.callbacks.Callback):
    """Saves the training state every ``every`` steps, so a ``fit`` that was interrupted (Ctrl-C,
    a killed process, a closed laptop) continues from its last save when it runs again, and ends
    with the model an uninterrupted fit ends with. ``every=0``: no saves, no resuming.

    Put it last in ``fit``'s callbacks. It writes to ``artifacts_dir/.checkpoints/<section>``
    (the artifact ``<section>_checkpoint``) and removes the folder when the fit completes. Saved,
    atomically: the weights; the optimizer's step count and moments; the running sums of the
    metrics; the random state of every dropout layer; the epoch and step reached; and what the
    fit's other callbacks recorded (the history, early stopping's best epoch, the validation
    scores, the step log). On a rerun the epoch goes on from the saved step: the seeded batches
    of ``data`` (the dataset given to ``fit``, from :func:`batches.training_dataset`) come out in
    the same order in every process, so the ones already trained on are read and skipped. (Keras's
    ``BackupAndRestore`` restores the epoch and step but starts the epoch's data from its first
    batch again.)

    **Dropout.** Keras draws dropout masks with random ops whose state lives inside TensorFlow's
    kernels, out of any checkpoint's reach. For the length of the fit, each dropout layer draws
    the same masks from a ``tf.random.Generator`` started at the state the op's kernel starts at
    (:class:`DropoutStates`), whose state is a variable that is saved. So a fit with this callback,
    saving or not, interrupted or not, computes exactly what a fit without it computes, provided
    its training step is traced for this fit (a model compiled since its last fit, as lessons 5
    and 6 do; a model fitted before without compiling again gets a fresh training step, so its
    masks start afresh).

    A checkpoint is used only by a fit of the same inputs: its key covers the batches (rows,
    labels, batch sizes, padding, seed), the model's layers and starting weights, the optimizer
    and its schedule, the loss, the epochs and steps, and the other callbacks. An edit to code the
    fit calls is not in the key: ``toxhelpers run`` discards a lesson's checkpoints when its code or
    inputs changed, and in JupyterLab the fit says when it resumes. One process only: not under a
    ``tf.distribute`` strategy (lesson 11 does not checkpoint).
    """

    def __init__(self, artifacts_dir: str | os.PathLike, section: str, data: Any, every: int = 50):
        super().__init__()
        from toxhelpers.artifacts import artifact_path

        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 0:
            raise ValueError(f"every must be a whole number of steps >= 0 (0: no checkpoints), got {every!r}")
        self.folder = artifact_path(artifacts_dir, f"{section}_checkpoint")
        self.data, self.every, self.data_key = data, int(every), batches.fingerprint(data)
        self.resumed_from: dict[str, int] | None = None  # the saved position this fit went on from
        self._pending: dict[str, Any] | None = None  # a save being resumed, until its epoch begins
        self._others: list[tf_keras.callbacks.Callback] = []
        self._epoch = 0
        self._dropout = DropoutStates()

    # -- the fit's hooks, in the order Keras calls them

    def on_train_begin(self, logs: dict | None = None) -> None:
        from toxhelpers import distribute

        if not distribute.is_default(self.model.distribute_strategy):
            raise ValueError("TrainingCheckpoint saves one process's training; it cannot run under a "
                             "tf.distribute strategy")
        self._others = other_callbacks(self)
        if not self.every:
            return
        self._dropout.attach(self.model)
        traced = getattr(self.model.train_function, "experimental_get_tracing_count", lambda: 0)()
        if traced:  # a step traced (and run) before this fit: trace one with the saveable dropout
            self.model.train_function = self.model.make_train_function(force=True)
        self.key = self._key()
        saved = self._usable_save()
        if saved is not None:
            self._resume(saved)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch
        if self._pending is not None:  # Keras has just reset the metrics and started a new history
            restore_callback_state(self.model.history, self._pending["callbacks"][-1],
                                   self._pending["arrays"], len(self._others))
            if self._pending["position"]["step"]:
                for variable, value in zip(metric_variables(self.model), self._pending["arrays"]["metrics"]):
                    variable.assign(value)
            self._pending = None
        elif epoch and self.every:  # every callback has finished the previous epoch: save its end
            self._save(epoch, 0)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if not self.every:
            return
        self._dropout.stepped()
        done = batch + 1
        if done % self.every == 0 and done < self.params["steps"]:
            self._save(self._epoch, done)

    def on_train_end(self, logs: dict | None = None) -> None:
        # the layers get their own generators back; the traced step keeps drawing from the saveable
        # ones, as a fit without this callback would keep its kernels, if the model trains on
        self._dropout.detach()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- saving

    def _save(self, epoch: int, step: int) -> None:
        from toxhelpers.artifacts import write_json

        iterations = int(self.model.optimizer.iterations.numpy())
        target, scratch = self.folder / f"step-{iterations:09d}", self.folder / f".writing-{iterations:09d}"
        shutil.rmtree(scratch, ignore_errors=True)
        self._state().write(str(scratch / "state"))
        callbacks = self._others + [self.model.history]
        states, arrays = zip(*(callback_state(callback) for callback in callbacks)) if callbacks else ((), ())
        flat = {f"callback{index}.{name}": value for index, named in enumerate(arrays) for name, value in named.items()}
        flat["metrics"] = [variable.numpy() for variable in metric_variables(self.model)]
        flat.update({f"{DROPOUT_PREFIX}{name}": state for name, state in self._dropout.states().items()})
        np.savez(scratch / "arrays.npz", **flatten_arrays(flat))
        # in their own file, unsorted: the order of a history's columns is part of what it recorded
        (scratch / "callbacks.json").write_text(json.dumps(list(states), default=_plain_number))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(scratch, target)
        write_json({"key": self.key, "position": {"epoch": epoch, "step": step, "iterations": iterations},
                    "folder": target.name, "saved_at": time.strftime("%Y-%m-%d %H:%M:%S")},
                   self.folder / "latest.json")  # switching to the new save is this one atomic write
        for old in self.folder.glob("step-*"):
            if old != target:
                shutil.rmtree(old, ignore_errors=True)

    def _state(self) -> Any:
        """What tf.train.Checkpoint saves: weights and optimizer variables (built now if no step
        has built them yet, so a restore has somewhere to go). The dropout states go with the
        arrays: their generators are made when the step is traced, after a restore."""
        from toxhelpers.tf_setup import tf

        optimizer = self.model.optimizer
        optimizer.build(self.model.trainable_variables)
        variables = optimizer.variables() if callable(optimizer.variables) else optimizer.variables
        return tf.train.Checkpoint(weights=list(self.model.weights), optimizer=list(variables))

    def _key(self) -> dict[str, str]:
        """What a checkpoint must have been saved by to be resumed from, part by part (so a
        mismatch can be named)."""
        try:
            layers = _without_names(self.model.get_config())  # Keras numbers the names of a rebuilt model
        except NotImplementedError:  # a subclassed model: its weights' shapes
            layers = [weight.shape.as_list() for weight in self.model.weights]
        weights = hashlib.sha256()
        for weight in self.model.weights:
            weights.update(np.ascontiguousarray(weight.numpy()).tobytes())
        loss = self.model.loss
        return {"batches": self.data_key, "layers": _digest(layers), "starting weights": weights.hexdigest(),
                "optimizer": _digest(tf_keras.optimizers.serialize(self.model.optimizer)),
                "loss": _digest(loss.get_config() if hasattr(loss, "get_config") else repr(loss)),
                "epochs and steps": _digest([self.params["epochs"], self.params["steps"]]),
                "callbacks": _digest([callback_settings(callback) for callback in self._others])}

    # -- resuming

    def _usable_save(self) -> dict[str, Any] | None:
        """The last complete save, if a fit with the same key made it."""
        from toxhelpers.artifacts import read_json

        try:
            latest = read_json(self.folder / "latest.json")
            with np.load(self.folder / latest["folder"] / "arrays.npz") as archive:
                arrays = unflatten_arrays(dict(archive))
            callbacks = read_json(self.folder / latest["folder"] / "callbacks.json")
        except (OSError, ValueError, KeyError):
            return None  # nothing saved yet
        different = [part for part, value in self.key.items() if latest["key"].get(part) != value]
        if different:
            print(f"not resuming: the checkpoint in {self.folder} was saved by a fit with other "
                  f"{', '.join(different)}; training from the first step")
            return None
        return {**latest, "arrays": arrays, "callbacks": callbacks}

    def _resume(self, saved: dict[str, Any]) -> None:
        epoch, step = saved["position"]["epoch"], saved["position"]["step"]
        self._state().read(str(self.folder / saved["folder"] / "state")).assert_consumed()
        self._dropout.restore({name[len(DROPOUT_PREFIX):]: value for name, value in saved["arrays"].items()
                               if name.startswith(DROPOUT_PREFIX)})
        for index, callback in enumerate(self._others):
            restore_callback_state(callback, saved["callbacks"][index], saved["arrays"], index)
        self._pending = saved  # the history and the metrics: Keras resets both after this hook
        for _ in range(epoch):  # epoch k's shuffle comes from the k-th fresh iterator of the same dataset
            iter(self.data)
        self.model._training_state = _ResumePoint(self.model, epoch, step)  # where Keras's fit asks (epoch, step)
        if step:
            skip_batches(self.model, self.data, step)
        self.resumed_from = {"epoch": epoch, "step": step}
        print(f"resuming from the checkpoint saved {saved['saved_at']}: epoch {epoch + 1} of {self.params['epochs']}, "
              f"after step {step} of {self.params['steps']} ({self.folder})")


DROPOUT_PREFIX = "dropout."  # a dropout generator's state in a save's arrays

NAMING_KEYS = ("name", "inbound_nodes", "input_layers", "output_layers")


def _without_names(config: Any) -> Any:
    """A Keras config without the layers' names and the wiring that refers to them by name:
    the same model built twice in one process gets other names (``dense_1``), not other layers."""
    if isinstance(config, dict):
        return {key: _without_names(value) for key, value in config.items() if key not in NAMING_KEYS}
    if isinstance(config, (list, tuple)):
        return [_without_names(item) for item in config]
    return config


def _plain_number(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot save {type(value).__name__} in a checkpoint's JSON")


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


class _ResumePoint:
    """Keras's ``fit`` asks ``model._training_state`` for the epoch and step to start at, after
    ``on_train_begin`` (the hook ``BackupAndRestore`` uses). Answers once."""

    def __init__(self, model: tf_keras.Model, epoch: int, step: int):
        self.model, self.epoch, self.step = model, epoch, step

    def maybe_load_initial_counters_from_ckpt(self, steps_per_epoch: int, initial_epoch: int,
                                              mode: Any = None) -> tuple[int, int]:
        self.model._training_state = None
        return self.epoch, self.step


def skip_batches(model: tf_keras.Model, data: Any, count: int) -> None:
    """Make ``model``'s next training step first read ``count`` batches of ``data`` and drop them
    (the ones the interrupted epoch trained on); later steps run as usual."""
    original = model.train_function

    def first_step(iterator: Any) -> Any:
        model.train_function = original
        if getattr(iterator, "_dataset", data) is not data:
            raise ValueError("fit was given another dataset than its TrainingCheckpoint: pass the same one to both")
        for _ in range(count):
            next(iterator)
        return original(iterator)

    model.train_function = first_step


def other_callbacks(callback: tf_keras.callbacks.Callback) -> list[tf_keras.callbacks.Callback]:
    """The callbacks ``callback`` runs with in a ``fit``, besides Keras's own history and progress
    bar. Keras gives a callback no handle on the others, but its ``CallbackList`` calls each one's
    hooks from a loop: it is the ``self`` of a calling frame."""
    frame = sys._getframe(1)
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, tf_keras.callbacks.CallbackList) and any(item is callback for item in owner.callbacks):
            keras_own = (tf_keras.callbacks.History, tf_keras.callbacks.ProgbarLogger)
            mine = [item for item in owner.callbacks if not isinstance(item, keras_own)]
            if mine[-1] is not callback:
                raise ValueError(f"{type(callback).__name__} must come last in fit's callbacks, so that what "
                                 "the others recorded at each step is in its saves")
            return mine[:-1]
        frame = frame.f_back
    raise RuntimeError(f"{type(callback).__name__} works inside Model.fit only (pass it in callbacks=[...])")


def callback_settings(callback: tf_keras.callbacks.Callback) -> Any:
    """A callback's kind and settings, for a checkpoint's key."""
    if isinstance(callback, tf_keras.callbacks.EarlyStopping):
        return [type(callback).__name__, callback.monitor, callback.patience, callback.min_delta,
                callback.restore_best_weights, callback.baseline, callback.start_from_epoch]
    return type(callback).__name__


EARLY_STOPPING_STATE = ("wait", "stopped_epoch", "best", "best_epoch")


def callback_state(callback: tf_keras.callbacks.Callback) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a callback has recorded so far, as (JSON-able values, arrays): Keras's history and
    early stopping, and any callback with ``get_state()`` (this module's); others keep nothing."""
    if isinstance(callback, tf_keras.callbacks.History):
        return {"epoch": list(callback.epoch), "history": callback.history}, {}
    if isinstance(callback, tf_keras.callbacks.EarlyStopping):
        best = {} if callback.best_weights is None else {"best_weights": list(callback.best_weights)}
        return {name: getattr(callback, name) for name in EARLY_STOPPING_STATE}, best
    if hasattr(callback, "get_state"):
        return callback.get_state()
    return {}, {}


def restore_callback_state(callback: tf_keras.callbacks.Callback, values: dict[str, Any],
                           arrays: dict[str, Any], index: int) -> None:
    """Put back what :func:`callback_state` saved (``arrays`` holds every callback's, by index)."""
    prefix = f"callback{index}."
    own = {name[len(prefix):]: value for name, value in arrays.items() if name.startswith(prefix)}
    if isinstance(callback, tf_keras.callbacks.History):
        callback.epoch, callback.history = list(values["epoch"]), dict(values["history"])
    elif isinstance(callback, tf_keras.callbacks.EarlyStopping):
        for name in EARLY_STOPPING_STATE:
            setattr(callback, name, values[name])
        callback.best_weights = own.get("best_weights")
    elif hasattr(callback, "set_state"):
        callback.set_state(values, own)


def flatten_arrays(arrays: dict[str, Any]) -> dict[str, np.ndarray]:
    """{name: array or list of arrays} as the flat {name: array} an .npz holds (lists as name#i)."""
    flat = {}
    for name, value in arrays.items():
        if isinstance(value, list):
            flat[f"{name}#len"] = np.array(len(value))
            flat.update({f"{name}#{index}": np.asarray(item) for index, item in enumerate(value)})
        else:
            flat[name] = np.asarray(value)
    return flat


def unflatten_arrays(flat: dict[str, np.ndarray]) -> dict[str, Any]:
    """The inverse of :func:`flatten_arrays`."""
    arrays: dict[str, Any] = {name: value for name, value in flat.items() if "#" not in name}
    for name in flat:
        if name.endswith("#len"):
            base = name[:-len("#len")]
            arrays[base] = [flat[f"{base}#{index}"] for index in range(int(flat[name]))]
    return arrays


def metric_variables(model: tf_keras.Model) -> list[Any]:
    """The running sums behind the fit's metrics (the loss's mean, accuracy, AUC...). Keras builds
    them at the first training step; a resumed fit needs them before it, so they are built here
    from the model's output shape if need be."""
    from toxhelpers.tf_setup import tf

    if not (model.compiled_loss.built and model.compiled_metrics.built):
        outputs = [tf.zeros([1] + output.shape[1:], output.dtype) for output in model.outputs]
        predicted = outputs[0] if len(outputs) == 1 else outputs
        model.compiled_loss.build(predicted)
        model.compiled_metrics.build(predicted, predicted)
    return [variable for metric in model.metrics for variable in metric.variables]


class DropoutStates:
    """Dropout whose random state a checkpoint can save, drawing the very masks Keras draws.

    A Keras ``Dropout`` layer (random generator "legacy_stateful", Keras's default) draws its mask
    with TensorFlow's ``RandomUniform`` op. The op's Philox generator starts at key = the global
    seed, counter = (0, the op's seed: its number among the traced function's random ops, or the
    layer's own seed) and lives inside the op's kernel, which advances its counter by 256 for each
    number drawn; no checkpoint can read or set it. For the length of a fit, :meth:`attach` has
    each such layer draw instead from a ``tf.random.Generator`` set, when the training step is
    traced, to that same starting state: its ``StatefulUniform`` op advances the counter by the
    same amount and fills the mask with the same Philox numbers, so the masks, and every number of
    the fit, are those of a fit without it (tests compare them bit for bit). Its state is a
    variable, saved with the checkpoint and put back on a resume. A layer that already draws from
    a ``tf.random.Generator`` (Keras's "stateful") keeps it, its state saved; a "stateless" one
    has no state to save. The generators are made before the fit (a ``tf.function`` may not make
    variables when it traces again), one per layer: a layer used twice in one step is refused.
    """

    def __init__(self) -> None:
        self.generators: dict[str, Any] = {}  # "<layer>" (a legacy layer's) or "<layer>.own" -> generator
        self._own: list[tuple[Any, Any]] = []  # (layer, its own random generator), to give back
        self._restored: dict[str, np.ndarray] | None = None  # states to start the step's traces from
        self._calls: Any = None  # per traced graph: the layers that drew in it
        self._stepped = False  # a traced step has run: tracing again would reset states in use

    def attach(self, model: tf_keras.Model) -> None:
        import weakref

        from tf_keras.src.backend import RandomGenerator  # Keras's layer-level RNG (not exported)

        from toxhelpers.tf_setup import tf

        self.generators, self._calls, self._stepped = {}, weakref.WeakKeyDictionary(), False
        random_layers = [layer for layer in model.submodules  # a fixed order: tf.Module walks attributes by name
                         if isinstance(getattr(layer, "_random_generator", None), (RandomGenerator, _SavedDropout))]
        for index, layer in enumerate(random_layers):
            own = layer._random_generator
            if isinstance(own, _SavedDropout):  # left by a fit that was interrupted in this process
                own = layer._random_generator = own.own
            if own._rng_type == RandomGenerator.RNG_STATEFUL:
                own._maybe_init()
                self.generators[f"{index}.own"] = own._generator
            elif own._rng_type == RandomGenerator.RNG_LEGACY_STATEFUL:
                self._own.append((layer, own))
                layer._random_generator = _SavedDropout(own, self, str(index))
                self.generators[str(index)] = tf.random.Generator.from_state(np.zeros(3, np.int64), alg="philox")

    def generator(self, layer: str, seeds: tuple[int | None, int | None]) -> Any:
        """Layer ``layer``'s generator, set (outside the trace being built, with ``init_scope``)
        to the state the legacy op of this trace would start at, or to the checkpoint's state when
        resuming. Each trace sets it again, as each trace gets fresh ops: Keras traces a fit's step
        once or twice (a first trace that makes variables is traced again) before it runs."""
        from tensorflow.python.framework import ops

        from toxhelpers.tf_setup import tf

        drawn = self._calls.setdefault(ops.get_default_graph(), set())
        if layer in drawn:
            raise ValueError("TrainingCheckpoint: a dropout layer is called twice in one training step; its masks "
                             "cannot be saved (fit with checkpoint every=0)")
        if self._stepped:
            raise ValueError("TrainingCheckpoint: the training step was traced again after it ran (another input "
                             "signature?), which would restart the dropout masks in use (fit with every=0)")
        drawn.add(layer)
        if self._restored is not None and layer not in self._restored:
            raise ValueError(f"dropout layer {layer} of this model has no state in the checkpoint: it was saved by "
                             "another model")
        generator = self.generators[layer]
        with tf.init_scope():
            if self._restored is not None:
                generator.reset(self._restored[layer])
            elif seeds[0] is None:  # no global seed: the legacy op starts from a random state too
                generator.reset_from_seed(int(np.random.SeedSequence().generate_state(1)[0]))
            else:  # Philox state [counter low, counter high, key]
                generator.reset(np.array([0, seeds[1], seeds[0]], np.int64))
        return generator

    def states(self) -> dict[str, np.ndarray]:
        return {name: generator.state.numpy() for name, generator in self.generators.items()}

    def restore(self, states: dict[str, np.ndarray]) -> None:
        """Start the step's traces from a checkpoint's states (a "stateful" layer's own generator
        at once)."""
        different = sorted(set(states) ^ set(self.generators))
        if different:
            raise ValueError(f"the checkpoint's dropout states ({', '.join(sorted(states))}) are not this model's "
                             f"random layers ({', '.join(sorted(self.generators))}): it was saved by another model")
        for name, state in states.items():
            if name.endswith(".own"):
                self.generators[name].reset(state)
        self._restored = {name: state for name, state in states.items() if not name.endswith(".own")}

    def stepped(self) -> None:
        """A traced step has run: the states now move on (and are not set again)."""
        self._stepped, self._restored = True, None

    def detach(self) -> None:
        for layer, own in self._own:
            layer._random_generator = own
        self._own = []


OTHER_DRAWS = ("random_normal", "random_uniform", "truncated_normal")  # Keras's other layer-level draws


class _SavedDropout:
    """Stands in for a layer's own "legacy_stateful" random generator during a fit (see
    :class:`DropoutStates`); anything but ``dropout`` is the layer's own."""

    def __init__(self, own: Any, states: DropoutStates, layer: str):
        self.own, self.states, self.layer = own, states, layer

    def __getattr__(self, name: str) -> Any:  # only for what the instance lacks
        if name.startswith("__") or name in ("own", "states", "layer"):  # copy, pickle: before __init__
            raise AttributeError(name)
        if name in OTHER_DRAWS:  # their state would be left out of the checkpoint: a resume would differ
            raise ValueError(f"TrainingCheckpoint saves the random state of dropout only; a layer of this model "
                             f"draws with {name} (e.g. GaussianNoise): fit it with checkpoint every=0")
        return getattr(self.own, name)

    def dropout(self, inputs: Any, rate: float, noise_shape: Any = None) -> Any:
        from tensorflow.python.framework import random_seed

        from toxhelpers.tf_setup import tf

        # the seeds the legacy op would take, taken the same way (the graph's op-seed count moves on alike)
        seeds = random_seed.get_seed(self.own.make_legacy_seed())
        generator = self.states.generator(self.layer, seeds)
        return tf.nn.experimental.general_dropout(inputs, rate=rate, uniform_sampler=generator.uniform,
                                                  noise_shape=noise_shape)
