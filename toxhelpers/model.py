"""The classifier: a pretrained encoder, a pooling step, and a small dense head.

    input_ids, attention_mask -> encoder -> last_hidden_state (batch, tokens, hidden)
        -> pooling: the [CLS] vector (the article) or the masked mean of all token vectors
        -> head: Dense 256 -> Dropout -> Dense 32 -> Dropout -> Dense 1 (sigmoid)

The head is its own small Keras model. That is what lets lesson 5 train it on pooled features
computed once (fast) and then drop the very same head, weights unchanged, onto the encoder.

Saving keeps the pieces apart too: the encoder in Hugging Face's format, the head as Keras JSON
(its layers, so a head a learner builds differently in lesson 4 is the head every later lesson
trains and reloads) with its weights, the tokenizer and a JSON spec. Hugging Face TF layers inside
a Keras model do not survive ``model.save`` reliably; pieces do. The head's JSON is data, not code:
only Keras's built-in layers are read back (:data:`HEAD_LAYERS`), so a shared folder cannot smuggle
in a ``Lambda`` layer's bytecode.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from toxhelpers.tf_setup import tf, tf_keras

from toxhelpers.artifacts import atomic_path, read_json, write_json
from toxhelpers.losses import BinaryFocalLoss

POOLINGS = ("cls", "mean")
SPEC_FILE = "spec.json"
HEAD_FILE = "head.json"
HEAD_WEIGHTS_FILE = "head.weights.h5"
# Keras's built-in layers a head may use. Each is rebuilt from plain numbers in its JSON config;
# a Lambda or custom layer would be rebuilt from code, so it is refused rather than run.
HEAD_LAYERS = frozenset({"InputLayer", "Dense", "Dropout", "LayerNormalization", "BatchNormalization",
                         "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "GaussianNoise",
                         "GaussianDropout", "AlphaDropout", "ActivityRegularization"})


@dataclass
class ClassifierSpec:
    """Everything needed to rebuild the classifier; saved beside its weights."""

    pooling: str = "cls"
    head_sizes: list[int] = field(default_factory=lambda: [256, 32])
    head_dropout: float = 0.2
    encoder_dropout: float = 0.2
    attention_dropout: float = 0.2
    max_length: int = 128
    focal_gamma: float = 2.0
    focal_alpha: float = 0.2
    threshold: float = 0.5
    head_learning_rate: float | None = None
    training_set: str | None = None  # decided in lesson 5 ("unbalanced" or "balanced"); lesson 6 follows it
    checkpoint: dict[str, Any] = field(default_factory=dict)
    # a saved classifier's files (relative path: sha256), written by save_classifier and checked by
    # load_classifier: exactly these are loaded (empty in the specs lessons 4 and 5 save)
    files: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_pooling(self.pooling)
        self.head_sizes = check_head_sizes(self.head_sizes)

    def save(self, path: str | os.PathLike) -> Path:
        return write_json(asdict(self), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ClassifierSpec":
        """Read a spec written by :meth:`save`, failing with one message that names the file."""
        expected = (f"expected the JSON object ClassifierSpec.save writes, with keys from "
                    f"{', '.join(field.name for field in fields(cls))}")
        try:
            content = read_json(path)
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: not valid JSON ({error}); {expected}") from None
        if not isinstance(content, dict):
            raise ValueError(f"{path}: holds {type(content).__name__}; {expected}")
        unknown = sorted(set(content) - {field.name for field in fields(cls)})
        if unknown:
            raise ValueError(f"{path}: unknown key(s) {unknown}; {expected}")
        try:
            return cls(**content)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from None


def check_head_sizes(sizes: Any) -> list[int]:
    """Head layer sizes as a list of positive integers, e.g. [256, 32] (an empty list is allowed:
    then the head is a single sigmoid unit, logistic regression on the pooled vector)."""
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__") or not all(
            isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size > 0 for size in sizes):
        raise ValueError(f"head sizes must be a list of positive integers like [256, 32], got {sizes!r}")
    return [int(size) for size in sizes]


def check_pooling(pooling: str) -> None:
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


@tf_keras.utils.register_keras_serializable(package="toxhelpers")
class ClsPooling(tf_keras.layers.Layer):
    """The hidden state of the first token, [CLS]: the article's sentence vector."""

    def call(self, hidden: tf.Tensor, attention_mask: tf.Tensor) -> tf.Tensor:
        return hidden[:, 0, :]


@tf_keras.utils.register_keras_serializable(package="toxhelpers")
class MaskedMeanPooling(tf_keras.layers.Layer):
    """The average of the token vectors, padding excluded (how all-MiniLM-L6-v2 was trained)."""

    def call(self, hidden: tf.Tensor, attention_mask: tf.Tensor) -> tf.Tensor:
        mask = tf.cast(attention_mask, hidden.dtype)[:, :, tf.newaxis]
        return tf.reduce_sum(hidden * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)


def pooling_layer(pooling: str) -> tf_keras.layers.Layer:
    """The pooling step by name: "cls" (the article) or "mean"."""
    layers = {"cls": ClsPooling, "mean": MaskedMeanPooling}
    if pooling not in layers:
        raise ValueError(f"pooling must be one of {sorted(layers)}, got {pooling!r}")
    return layers[pooling](name=f"{pooling}_pooling")


def build_head(hidden_size: int, sizes: list[int] | tuple[int, ...] = (256, 32), dropout: float = 0.2,
               seed: int = 42) -> tf_keras.Sequential:
    """Dense(ReLU) layers of the given sizes with dropout between, then one sigmoid unit."""
    sizes = check_head_sizes(sizes)
    initializer = tf_keras.initializers.GlorotUniform
    layers: list[tf_keras.layers.Layer] = [tf_keras.Input(shape=(hidden_size,), name="pooled")]
    for index, size in enumerate(sizes):
        layers += [tf_keras.layers.Dense(size, activation="relu", name=f"dense_{size}",
                                         kernel_initializer=initializer(seed=seed + index)),
                   tf_keras.layers.Dropout(dropout, seed=seed + index, name=f"dropout_{index + 1}")]
    # float32 under any mixed-precision policy (distribute.set_precision): in float16 a probability
    # of 1 - 1e-4 rounds to 1.0, and the loss's log(1 - p) of a confident mistake blows up.
    layers.append(tf_keras.layers.Dense(1, activation="sigmoid", name="toxic_probability", dtype="float32",
                                        kernel_initializer=initializer(seed=seed + len(sizes))))
    return tf_keras.Sequential(layers, name="head")


def model_inputs() -> dict[str, tf_keras.Input]:
    """Token ids and attention mask of any length (so batches can be trimmed to their content)."""
    return {name: tf_keras.Input(shape=(None,), dtype=tf.int32, name=name)
            for name in ("input_ids", "attention_mask")}


def build_classifier(encoder: Any, head: tf_keras.Model, pooling: str = "cls") -> tf_keras.Model:
    """Wire encoder -> pooling -> head into one Keras model taking input_ids and attention_mask."""
    inputs = model_inputs()
    hidden = encoder(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).last_hidden_state
    pooled = pooling_layer(pooling)(hidden, inputs["attention_mask"])
    return tf_keras.Model(inputs=inputs, outputs=head(pooled), name="toxic_classifier")


def encoder_of(classifier: tf_keras.Model) -> Any:
    """The pretrained encoder inside a classifier from :func:`build_classifier` (or
    :func:`load_classifier`): the layer to unfreeze, or whose input embeddings to read."""
    return next(layer for layer in classifier.layers if hasattr(layer, "get_input_embeddings"))


def build_feature_extractor(encoder: Any) -> tf_keras.Model:
    """One encoder pass giving both pooled vectors, [CLS] and masked mean (for cached features)."""
    inputs = model_inputs()
    hidden = encoder(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).last_hidden_state
    return tf_keras.Model(inputs=inputs, outputs=[ClsPooling()(hidden, inputs["attention_mask"]),
                                                  MaskedMeanPooling()(hidden, inputs["attention_mask"])],
                          name="feature_extractor")


def set_encoder_trainable(encoder: Any, trainable: bool) -> None:
    """Freeze (phase 1) or unfreeze (phase 2) the encoder.

    BERT-style encoders carry a "pooler" (a dense layer on [CLS] trained for next-sentence
    prediction) that this classifier never uses; it stays frozen, so no optimiser step is
    wasted on it and Keras does not warn about its missing gradients.
    """
    encoder.trainable = trainable
    body = getattr(encoder, getattr(encoder, "base_model_prefix", ""), None)
    pooler = getattr(body, "pooler", None)
    if pooler is not None:
        pooler.trainable = False


def classification_metrics() -> list[tf_keras.metrics.Metric]:
    """Accuracy can flatter a model under class imbalance; ROC-AUC and PR-AUC do not."""
    return [tf_keras.metrics.BinaryAccuracy(name="accuracy"),
            tf_keras.metrics.AUC(curve="ROC", name="roc_auc"),
            tf_keras.metrics.AUC(curve="PR", name="pr_auc"),
            tf_keras.metrics.Precision(name="precision"),
            tf_keras.metrics.Recall(name="recall")]


def compile_model(model: tf_keras.Model, learning_rate: float, gamma: float = 2.0, alpha: float = 0.2) -> tf_keras.Model:
    """Adam at ``learning_rate`` (keyword ``learning_rate=``: old ``lr=`` is silently ignored),
    binary focal loss, and the classification metrics.

    Under the ``mixed_float16`` policy (:func:`distribute.set_precision`) Adam is wrapped in a
    ``LossScaleOptimizer``: float16 gradients below ~6e-8 flush to zero, so the loss is scaled up
    before the backward pass and the gradients scaled back down (Keras would wrap it silently;
    here it is said). Under a distribution strategy, call this inside ``strategy.scope()``.
    """
    optimizer = tf_keras.optimizers.Adam(learning_rate=learning_rate)
    if tf_keras.mixed_precision.global_policy().name == "mixed_float16":
        optimizer = tf_keras.mixed_precision.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, loss=BinaryFocalLoss(gamma=gamma, alpha=alpha), metrics=classification_metrics())
    return model


def parameter_counts(model: tf_keras.Model) -> dict[str, int]:
    """Trainable vs frozen parameters: what an optimiser step actually updates."""
    trainable = int(sum(np.prod(weight.shape) for weight in model.trainable_weights))
    frozen = int(sum(np.prod(weight.shape) for weight in model.non_trainable_weights))
    return {"trainable": trainable, "frozen": frozen, "total": trainable + frozen}


def save_classifier(folder: str | os.PathLike, encoder: Any, head: tf_keras.Model, tokenizer: Any,
                    spec: ClassifierSpec) -> Path:
    """Save the encoder (Hugging Face format), the head (layers and weights), tokenizer and spec
    under ``folder``.

    Everything is written into a new folder beside it, which then replaces ``folder`` whole: an
    interrupted save leaves the old classifier (or none), never new weights beside an old spec,
    and no file of an earlier folder survives. The spec, written last, lists every file with its
    sha256 (:func:`check_saved_files`).
    """
    import shutil
    import tempfile

    from toxhelpers.artifacts import current_umask, sha256_file

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".tmp-{folder.name}-", dir=folder.parent))
    try:
        encoder.save_pretrained(building / "encoder")
        tokenizer.save_pretrained(building / "tokenizer")
        write_head(head, building)
        files = {path.relative_to(building).as_posix(): sha256_file(path)
                 for path in sorted(building.rglob("*")) if path.is_file()}
        replace(spec, files=files).save(building / SPEC_FILE)
        building.chmod(0o777 & ~current_umask())  # mkdtemp makes it 0700
        old = folder.with_name(f".old-{folder.name}-{os.getpid()}")
        if folder.exists():
            folder.rename(old)
        building.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    spec.files = files
    return folder


def check_saved_files(folder: str | os.PathLike, spec: ClassifierSpec) -> None:
    """The folder holds exactly the files :func:`save_classifier` recorded, each with its sha256:
    a weight file planted beside them (``encoder/model.safetensors`` beside ``tf_model.h5``)
    would otherwise be loaded instead, and a changed one would go unnoticed."""
    folder = Path(folder)
    if not spec.files:
        raise ValueError(f"{folder / SPEC_FILE} lists none of the classifier's files (saved by an older "
                         f"toxhelpers?); save it again with model.save_classifier (rerun "
                         f"{_finetuning_lesson()})")
    present = {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()} - {SPEC_FILE}
    unexpected, missing = sorted(present - set(spec.files)), sorted(set(spec.files) - present)
    if unexpected:
        raise ValueError(f"{folder / unexpected[0]}: a file save_classifier did not write, in a saved classifier "
                         f"(it could be loaded instead of the saved weights); remove it, or save the classifier again")
    if missing:
        raise ValueError(f"{folder / missing[0]} is missing from the saved classifier; save it again")
    from toxhelpers.artifacts import sha256_file

    for relative, sha in spec.files.items():
        if sha256_file(folder / relative) != sha:
            raise ValueError(f"{folder / relative} changed since the classifier was saved (sha256 differs from "
                             f"{SPEC_FILE}); save it again")


def _finetuning_lesson() -> str:
    from toxhelpers.artifacts import artifact

    return artifact("finetuned_model").produced_by


def write_head(head: tf_keras.Model, folder: str | os.PathLike) -> Path:
    """The head as ``head.json`` (its layers, as Keras JSON) and ``head.weights.h5``, atomically."""
    from toxhelpers.artifacts import write_text

    folder = Path(folder)
    check_head_layers(json.loads(head.to_json()), f"the head {head.name!r}")
    write_text(head.to_json(), folder / HEAD_FILE)
    with atomic_path(folder / HEAD_WEIGHTS_FILE) as tmp:
        head.save_weights(str(tmp))
    return folder / HEAD_FILE


def read_head(folder: str | os.PathLike) -> tf_keras.Model:
    """The head :func:`write_head` saved in ``folder``: its layers from ``head.json`` (built-in
    Keras layers only), then its weights."""
    folder = Path(folder)
    path = folder / HEAD_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: expected a head saved by model.write_head "
                                f"({HEAD_FILE} and {HEAD_WEIGHTS_FILE})")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error}); expected a Keras model's to_json()") from None
    check_head_layers(config, str(path))
    head = tf_keras.models.model_from_json(json.dumps(config))
    head.load_weights(str(folder / HEAD_WEIGHTS_FILE))
    return head


def check_head_layers(config: Any, what: str) -> None:
    """Refuse a head whose JSON names anything but a Sequential or functional model of
    :data:`HEAD_LAYERS` (a Lambda or custom layer would be rebuilt from code)."""
    if not isinstance(config, dict) or config.get("class_name") not in ("Sequential", "Functional", "Model"):
        raise ValueError(f"{what}: expected a Keras Sequential or functional model as JSON")
    layers = (config.get("config") or {}).get("layers") or []
    unknown = sorted({str(layer.get("class_name")) for layer in layers} - HEAD_LAYERS)
    if unknown:
        raise ValueError(f"{what} uses layer class(es) {unknown}; a head may use only Keras's built-in layers "
                         f"{sorted(HEAD_LAYERS)} (others would be rebuilt from code)")


def head_sizes_of(head: tf_keras.Model) -> list[int]:
    """The units of the head's Dense layers before its output unit, for a spec's description."""
    units = [layer.units for layer in head.layers if isinstance(layer, tf_keras.layers.Dense)]
    return units[:-1]


def load_classifier(folder: str | os.PathLike) -> tuple[tf_keras.Model, Any, ClassifierSpec]:
    """Rebuild a classifier saved by :func:`save_classifier`: (model, tokenizer, spec)."""
    from transformers import AutoTokenizer, TFAutoModel

    from toxhelpers.pretrained import quiet_transformers

    folder = Path(folder)
    quiet_transformers()
    spec = ClassifierSpec.load(require_saved_classifier(folder))
    check_saved_files(folder, spec)  # exactly the recorded files: the weights loaded are the ones saved
    encoder = TFAutoModel.from_pretrained(folder / "encoder")
    head = read_head(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
    return build_classifier(encoder, head, spec.pooling), tokenizer, spec


def require_saved_classifier(folder: str | os.PathLike) -> Path:
    """The spec file of a classifier folder, or an error saying which lesson saves one."""
    from toxhelpers.artifacts import artifact

    path = Path(folder) / SPEC_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} holds no saved classifier (no {SPEC_FILE}); "
                                f"{artifact('finetuned_model').produced_by} writes one")
    return path


# The stages a classifier passes through, each saved by its lesson (see artifacts.ARTIFACTS):
# "model" (04: the head and the recipe), "phase1" (05: the trained head), "finetuned" (06: + the
# threshold); "scaled" (11) is lesson 6's training again, under a tf.distribute strategy.
STAGES = ("model", "phase1", "finetuned", "scaled")
PREDICTION_STAGES = ("phase1", "finetuned", "scaled", "keras_hub")


def load_spec(artifacts_dir: str | os.PathLike, stage: str = "model") -> ClassifierSpec:
    """The classifier's spec as a stage left it: lesson 4's recipe (``"model"``), with phase 1's
    choices (``"phase1"``), or the fine-tuned model's, with its threshold (``"finetuned"``)."""
    from toxhelpers.artifacts import require_artifact

    if stage == "finetuned":
        return ClassifierSpec.load(require_saved_classifier(require_artifact(artifacts_dir, "finetuned_model")))
    return ClassifierSpec.load(require_artifact(artifacts_dir, f"{_checked_stage(stage, ('model', 'phase1'))}_spec"))


def save_head(head: tf_keras.Model, spec: ClassifierSpec, artifacts_dir: str | os.PathLike,
              stage: str = "phase1") -> Path:
    """A stage's head (layers and weights) and the spec it goes with: lesson 4's head as built
    (``"model"``), or phase 1's trained head (``"phase1"``, lesson 5), which lesson 6 starts from."""
    from toxhelpers.artifacts import artifact_path

    stage = _checked_stage(stage, ("model", "phase1"))
    spec.head_sizes = head_sizes_of(head)
    path = write_head(head, artifact_path(artifacts_dir, f"{stage}_head").parent)
    spec.save(artifact_path(artifacts_dir, f"{stage}_spec"))
    return path


def load_head(artifacts_dir: str | os.PathLike, stage: str = "phase1") -> tuple[tf_keras.Model, ClassifierSpec]:
    """A stage's head with its weights, and its spec: lesson 4's head as built (``"model"``) or
    phase 1's trained head (``"phase1"``)."""
    from toxhelpers.artifacts import require_artifact

    stage = _checked_stage(stage, ("model", "phase1"))
    head = read_head(require_artifact(artifacts_dir, f"{stage}_head").parent)
    return head, load_spec(artifacts_dir, stage)


def finetuned_path(artifacts_dir: str | os.PathLike) -> Path:
    """Where lesson 6 saves the fine-tuned classifier (a folder for :func:`load_classifier`)."""
    from toxhelpers.artifacts import artifact_path

    return artifact_path(artifacts_dir, "finetuned_model")


def scaled_path(artifacts_dir: str | os.PathLike) -> Path:
    """Where lesson 11 saves the classifier it fine-tuned under a strategy (for :func:`load_classifier`)."""
    from toxhelpers.artifacts import artifact_path

    return artifact_path(artifacts_dir, "scaled_model")


def load_finetuned(artifacts_dir: str | os.PathLike) -> tuple[tf_keras.Model, Any, ClassifierSpec]:
    """The classifier lesson 6 fine-tuned and saved: (model, tokenizer, spec)."""
    from toxhelpers.artifacts import require_artifact

    return load_classifier(require_artifact(artifacts_dir, "finetuned_model"))


def save_finetuning_metrics(artifacts_dir: str | os.PathLike, metrics: dict[str, Any]) -> Path:
    """Lesson 6's threshold, validation and test metrics and training time, for later lessons."""
    from toxhelpers.artifacts import artifact_path, write_json

    return write_json(metrics, artifact_path(artifacts_dir, "finetuned_metrics"))


def load_finetuning_metrics(artifacts_dir: str | os.PathLike) -> dict[str, Any]:
    from toxhelpers.artifacts import read_json, require_artifact

    return read_json(require_artifact(artifacts_dir, "finetuned_metrics"))


def _checked_stage(stage: str, allowed: tuple[str, ...] = STAGES) -> str:
    if stage not in allowed:
        raise ValueError(f"stage must be one of {allowed}, got {stage!r}")
    return stage


def save_predictions(artifacts_dir: str | os.PathLike, split: str, ids: Any, labels: Any, probabilities: Any,
                     threshold: float = 0.5, stage: str = "finetuned") -> Path:
    """Write a split's probabilities (columns id, label, probability, predicted) so later lessons
    read them instead of running the model again: phase 1's (``stage="phase1"``, lesson 5), the
    fine-tuned model's (``"finetuned"``, lesson 6), lesson 11's (``"scaled"``) or lesson 12's
    Keras 3 model's (``"keras_hub"``), which lesson 13 compares its ONNX files with."""
    from toxhelpers.artifacts import write_predictions

    name = f"{_checked_stage(stage, PREDICTION_STAGES)}_predictions"
    return write_predictions(artifacts_dir, name, split, ids, labels, probabilities, threshold)


def load_predictions(artifacts_dir: str | os.PathLike, split: str, ids: Any = None, stage: str = "finetuned") -> Any:
    """A model's predictions for a split, as its lesson saved them (TensorFlow, the token ids of
    lesson 3); with ``ids``, the rows in that order (every id must be there)."""
    from toxhelpers.artifacts import read_predictions

    return read_predictions(artifacts_dir, f"{_checked_stage(stage, PREDICTION_STAGES)}_predictions", split, ids)
