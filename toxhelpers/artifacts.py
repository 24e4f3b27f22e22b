"""What one lesson hands to the next: the artifact table, and safe reading and writing.

:data:`ARTIFACTS` is the contract between the lessons: every file a lesson writes for a later one,
where it lives under ``artifacts_dir``, the lesson that writes it and the function that reads it
back. Lessons, benchmarks and tests find a path with :func:`artifact_path` and never build one by
hand, and :data:`LESSONS` is the one place (besides ``notebooks/``) that names the notebooks.

Every artifact is written atomically (to a temporary file in the same folder, then renamed), so
an interrupted run never leaves a half-written file that a later run, or a resume, would trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


# The lessons, by the section name each one records its metrics under.
LESSONS = {
    "data": "01_data.ipynb",
    "augmentation": "02_augmentation.ipynb",
    "tokenization": "03_tokenization.ipynb",
    "model": "04_model.ipynb",
    "training": "05_training.ipynb",
    "finetuning": "06_finetuning.ipynb",
    "evaluation": "07_evaluation.ipynb",
    "serving": "08_serving.ipynb",
    "bias": "09_bias.ipynb",
    "confidence": "10_confidence.ipynb",
    "scaling": "11_scaling_out.ipynb",
    "keras_hub": "12_keras_hub.ipynb",
    "keras_hub_serving": "13_keras_hub_serving.ipynb",
}


# Training checkpoints live in a hidden folder: the run tooling never counts a file in it as a
# lesson's input or output (a checkpoint is not a result), so it survives an interrupted run for
# the rerun to resume from; toxhelpers.run discards it when the lesson's code or inputs changed.
CHECKPOINTS_DIR = ".checkpoints"


@dataclass(frozen=True)
class Artifact:
    """One thing a lesson writes for later ones: its place under ``artifacts_dir`` (``{fields}``
    filled in by :func:`artifact_path`), the lesson (section) that writes it, and its reader."""

    path: str
    lesson: str
    loader: str
    about: str

    @property
    def produced_by(self) -> str:
        return LESSONS[self.lesson]

    @property
    def is_checkpoint(self) -> bool:
        """A training checkpoint (under :data:`CHECKPOINTS_DIR`): state kept for a rerun, never an
        output of its lesson."""
        return self.path.startswith(CHECKPOINTS_DIR + "/")


ARTIFACTS = {
    "split": Artifact("data/{split}.parquet", "data", "data.load_split",
                      "lesson 1's train, validation and test rows, with their 0/1 label"),
    "balanced_train": Artifact("data/train_balanced.parquet", "augmentation", "data.load_split",
                               "the training split with augmented toxic rows added"),
    "word_vectors": Artifact("augment/word_vectors_{weights}.w2v.bin", "augmentation", "word_vectors.ensure_word_vectors",
                             "the encoder's input embeddings as word2vec vectors (the augmenter's synonyms)"),
    "tokens": Artifact("tokens/{split}.npz", "tokenization", "tokenization.load_encoded",
                       "a split's token ids and attention mask, with labels and row ids"),
    "tokenized_for": Artifact("tokens/checkpoint.json", "tokenization", "tokenization.tokenized_checkpoint",
                              "the pretrained weights the token ids were made for: later lessons use these"),
    "model_spec": Artifact("model/spec.json", "model", "model.load_spec",
                           "the classifier's recipe: encoder, dropout, pooling, loss"),
    "model_head": Artifact("model/head.json", "model", "model.load_head",
                           "the head lesson 4 built, as Keras JSON (built-in layers only)"),
    "model_head_weights": Artifact("model/head.weights.h5", "model", "model.load_head",
                                   "the initial weights of lesson 4's head"),
    "phase1_spec": Artifact("phase1/spec.json", "training", "model.load_spec",
                            "the recipe with phase 1's choices (learning rate, training set)"),
    "phase1_head": Artifact("phase1/head.json", "training", "model.load_head",
                            "the head trained on the frozen encoder (lesson 4's layers, as Keras JSON)"),
    "phase1_head_weights": Artifact("phase1/head.weights.h5", "training", "model.load_head",
                                    "the weights of the head trained on the frozen encoder"),
    "phase1_predictions": Artifact("phase1/{split}_predictions.parquet", "training", "model.load_predictions",
                                   "phase 1's probabilities (columns id, label, probability, predicted)"),
    "finetuned_model": Artifact("finetuned/model", "finetuning", "model.load_classifier",
                                "the fine-tuned classifier: encoder, head, tokenizer and spec (with its threshold)"),
    "finetuned_predictions": Artifact("finetuned/{split}_predictions.parquet", "finetuning", "model.load_predictions",
                                      "the fine-tuned model's validation and test probabilities"),
    "finetuned_metrics": Artifact("finetuned/metrics.json", "finetuning", "model.load_finetuning_metrics",
                                  "threshold, validation and test metrics, and the training time"),
    "training_checkpoint": Artifact(f"{CHECKPOINTS_DIR}/training", "training", "checkpointing.TrainingCheckpoint",
                                    "lesson 5's features as they are scored, or with cached_features=False its "
                                    "training state, saved every checkpoint_every steps and at the fit's end, so an "
                                    "interrupted lesson resumes or skips its fit; removed when the lesson records its "
                                    "results"),
    "finetuning_checkpoint": Artifact(f"{CHECKPOINTS_DIR}/finetuning", "finetuning", "checkpointing.TrainingCheckpoint",
                                      "lesson 6's fine-tuning state, saved every checkpoint_every steps so an "
                                      "interrupted lesson resumes or skips its fit (its end is saved too); removed when "
                                      "the lesson records its results"),
    "scaled_model": Artifact("scaled/model", "scaling", "model.load_classifier",
                             "the classifier lesson 11 fine-tuned under a tf.distribute strategy (the chief's copy)"),
    "scaled_predictions": Artifact("scaled/{split}_predictions.parquet", "scaling", "model.load_predictions",
                                   "lesson 11's validation probabilities (columns as finetuned_predictions)"),
    "identity_templates": Artifact("bias/identity_templates.parquet", "bias", "bias.load_scored_templates",
                                   "the fine-tuned model's scores on the non-toxic identity templates, most "
                                   "flagged first (columns text, identity, probability): lesson 10 explains them"),
    "tfidf_model": Artifact("evaluation/tfidf.npz", "evaluation", "baselines.load_tfidf",
                            "the fitted TF-IDF + logistic-regression pipeline as plain arrays (vocabularies, idf, "
                            "coefficients; no pickle)"),
    "tfidf_predictions": Artifact("evaluation/{split}_tfidf_predictions.parquet", "evaluation",
                                  "baselines.load_tfidf_predictions",
                                  "TF-IDF + LR's validation and test probabilities (columns as finetuned_predictions)"),
    "onnx": Artifact("serving/classifier.{variant}.onnx", "serving", "serving.OnnxClassifier",
                     "the fine-tuned classifier as ONNX (fp32) and its int8 quantization"),
    "serving_checkpoint": Artifact(f"{CHECKPOINTS_DIR}/serving", "serving", "resumable_scoring.ResumableScoring",
                                   "lesson 8's agreement scorings (ONNX fp32 and int8 on every test row), saved as "
                                   "they go so an interrupted lesson scores only the rest; removed when the lesson "
                                   "records its results"),
    "calibration": Artifact("confidence/calibration.json", "confidence", "confidence.load_calibration",
                            "the scaling fitted on validation, and the deployment threshold lesson 10 recommends"),
    "model_card": Artifact("model_card.md", "confidence", "model_card.read_model_card",
                           "the model card: weights, data, uses, metrics with intervals, calibration, limitations"),
    "keras_hub_model": Artifact("keras_hub/classifier.keras", "keras_hub", "keras3.load_classifier",
                                "the same recipe fine-tuned on Keras 3 + KerasHub, as one .keras file"),
    "keras_hub_checkpoint": Artifact(f"{CHECKPOINTS_DIR}/keras_hub", "keras_hub", "keras3.TrainingCheckpoint",
                                     "lesson 12's fine-tuning state, saved every checkpoint_every steps so an "
                                     "interrupted lesson resumes or skips its fit (its end is saved too), and the "
                                     "phase-1 features as they are scored; removed when the lesson records its "
                                     "results"),
    "keras_hub_predictions": Artifact("keras_hub/{split}_predictions.parquet", "keras_hub", "model.load_predictions",
                                      "the Keras 3 model's test probabilities (columns as finetuned_predictions)"),
    "keras_hub_onnx": Artifact("keras_hub_serving/classifier.{variant}.onnx", "keras_hub_serving", "serving.OnnxClassifier",
                               "the Keras 3 classifier as ONNX (fp32, lean route) and its int8 quantization"),
    "keras_hub_serving_checkpoint": Artifact(f"{CHECKPOINTS_DIR}/keras_hub_serving", "keras_hub_serving",
                                             "resumable_scoring.ResumableScoring",
                                             "lesson 13's agreement scorings (ONNX fp32 and int8 on every test row), "
                                             "saved as they go so an interrupted lesson scores only the rest; "
                                             "removed when the lesson records its results"),
}


def artifact(name: str) -> Artifact:
    if name not in ARTIFACTS:
        raise KeyError(f"no artifact {name!r}; the table has {sorted(ARTIFACTS)}")
    return ARTIFACTS[name]


def artifact_path(artifacts_dir: str | os.PathLike, name: str, **fields: str) -> Path:
    """Where artifact ``name`` lives under ``artifacts_dir`` (``fields`` fill its ``{placeholders}``)."""
    template = artifact(name).path
    try:
        return Path(artifacts_dir) / template.format(**fields)
    except KeyError as missing:
        raise KeyError(f"artifact {name!r} ({template}) needs {missing}; got {sorted(fields) or 'no fields'}") from None


def checkpoint_path(artifacts_dir: str | os.PathLike, section: str) -> Path:
    """The folder of ``section``'s checkpoint (the artifact ``<section>_checkpoint``), where its
    fit's saves and its saved scorings live."""
    return artifact_path(artifacts_dir, f"{section}_checkpoint")


def remove_checkpoint(artifacts_dir: str | os.PathLike, section: str) -> None:
    """Remove ``section``'s training checkpoint (its fit's saves, the fit's end included, and the
    scorings saved beside them), if the section has one: :class:`toxhelpers.recording.Recorder`
    calls it as the lesson records its results, its work done."""
    try:
        folder = checkpoint_path(artifacts_dir, section)
    except KeyError:  # a section without a checkpoint
        return
    shutil.rmtree(folder, ignore_errors=True)


def checkpoint_folders(artifacts_dir: str | os.PathLike, notebook: str) -> list[Path]:
    """The training-checkpoint folders (artifacts under :data:`CHECKPOINTS_DIR`) lesson ``notebook`` writes."""
    return [Path(artifacts_dir) / item.path for item in ARTIFACTS.values()
            if item.produced_by == notebook and item.is_checkpoint]


def require_artifact(artifacts_dir: str | os.PathLike, name: str, **fields: str) -> Path:
    """The artifact's path if it exists, else an error naming the lesson that writes it."""
    return require(artifact_path(artifacts_dir, name, **fields), produced_by=artifact(name).produced_by)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name ends with the target's name, so libraries that pick a format by file
    # suffix (Keras' ".weights.h5", parquet, ...) treat it exactly like the target.
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=f"-{target.name}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        tmp.chmod(0o666 & ~current_umask())  # mkstemp makes 0600 files; artifacts are ordinary files
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def current_umask() -> int:
    """The process's umask (reading it means setting it: set it back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _json_default(value: Any) -> Any:
    """Let numpy scalars/arrays and paths reach JSON as plain numbers, lists and strings."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_text(text: str, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(data: Any, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(path)


def read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_parquet(path)


def write_predictions(artifacts_dir: str | os.PathLike, name: str, split: str, ids: Any, labels: Any,
                      probabilities: Any, threshold: float = 0.5) -> Path:
    """A model's probabilities for a split as artifact ``name`` (columns id, label, probability,
    predicted at ``threshold``): later lessons read them instead of running the model again."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    frame = pd.DataFrame({"id": np.asarray(ids).astype(str), "label": np.asarray(labels), "probability": probabilities,
                          "predicted": (probabilities >= threshold).astype(int)})
    return write_parquet(frame, artifact_path(artifacts_dir, name, split=split))


def read_predictions(artifacts_dir: str | os.PathLike, name: str, split: str, ids: Any = None) -> pd.DataFrame:
    """What :func:`write_predictions` wrote; with ``ids``, those rows in that order (every id must be there)."""
    frame = read_parquet(require_artifact(artifacts_dir, name, split=split))
    if ids is None:
        return frame
    ordered = frame.set_index("id").reindex(np.asarray(ids).astype(str))
    missing = int(ordered["probability"].isna().sum())
    if missing:
        producer = artifact(name).produced_by
        raise ValueError(f"{producer}'s {split} predictions ({name}) miss {missing} of the requested rows: "
                         f"rerun {producer}")
    return ordered.reset_index()


def write_arrays(arrays: dict[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Save named numpy arrays in one ``.npz`` file."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
    return Path(path)


def read_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays :func:`write_arrays` saved; never unpickles (a pickle in the file is an error)."""
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def require(path: str | os.PathLike, *, produced_by: str) -> Path:
    """Return ``path`` if it exists, else fail naming the notebook that writes it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist: it is written by {produced_by}; run that notebook first "
            "with the same artifacts_dir."
        )
    return path


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def frame_hash(frame: pd.DataFrame) -> str:
    """A content hash of a data frame, stable across runs: used to prove two splits are identical."""
    row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(row_hashes.tobytes()).hexdigest()
