"""Keras 3 + KerasHub (lessons 12-13): lesson 12's own Keras 3 code, and the plumbing of both.

Lesson 12 writes out what changes on Keras 3 (``#@save`` cells, copied here with the same text):
the sentence encoder on a KerasHub backbone with lesson 4's pooling, the classifier wiring, and
lesson 6's warm-up + linear-decay schedule in ``keras.ops``. The rest is plumbing the lesson calls
and tests need: the import check that names the fix, the saved model's reader, lesson 6's (and
lesson 8's) recorded numbers to put beside the lesson's own, and :class:`TrainingCheckpoint`, lesson
6's resumable fit on Keras 3.

Keras 3 and the walkthrough's tf-keras share one process: ``toxhelpers`` sets
``TF_USE_LEGACY_KERAS=1`` so that ``tf.keras`` is Keras 2 for Hugging Face's classes, and
``import keras`` still gives Keras 3, which ignores that variable. Keras 3 comes with TensorFlow,
so this module imports on every Python; KerasHub (Python 3.11+) is imported by
:func:`check_keras_hub` only.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toxhelpers.tf_setup import tf  # TensorFlow first, with toxhelpers' settings

import keras

from toxhelpers import checkpointing, recording
from toxhelpers.artifacts import LESSONS, artifact_path, read_json, require, require_artifact

KERAS_HUB_PYTHON = (3, 11)  # keras-hub 0.32.0's requirement
INSTALL = 'pip install -c constraints.txt -e ".[kerashub]"  (what ./dev setup runs)'
TENSORFLOW_TEXT_FIX = ("install tensorflow-text==2.21.1 (never 2.21.0, which fails to import: "
                       f"tensorflow/text#1541): {INSTALL}")


def check_keras_hub() -> dict[str, str]:
    """Import tensorflow_text and keras_hub (quietly) or fail with one message naming the fix;
    return the versions of the Keras 3 stack.

    KerasHub's tokenizers need tensorflow-text on the TensorFlow backend, and tensorflow-text must
    match TensorFlow to the minor version: 2.21.1 for TensorFlow 2.21 (2.21.0 was published broken).
    """
    if sys.version_info[:2] < KERAS_HUB_PYTHON:
        raise ImportError(f"keras-hub 0.32.0 needs Python {'.'.join(map(str, KERAS_HUB_PYTHON))} or newer; this is "
                          f"Python {sys.version.split()[0]} (toxhelpers run skips lessons 12-13 there)")
    from toxhelpers.tf_setup import _native_stderr_silenced

    with _native_stderr_silenced():  # TensorFlow's C++ start-up lines again, for the text ops
        try:
            importlib.import_module("tensorflow_text")
        except Exception as error:  # noqa: BLE001 - missing (ImportError) or broken (NotFoundError...)
            raise ImportError(f"tensorflow_text does not import ({type(error).__name__}: {error}); "
                              f"{TENSORFLOW_TEXT_FIX}") from None
        try:
            importlib.import_module("keras_hub")
        except ImportError as error:
            raise ImportError(f"keras_hub does not import ({error}); {INSTALL}") from None
    # Keras 3 warns that fit() ignores shuffle=True for a tf.data.Dataset: ours shuffles itself.
    warnings.filterwarnings("ignore", message=r"`shuffle=True` was passed, but will be ignored")
    return {name: importlib.metadata.version(name) for name in ("keras", "keras-hub", "tensorflow-text")}


def same_vocabulary(folder: str | os.PathLike, tokenized_for: Any) -> Path:
    """``folder`` (a KerasHub-convertible Hugging Face checkpoint) if its vocabulary is the one
    lesson 3's token ids were made with; else one error saying what to do. Token ids only mean
    something to their vocabulary: bert-base-uncased, DistilBERT uncased and MiniLM share one."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"encoder_dir {folder} has no config.json: expected a Hugging Face checkpoint "
                                "folder (config.json with model_type, weights, vocabulary)")
    ours, theirs = Path(tokenized_for.path) / "vocab.txt", folder / "vocab.txt"
    if not theirs.is_file() or not ours.is_file() or theirs.read_bytes() != ours.read_bytes():
        raise ValueError(f"encoder_dir {folder} does not have the vocabulary ({ours}) lesson 3's token ids were "
                         f"made with: rerun {LESSONS['tokenization']} with checkpoint={str(folder)!r} and the lessons "
                         "after it, or pick a checkpoint with the same vocab.txt")
    return folder


def sentence_encoder(backbone: Any, pooling: str = "cls") -> keras.Model:
    """input_ids, attention_mask -> one vector per comment: a KerasHub backbone, then lesson 4's
    pooling (the [CLS] vector, or the mean of the real tokens' vectors)."""
    inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in ("input_ids", "attention_mask")}
    feed = {"token_ids": inputs["input_ids"], "padding_mask": inputs["attention_mask"]}
    if "segment_ids" in backbone.input:  # BERT: every token in segment 0
        feed["segment_ids"] = keras.ops.zeros_like(inputs["input_ids"])
    hidden = backbone(feed)
    hidden = hidden["sequence_output"] if isinstance(hidden, dict) else hidden
    if pooling == "cls":
        pooled = hidden[:, 0, :]
    else:
        pooled = keras.layers.GlobalAveragePooling1D(name="mean_pooling")(hidden, mask=inputs["attention_mask"])
    return keras.Model(inputs, pooled, name="sentence_encoder")


def build_classifier(encoder: keras.Model, head: keras.Model) -> keras.Model:
    """The head on top of the sentence encoder: one model taking input_ids and attention_mask."""
    return keras.Model(encoder.input, head(encoder.output), name="toxic_classifier")


class LinearWarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Lesson 6's schedule (``training.LinearWarmupDecay``) for Keras 3, in ``keras.ops``: 0 ->
    ``peak`` over ``warmup_steps``, then linearly back to 0 at ``total_steps``."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0):
        self.peak, self.total_steps, self.warmup_steps = float(peak), int(total_steps), int(warmup_steps)

    def __call__(self, step: Any) -> Any:
        step = keras.ops.cast(step, "float32") + 1.0  # Keras counts from 0; the first update is step 1
        rising = self.peak * step / max(self.warmup_steps, 1)
        falling = self.peak * keras.ops.maximum(self.total_steps - step + 1.0, 0.0) / (self.total_steps - self.warmup_steps)
        return keras.ops.where(step <= self.warmup_steps, rising, keras.ops.minimum(falling, self.peak))

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}


def load_classifier(path: str | os.PathLike) -> Any:
    """The Keras 3 classifier lesson 12 saved (a ``.keras`` file), without its optimizer: built
    from KerasHub's backbone and Keras' own layers, it needs no code of ours to load."""
    path = require(path, produced_by=LESSONS["keras_hub"])
    check_keras_hub()  # registers KerasHub's classes, which the file names
    return keras.saving.load_model(str(path), compile=False)


def model_path(artifacts_dir: str | os.PathLike) -> Path:
    return artifact_path(artifacts_dir, "keras_hub_model")


def onnx_path(artifacts_dir: str | os.PathLike, variant: str = "fp32") -> Path:
    return artifact_path(artifacts_dir, "keras_hub_onnx", variant=variant)


def fit_examples_per_second(rows: int, epochs: int, fit_seconds: float, validation_seconds: float) -> float:
    """Training rows per second over a whole ``fit`` (graph tracing included), the validation
    passes inside it left out: the same measure for lesson 6 and lesson 12."""
    training_seconds = fit_seconds - validation_seconds
    if rows < 1 or epochs < 1 or training_seconds <= 0:
        raise ValueError(f"need rows, epochs >= 1 and fit_seconds > validation_seconds, got {rows}, {epochs}, "
                         f"{fit_seconds}, {validation_seconds}")
    return rows * epochs / training_seconds


def finetuning_numbers(artifacts_dir: str | os.PathLike, train_rows: int) -> dict[str, float]:
    """Lesson 6's validation and test ROC-AUC (threshold-free), training throughput and kernel
    peak memory, as its run recorded them in this artifacts folder."""
    record = recording.recorded_section(artifacts_dir, "finetuning")
    metrics = read_json(require_artifact(artifacts_dir, "finetuned_metrics"))
    recorded = record["metrics"]
    return {"validation_roc_auc": metrics["validation"]["validation @ 0.5"]["roc_auc"],
            "test_roc_auc": metrics["test"]["test @ 0.5"]["roc_auc"],
            "training_examples_per_s": fit_examples_per_second(
                train_rows, recorded["finetuning.epochs_run"], recorded["finetuning.fit_seconds"],
                recorded["finetuning.validation_seconds"]),
            "fit_seconds": recorded["finetuning.fit_seconds"],
            "peak_memory_mb": record.get("peak_memory_mb", float("nan"))}


COMPARED = {"validation_roc_auc": "validation ROC-AUC", "test_roc_auc": "test ROC-AUC",
            "training_examples_per_s": "training examples/s (whole fit, validation passes left out)",
            "fit_seconds": "fit seconds", "peak_memory_mb": "kernel peak memory, MB (ru_maxrss)"}


def comparison_table(lesson6: dict[str, float], lesson12: dict[str, float]) -> pd.DataFrame:
    """Lesson 6 beside lesson 12, one row per measure, with the difference (12 minus 6)."""
    rows = [{"measure": label, "lesson 6: tf-keras + transformers": lesson6[key],
             "lesson 12: Keras 3 + KerasHub": lesson12[key], "difference": lesson12[key] - lesson6[key]}
            for key, label in COMPARED.items()]
    return pd.DataFrame(rows).set_index("measure")


def serving_numbers(artifacts_dir: str | os.PathLike) -> dict[str, float] | None:
    """Lesson 8's ONNX agreement with its TensorFlow model and sizes, or None when it has not run
    into this artifacts folder."""
    try:
        record = recording.recorded_section(artifacts_dir, "serving")
    except FileNotFoundError:
        return None
    metrics = record["metrics"]
    keys = {"fp32_max_abs_difference": "serving.fp32.max_abs_difference",
            "int8_roc_auc_difference": "serving.int8.roc_auc_difference",
            "int8_max_abs_difference": "serving.int8.max_abs_difference",
            "int8_decisions_changed": "serving.int8.decisions_changed",
            "export_seconds": "serving.export_seconds"}
    return {name: metrics.get(key, float("nan")) for name, key in keys.items()}


def probability_agreement(first: np.ndarray, second: np.ndarray) -> dict[str, float]:
    """How alike two models' probabilities for the same rows are: Pearson and rank correlation."""
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    return {"pearson": float(np.corrcoef(first, second)[0, 1]),
            "spearman": float(pd.Series(first).corr(pd.Series(second), method="spearman"))}


def einsum_nodes(onnx_file: str | os.PathLike) -> int:
    """How many ``Einsum`` nodes an ONNX graph holds. KerasHub's attention projections are
    ``EinsumDense`` layers, exported as ``Einsum``, which ONNX Runtime's dynamic int8 quantization
    leaves in float32 (it converts ``MatMul`` and ``Gather``)."""
    import onnx

    return sum(node.op_type == "Einsum" for node in onnx.load(str(onnx_file), load_external_data=False).graph.node)


class TrainingCheckpoint(checkpointing.FitCheckpoint, keras.callbacks.Callback):
    """Lesson 6's resumable fit (:class:`toxhelpers.checkpointing.TrainingCheckpoint`: same
    arguments, same rules, same folder layout) for a Keras 3 ``fit`` on the TensorFlow backend,
    lesson 12's. Saved every ``every`` steps: the model's variables, the optimizer's, the metrics'
    running sums, the epoch and step reached and the other callbacks' state; a rerun goes on from
    the saved step and ends with the model an uninterrupted fit ends with.

    Two things are simpler than on tf-keras. Keras 3 keeps each dropout layer's random state in a
    variable (a ``SeedGenerator``'s, in ``model.variables``, not in ``model.weights``), so saving
    the variables saves the masks to come. And ``fit`` asks ``model._initial_epoch`` for its first
    epoch (the hook Keras 3's ``BackupAndRestore`` uses). Its step is harder: ``BackupAndRestore``
    in Keras 3.15 restores the weights and the epoch only, and trains the epoch's first batches
    again. So this callback finds ``fit``'s epoch iterator (a local of ``fit``: the frame that
    called it) and has its first epoch read and drop the batches already trained on, then count
    on from the saved step (:func:`start_epoch_after`).
    """

    keras = keras

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.model._initial_epoch = None  # fit has read it: a later fit of this model starts at its own epoch
        super().on_epoch_begin(epoch, logs)

    def _finished(self) -> None:
        self.model._initial_epoch = None  # a fit that started after its last epoch began none

    def _state(self) -> Any:
        if keras.backend.backend() != "tensorflow":
            raise ValueError(f"{type(self).__name__} saves TensorFlow variables: run Keras 3 on the TensorFlow backend")
        optimizer = self.model.optimizer
        if not optimizer.built:  # built at the first step; a restore needs its variables before it
            optimizer.build(self.model.trainable_variables)
        return tf.train.Checkpoint(variables=list(self.model.variables), optimizer=list(optimizer.variables))

    def _metric_variables(self) -> list[Any]:
        return list(self.model.metrics_variables)

    def _prepare(self) -> None:
        self._epoch_iterator = fit_epoch_iterator(self.model)
        check_resumable(self._epoch_iterator, self.data)  # now, not after hours of an interrupted fit

    def _start_at(self, epoch: int, step: int) -> None:
        self.model._initial_epoch = epoch
        if step:
            start_epoch_after(self._epoch_iterator, step)


def fit_epoch_iterator(model: keras.Model) -> Any:
    """The epoch iterator of the ``fit`` of ``model`` running now (a local of Keras 3's ``fit``,
    found among the calling frames, as :func:`checkpointing.other_callbacks` finds the callbacks)."""
    from keras.src.trainers.epoch_iterator import EpochIterator

    for local in checkpointing.caller_locals():
        found = local.get("epoch_iterator")
        if local.get("self") is model and isinstance(found, EpochIterator):
            return found
    raise RuntimeError(f"no Model.fit of {model.name} is running: TrainingCheckpoint resumes inside fit only "
                       f"(this Keras, {keras.__version__}, may keep its batches elsewhere)")


def check_resumable(epoch_iterator: Any, data: Any) -> None:
    """A fit :func:`start_epoch_after` can resume: on the checkpoint's dataset, one step per
    execution, every epoch a fresh pass over the whole dataset (whose length Keras knows)."""
    if getattr(epoch_iterator.data_adapter, "_dataset", data) is not data:
        raise ValueError("fit was given another dataset than its TrainingCheckpoint: pass the same one to both")
    if epoch_iterator.steps_per_execution != 1:
        raise ValueError(f"TrainingCheckpoint resumes a fit of one step per execution, not "
                         f"steps_per_execution={epoch_iterator.steps_per_execution}")
    if not epoch_iterator.num_batches or epoch_iterator.num_batches != epoch_iterator._num_batches:
        raise ValueError(f"TrainingCheckpoint resumes a fit whose epochs are its dataset's whole length "
                         f"({epoch_iterator._num_batches} batches, as batches.training_dataset states it), got "
                         f"steps_per_epoch={epoch_iterator.num_batches}")


def start_epoch_after(epoch_iterator: Any, count: int) -> None:
    """Make the next epoch of ``epoch_iterator`` read its first ``count`` batches and drop them (the
    ones the interrupted epoch trained on), then run its other steps numbered from ``count``, as
    Keras's own ``_enumerate_iterator`` numbers them; later epochs are Keras's own again."""

    def resumed_epoch() -> Any:
        del epoch_iterator._enumerate_iterator  # the class's own method again, for the epochs after this one
        epoch_iterator.data_adapter.on_epoch_begin()
        iterator = iter(epoch_iterator._get_iterator())
        for _ in range(count):
            next(iterator)
        epoch_iterator._current_iterator, epoch_iterator._steps_seen = iterator, count
        for step in range(count, epoch_iterator.num_batches):
            epoch_iterator._steps_seen += 1
            yield step, step, iterator
        # what Keras does at an epoch's end: the next epoch's iterator (a fresh shuffle) is made now
        epoch_iterator._current_iterator, epoch_iterator._steps_seen = iter(epoch_iterator._get_iterator()), 0
        epoch_iterator.data_adapter.on_epoch_end()

    epoch_iterator._enumerate_iterator = resumed_epoch
