"""A long scoring that resumes: :class:`ResumableScoring` is :func:`batches.predict` (or
:func:`batches.predict_with`, for an ONNX session) saving its outputs as it goes, so a rerun after an
interrupt scores only what is left and gets what an uninterrupted run gets. At Kaggle's size these
are the steps that run for most of an hour on a laptop besides the fits (lessons 5 and 12's
features of every training row, the test scorings of lessons 6 and 12, the ONNX agreement checks
of lessons 8 and 13). Harness, not the lessons' subject; the fits' own checkpoint is
:mod:`toxhelpers.checkpointing`, whose :func:`~toxhelpers.checkpointing.model_key` names the model
a save belongs to here too.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from toxhelpers import batches
from toxhelpers.checkpointing import flatten_arrays, model_key, unflatten_arrays


class SavedBatches:
    """The outputs of a long scoring, saved as it goes (every ``every`` batches, atomically), so
    that a rerun after an interrupt reads what was done and scores only the rest: used by
    :func:`batches.predict_with` through :class:`ResumableScoring`. ``key`` names what the outputs
    depend on (JSON: strings, numbers, lists); saves made under another key are removed, never
    read."""

    def __init__(self, folder: str | os.PathLike, key: dict[str, Any], every: int = 32):
        self.folder, self.key, self.every = Path(folder), key, every
        self.earlier_seconds = 0.0  # what the runs that saved the parts read back spent on them
        self._waiting: list[list[np.ndarray]] = []
        self._parts, self._since = 0, time.perf_counter()

    def done(self) -> list[list[np.ndarray]]:
        """The outputs of the batches saved by a run with the same key, in batch order."""
        from toxhelpers.artifacts import read_json, write_json

        key_file = self.folder / "key.json"
        try:
            same = read_json(key_file) == self.key
        except (OSError, ValueError):
            same = False
        if not same:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.mkdir(parents=True)
            write_json(self.key, key_file)
            return []
        outputs: list[list[np.ndarray]] = []
        while self._part(self._parts).is_file():
            with np.load(self._part(self._parts)) as archive:
                part = unflatten_arrays(dict(archive))
            self.earlier_seconds += float(part.pop("seconds"))
            outputs.extend(part[f"batch{index}"] for index in range(len(part)))
            self._parts += 1
        if outputs:
            print(f"resuming a scoring: {len(outputs):,} batches' outputs read from {self.folder}")
        self._since = time.perf_counter()
        return outputs

    def add(self, outputs: list[np.ndarray]) -> None:
        self._waiting.append(outputs)
        if len(self._waiting) >= self.every:
            self._write()

    def close(self) -> None:
        if self._waiting:
            self._write()

    def _part(self, index: int) -> Path:
        return self.folder / f"part-{index:05d}.npz"

    def _write(self) -> None:
        from toxhelpers.artifacts import atomic_path

        flat = flatten_arrays({f"batch{index}": list(outputs) for index, outputs in enumerate(self._waiting)})
        flat["seconds"] = np.array(time.perf_counter() - self._since)  # what scoring this part took
        self._since = time.perf_counter()
        with atomic_path(self._part(self._parts)) as tmp:
            np.savez(tmp, **flat)
        self._waiting, self._parts = [], self._parts + 1


class ResumableScoring:
    """:func:`batches.predict` that saves its outputs as it goes, in the folder of ``section``'s
    training checkpoint (``.checkpoints/<section>/scoring/<name>``): a rerun after an interrupt
    scores only the batches not yet saved, and gets the outputs an uninterrupted run gets. For the
    scorings long enough to be interrupted at Kaggle's size on a laptop (lessons 5 and 12's features of
    every training row, the test scorings of lessons 6 and 12, the ONNX agreement checks of lessons
    8 and 13), removed by the lesson's record (with its fit's checkpoint, if it has one). Saves (every
    ``save_every`` batches) are used only for the same model, rows and batching. ``seconds``: the
    time its scorings took, counting what earlier runs spent on the batches read from their saves
    (what an uninterrupted run would have taken)."""

    def __init__(self, artifacts_dir: str | os.PathLike, section: str, save_every: int = 32):
        from toxhelpers.artifacts import checkpoint_path

        self.folder = checkpoint_path(artifacts_dir, section) / "scoring"
        self.save_every, self.seconds = save_every, 0.0

    def predict(self, model: Any, encoded: dict[str, np.ndarray], name: str, batch_size: int = 64,
                padding: str = "bucketed", step: int = 16) -> Any:
        """``batches.predict(model, encoded, batch_size, padding, step)``, saved as ``name``."""
        batches.check_batch_size(batch_size)  # before tracing anything for the model
        return self.predict_with(batches.inference_function(model), encoded, name, model_key(model),
                                 batch_size, padding, step)

    def saved_as(self, name: str) -> Callable[..., Any]:
        """:meth:`predict` under ``name``, called as ``batches.predict`` is (lesson 5 hands it to
        ``extract_features``)."""
        def predict(model: Any, encoded: dict[str, np.ndarray], batch_size: int = 64, padding: str = "bucketed",
                    step: int = 16) -> Any:
            return self.predict(model, encoded, name, batch_size, padding, step)
        return predict

    def predict_with(self, run: Any, encoded: dict[str, np.ndarray], name: str, key: dict[str, str],
                     batch_size: int = 64, padding: str = "bucketed", step: int = 16) -> Any:
        """``batches.predict_with(run, encoded, batch_size, padding, step)``, saved as ``name``.
        ``key``: what ``run``'s outputs depend on (:func:`model_key` of a Keras model,
        ``serving.OnnxClassifier.key`` of an ONNX session)."""
        started = time.perf_counter()
        key = {**key, "rows": batches.arrays_digest([encoded[column] for column in batches.INPUT_NAMES]),
               "batching": [batch_size, padding, step]}
        saved = SavedBatches(self.folder / name, key, self.save_every)
        outputs = batches.predict_with(run, encoded, batch_size, padding, step, saved=saved)
        self.seconds += saved.earlier_seconds + time.perf_counter() - started
        return outputs
