"""Resuming an interrupted ``fit`` where it stopped: :class:`TrainingCheckpoint`, the callback
lessons 5 and 6 pass to ``fit`` (dropout's random masks become part of its saved state through
:class:`toxhelpers.dropout_states.DropoutStates`). :class:`FitCheckpoint` holds what does not
depend on the Keras that runs the fit; :class:`toxhelpers.keras3.TrainingCheckpoint` (lesson 12,
Keras 3) builds on it too; :mod:`toxhelpers.resumable_scoring` does the same for a long scoring,
with this module's :func:`model_key` and .npz layout (:func:`flatten_arrays`). Harness, not the
lessons' subject: the lessons show ``fit`` with it as one more callback, and this module holds how
it saves, checks and restores.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from toxhelpers.tf_setup import tf_keras

from toxhelpers import batches
from toxhelpers.dropout_states import DropoutStates


class FitCheckpoint:
    """What a resumable ``fit`` does, whichever Keras runs it: when to save, what a save's key is,
    which save a rerun may go on from, and the callbacks' recorded state. A subclass binds it to
    one Keras (:class:`TrainingCheckpoint`: tf-keras, lessons 5 and 6;
    :class:`toxhelpers.keras3.TrainingCheckpoint`: Keras 3, lesson 12) by naming the module
    (``keras``) and saying how that Keras keeps the model's state and starts a fit mid-epoch."""

    keras: Any  # the Keras module the fit and its callbacks come from (tf_keras, or keras 3)

    def __init__(self, artifacts_dir: str | os.PathLike, section: str, data: Any, every: int = 50):
        super().__init__()
        from toxhelpers.artifacts import checkpoint_path

        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 0:
            raise ValueError(f"every must be a whole number of steps >= 0 (0: no checkpoints), got {every!r}")
        self.folder = checkpoint_path(artifacts_dir, section)
        self.data, self.every, self.data_key = data, int(every), batches.fingerprint(data)
        self.resumed_from: dict[str, int] | None = None  # the saved position this fit went on from
        self.fit_seconds: float | None = None  # set when the fit ends: see on_train_end
        self.completed_before = False  # this fit had completed in an earlier run: nothing was trained
        self._earlier_seconds, self._began = 0.0, 0.0
        self._pending: dict[str, Any] | None = None  # a save being resumed, until its epoch begins
        self._others: list[Any] = []
        self._epoch = 0

    # -- the fit's hooks, in the order Keras calls them

    def on_train_begin(self, logs: dict | None = None) -> None:
        from toxhelpers import distribute

        if not distribute.is_default(self.model.distribute_strategy):
            raise ValueError(f"{type(self).__name__} saves one process's training; it cannot run under a "
                             "tf.distribute strategy")
        self._began, self._earlier_seconds, self.completed_before = time.perf_counter(), 0.0, False
        self._others = other_callbacks(self, self.keras)
        if not self.every:
            return
        self._prepare()
        self.key = self._key()
        saved = self._usable_save()
        if saved is not None:
            self._resume(saved)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch
        if self._pending is not None:  # Keras has just reset the metrics and started a new history
            self._restore_history_and_metrics()
        elif epoch and self.every:  # every callback has finished the previous epoch: save its end
            self._save(epoch, 0)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if not self.every:
            return
        self._stepped()
        done = batch + 1
        if done % self.every == 0 and done < self.params["steps"]:
            self._save(self._epoch, done)

    def on_train_end(self, logs: dict | None = None) -> None:
        """The fit's end is saved too, so that an interrupt in the lesson's later cells (at
        Kaggle's size lesson 6 scores 63,978 test rows after its fit) does not cost the fit: a
        rerun restores it instead of training. The lesson's record removes the folder
        (:func:`toxhelpers.artifacts.remove_checkpoint`). ``fit_seconds``: the seconds this fit
        took, plus, if it resumed, what the interrupted runs spent up to the save it went on from
        (the work they lost is redone here, and counted once): what an uninterrupted fit would
        have taken."""
        if self._pending is not None:  # resumed from a completed fit: no epoch began to restore into
            self._restore_history_and_metrics()
        self.fit_seconds = self._seconds()
        self._finished()
        if not self.every:
            shutil.rmtree(self.folder, ignore_errors=True)  # an earlier run's saves: stale now
        elif not self.completed_before:
            self._save(self.params["epochs"], 0, completed=True)

    def _restore_history_and_metrics(self) -> None:
        restore_callback_state(self.model.history, self._pending["callbacks"][-1], self._pending["arrays"],
                               len(self._others), self.keras)
        if self._pending["position"]["step"]:
            for variable, value in zip(self._metric_variables(), self._pending["arrays"]["metrics"]):
                variable.assign(value)
        self._pending = None

    def _seconds(self) -> float:
        return self._earlier_seconds + time.perf_counter() - self._began

    # -- what differs between the two Kerases

    def _prepare(self) -> None:
        """Before the key is taken: make the model's random state saveable, if it is not."""

    def _stepped(self) -> None:
        """A training step has run."""

    def _finished(self) -> None:
        """The fit has ended: undo what :meth:`_prepare` did."""

    def _state(self) -> Any:
        """The ``tf.train.Checkpoint`` of the model's and the optimizer's variables."""
        raise NotImplementedError

    def _write_state(self, folder: Path) -> dict[str, Any]:
        """Write the weights and the optimizer's variables into ``folder``; return any further
        arrays to keep with the callbacks' (a save's ``arrays.npz``)."""
        self._state().write(str(folder / "state"))
        return {}

    def _read_state(self, folder: Path, arrays: dict[str, Any]) -> None:
        """Put back what :meth:`_write_state` saved."""
        self._state().read(str(folder / "state")).assert_consumed()

    def _metric_variables(self) -> list[Any]:
        """The running sums behind the fit's metrics (the loss's mean among them)."""
        raise NotImplementedError

    def _start_at(self, epoch: int, step: int) -> None:
        """Make this ``fit`` start at ``epoch``, after its first ``step`` batches (read and dropped)."""
        raise NotImplementedError

    # -- saving

    def _save(self, epoch: int, step: int, completed: bool = False) -> None:
        from toxhelpers.artifacts import write_json

        iterations = int(np.asarray(self.model.optimizer.iterations))
        target, scratch = self.folder / f"step-{iterations:09d}", self.folder / f".writing-{iterations:09d}"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        flat = self._write_state(scratch)
        callbacks = self._others + [self.model.history]
        states, arrays = zip(*(callback_state(callback, self.keras) for callback in callbacks)) if callbacks else ((), ())
        flat.update({f"callback{index}.{name}": value for index, named in enumerate(arrays) for name, value in named.items()})
        flat["metrics"] = [np.asarray(variable) for variable in self._metric_variables()]
        np.savez(scratch / "arrays.npz", **flatten_arrays(flat))
        # in their own file, unsorted: the order of a history's columns is part of what it recorded
        (scratch / "callbacks.json").write_text(json.dumps(list(states), default=_plain_number))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(scratch, target)
        write_json({"key": self.key, "position": {"epoch": epoch, "step": step, "iterations": iterations,
                                                  "completed": completed},
                    "folder": target.name, "saved_at": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "fit_seconds": self._seconds()},
                   self.folder / "latest.json")  # switching to the new save is this one atomic write
        for old in self.folder.glob("step-*"):
            if old != target:
                shutil.rmtree(old, ignore_errors=True)

    def _key(self) -> dict[str, str]:
        """What a checkpoint must have been saved by to be resumed from, part by part (so a
        mismatch can be named)."""
        model = model_key(self.model)
        loss = self.model.loss
        return {"batches": self.data_key, "layers": model["layers"], "starting weights": model["weights"],
                "optimizer": _digest(_without_names(self.keras.optimizers.serialize(self.model.optimizer))),
                "loss": _digest(loss.get_config() if hasattr(loss, "get_config") else repr(loss)),
                "epochs and steps": _digest([self.params["epochs"], self.params["steps"]]),
                "callbacks": _digest([callback_settings(callback, self.keras) for callback in self._others])}

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
        self._read_state(self.folder / saved["folder"], saved["arrays"])
        for index, callback in enumerate(self._others):
            restore_callback_state(callback, saved["callbacks"][index], saved["arrays"], index, self.keras)
        self._pending = saved  # the history and the metrics: Keras resets both after this hook
        self._earlier_seconds = float(saved.get("fit_seconds", 0.0))  # a save from before they were kept: 0
        self.resumed_from = {"epoch": epoch, "step": step}
        if saved["position"].get("completed"):  # start after the last epoch: fit trains nothing
            self.completed_before = True
            self._start_at(self.params["epochs"], 0)
            print(f"this fit completed in an earlier run (saved {saved['saved_at']}): its weights and records are "
                  f"restored from {self.folder}, and nothing is trained again")
            return
        for _ in range(epoch):  # epoch k's shuffle comes from the k-th fresh iterator of the same dataset
            iter(self.data)
        self._start_at(epoch, step)
        print(f"resuming from the checkpoint saved {saved['saved_at']}: epoch {epoch + 1} of {self.params['epochs']}, "
              f"after step {step} of {self.params['steps']} ({self.folder})")


class TrainingCheckpoint(FitCheckpoint, tf_keras.callbacks.Callback):
    """Saves the training state every ``every`` steps, so a ``fit`` that was interrupted (Ctrl-C,
    a killed process, a closed laptop) continues from its last save when it runs again, and ends
    with the model an uninterrupted fit ends with. ``every=0``: no saves, no resuming.

    Put it last in ``fit``'s callbacks. It writes to ``artifacts_dir/.checkpoints/<section>``
    (the artifact ``<section>_checkpoint``), and saves the fit's end too: a rerun of a lesson
    interrupted after its fit restores the fit instead of training again. The lesson's record
    (:class:`toxhelpers.recording.Recorder`, its last cell) removes the folder. Saved,
    atomically: the weights; the optimizer's step count and moments; the running sums of the
    metrics; the random state of every dropout layer; the epoch and step reached; and what the
    fit's other callbacks recorded (the history, early stopping's best epoch, the validation
    scores, the step log). On a rerun the epoch goes on from the saved step: the seeded batches
    of ``data`` (the dataset given to ``fit``, from :func:`batches.training_dataset`) come out in
    the same order in every process, so the ones already trained on are read and skipped. (Keras's
    ``BackupAndRestore`` restores the epoch and step but starts the epoch's data from its first
    batch again.) After the fit, ``fit_seconds`` is its time, the interrupted runs' time up to
    the save it went on from included: the lessons record it as the fit's time.

    **Dropout.** Keras draws dropout masks with random ops whose state lives inside TensorFlow's
    kernels, out of any checkpoint's reach. For the length of the fit, each dropout layer draws
    the same masks from a ``tf.random.Generator`` started at the state the op's kernel starts at
    (:class:`toxhelpers.dropout_states.DropoutStates`), whose state is a variable that is saved.
    So a fit with this callback, saving or not, interrupted or not, computes exactly what a fit
    without it computes, provided its training step is traced for this fit (a model compiled since
    its last fit, as lessons 5 and 6 do; a model fitted before without compiling again gets a fresh
    training step, so its masks start afresh).

    A checkpoint is used only by a fit of the same inputs: its key covers the batches (rows,
    labels, batch sizes, padding, seed), the model's layers and starting weights, the optimizer
    and its schedule, the loss, the epochs and steps, and the other callbacks. An edit to code the
    fit calls is not in the key: ``toxhelpers run`` discards a lesson's checkpoints when its code or
    inputs changed, and in JupyterLab the fit says when it resumes. One process only: not under a
    ``tf.distribute`` strategy (lesson 11 does not checkpoint).
    """

    keras = tf_keras

    def __init__(self, artifacts_dir: str | os.PathLike, section: str, data: Any, every: int = 50):
        super().__init__(artifacts_dir, section, data, every)
        self._dropout = DropoutStates()

    def _prepare(self) -> None:
        self._dropout.attach(self.model)
        traced = getattr(self.model.train_function, "experimental_get_tracing_count", lambda: 0)()
        if traced:  # a step traced (and run) before this fit: trace one with the saveable dropout
            self.model.train_function = self.model.make_train_function(force=True)

    def _stepped(self) -> None:
        self._dropout.stepped()

    def _finished(self) -> None:
        # the layers get their own generators back; the traced step keeps drawing from the saveable
        # ones, as a fit without this callback would keep its kernels, if the model trains on
        self._dropout.detach()

    def _write_state(self, folder: Path) -> dict[str, Any]:
        super()._write_state(folder)
        return {f"{DROPOUT_PREFIX}{name}": state for name, state in self._dropout.states().items()}

    def _read_state(self, folder: Path, arrays: dict[str, Any]) -> None:
        super()._read_state(folder, arrays)
        self._dropout.restore({name[len(DROPOUT_PREFIX):]: value for name, value in arrays.items()
                               if name.startswith(DROPOUT_PREFIX)})

    def _metric_variables(self) -> list[Any]:
        return metric_variables(self.model)

    def _start_at(self, epoch: int, step: int) -> None:
        self.model._training_state = _ResumePoint(self.model, epoch, step)  # where Keras's fit asks (epoch, step)
        if step:
            skip_batches(self.model, self.data, step)

    def _state(self) -> Any:
        """What tf.train.Checkpoint saves: weights and optimizer variables (built now if no step
        has built them yet, so a restore has somewhere to go). The dropout states go with the
        arrays: their generators are made when the step is traced, after a restore."""
        from toxhelpers.tf_setup import tf

        optimizer = self.model.optimizer
        optimizer.build(self.model.trainable_variables)
        variables = optimizer.variables() if callable(optimizer.variables) else optimizer.variables
        return tf.train.Checkpoint(weights=list(self.model.weights), optimizer=list(variables))


def model_key(model: Any) -> dict[str, str]:
    """A model's layers (its config without names) and weights, as digests: what its outputs
    depend on, for a save that only the same model may use (a fit's checkpoint, a saved scoring)."""
    try:
        layers = _without_names(model.get_config())  # Keras numbers the names of a rebuilt model
    except NotImplementedError:  # a subclassed model: its weights' shapes
        layers = [list(weight.shape) for weight in model.weights]
    weights = hashlib.sha256()
    for weight in model.weights:
        weights.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
    return {"layers": _digest(layers), "weights": weights.hexdigest()}


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


def caller_locals() -> Iterator[dict[str, Any]]:
    """The local variables of each frame that called the caller, innermost first: how a callback
    reaches what Keras's ``fit`` keeps in locals (its callback list, its epoch iterator)."""
    frame = sys._getframe(2)
    while frame is not None:
        yield frame.f_locals
        frame = frame.f_back


def other_callbacks(callback: Any, keras: Any = tf_keras) -> list[Any]:
    """The callbacks ``callback`` runs with in a ``fit``, besides Keras's own history and progress
    bar. Keras gives a callback no handle on the others, but its ``CallbackList`` calls each one's
    hooks from a loop: it is the ``self`` of a calling frame."""
    for local in caller_locals():
        owner = local.get("self")
        if isinstance(owner, keras.callbacks.CallbackList) and any(item is callback for item in owner.callbacks):
            keras_own = (keras.callbacks.History, keras.callbacks.ProgbarLogger)
            mine = [item for item in owner.callbacks if not isinstance(item, keras_own)]
            if mine[-1] is not callback:
                raise ValueError(f"{type(callback).__name__} must come last in fit's callbacks, so that what "
                                 "the others recorded at each step is in its saves")
            return mine[:-1]
    raise RuntimeError(f"{type(callback).__name__} works inside Model.fit only (pass it in callbacks=[...])")


def callback_settings(callback: Any, keras: Any = tf_keras) -> Any:
    """A callback's kind and settings, for a checkpoint's key."""
    if isinstance(callback, keras.callbacks.EarlyStopping):
        return [type(callback).__name__, callback.monitor, callback.patience, callback.min_delta,
                callback.restore_best_weights, callback.baseline, callback.start_from_epoch]
    return type(callback).__name__


EARLY_STOPPING_STATE = ("wait", "stopped_epoch", "best", "best_epoch")


def callback_state(callback: Any, keras: Any = tf_keras) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a callback has recorded so far, as (JSON-able values, arrays): Keras's history and
    early stopping, and any callback with ``get_state()`` (this module's); others keep nothing."""
    if isinstance(callback, keras.callbacks.History):
        return {"epoch": list(callback.epoch), "history": callback.history}, {}
    if isinstance(callback, keras.callbacks.EarlyStopping):
        best = {} if callback.best_weights is None else {"best_weights": list(callback.best_weights)}
        return {name: getattr(callback, name) for name in EARLY_STOPPING_STATE}, best
    if hasattr(callback, "get_state"):
        return callback.get_state()
    return {}, {}


def restore_callback_state(callback: Any, values: dict[str, Any], arrays: dict[str, Any], index: int,
                           keras: Any = tf_keras) -> None:
    """Put back what :func:`callback_state` saved (``arrays`` holds every callback's, by index)."""
    prefix = f"callback{index}."
    own = {name[len(prefix):]: value for name, value in arrays.items() if name.startswith(prefix)}
    if isinstance(callback, keras.callbacks.History):
        callback.epoch, callback.history = list(values["epoch"]), dict(values["history"])
    elif isinstance(callback, keras.callbacks.EarlyStopping):
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
