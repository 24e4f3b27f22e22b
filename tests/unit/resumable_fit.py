"""A fit with lesson 6's callbacks and a :class:`checkpointing.TrainingCheckpoint`, as a process a test
can interrupt (test_training.py starts it, signals it, reruns it):

    python resumable_fit.py --model tiny|encoder|keras3|kerashub --artifacts DIR --every 2 --result FILE.npz [--pause 0.5]

``--model encoder``: the real bundled encoder cut to one layer, with dropout on (0.1 in the
encoder, 0.2 in the head: the masks are part of what a resume must reproduce), 48 synthetic
comments of at most 32 tokens in length-bucketed batches of 8 (6 steps an epoch), 2 epochs.
``--model tiny``: :func:`tiny_model` (an embedding, dropout 0.5, a dense unit; 5 steps an epoch),
3 epochs: the same machinery in seconds. ``--model keras3``: the tiny model on Keras 3, with lesson
12's loss and schedule and :class:`toxhelpers.keras3.TrainingCheckpoint`; ``--model kerashub``:
lesson 12's wiring on a one-layer random KerasHub BERT (dropout 0.3) with a head (dropout 0.5),
the tiny rows, 3 epochs (its first step traces for ~10 s, the tiny ones' for ~3). All: a warm-up + linear-decay schedule and the callbacks
lesson 6 fits with (validation scores, early stopping, step log, progress bar). ``--every 0``
fits without the checkpoint callback at all: the reference. ``--pause`` sleeps after every step
(a callback that changes no number) so a test has time to signal the process mid-fit. Writes the
final weights, the validation probabilities of each epoch, the history and the step log to
``--result``, and where the fit resumed from.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_ROOT))

SEED = 11
BATCH_SIZE = 8
EPOCHS = {"encoder": 2, "tiny": 3, "keras3": 3, "kerashub": 3}
STEPS = {"encoder": 6, "tiny": 5, "keras3": 5, "kerashub": 5}  # an epoch's batches
VOCABULARY = 50  # the tiny rows' token ids are below it


def tiny_rows():
    """40 token rows of 2-23 tokens (ids < VOCABULARY) and labels: 5 bucketed batches of 8."""
    import numpy as np

    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 24, 40)
    ids = np.zeros((40, 24), np.int32)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(1, VOCABULARY, length)
    encoded = {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int32)}
    return encoded, (lengths % 3 == 0).astype(np.float32)


def tiny_model(seed: int = 3, epochs: int = 3):
    """A tiny token model (an embedding, dropout 0.5, a dense unit), compiled with lesson 6's
    schedule, and its bucketed dataset of 5 batches an epoch: (model, dataset, steps, encoded, labels)."""
    from toxhelpers import batches, model, training
    from toxhelpers.tf_setup import tf_keras

    training.seed_everything(seed)
    encoded, labels = tiny_rows()
    inputs = {name: tf_keras.Input((None,), dtype="int32", name=name) for name in batches.INPUT_NAMES}
    hidden = tf_keras.layers.GlobalAveragePooling1D()(tf_keras.layers.Embedding(50, 8)(inputs["input_ids"]))
    output = tf_keras.layers.Dense(1, activation="sigmoid")(tf_keras.layers.Dropout(0.5)(hidden))
    net = tf_keras.Model(inputs, output)
    data = batches.training_dataset(encoded, labels, 8, "bucketed", seed)
    steps = batches.batches_per_epoch(encoded, 8)
    model.compile_model(net, training.learning_rate_schedule(0.05, steps * epochs, "linear", 0.2))
    return net, data, steps, encoded, labels


def keras3_model(seed: int = 3, epochs: int = 3, backbone: str = "tiny"):
    """A model compiled as lesson 12 compiles on Keras 3 (focal loss, Adam on
    :class:`keras3.LinearWarmupDecay`, no XLA), on the tiny rows' bucketed dataset: (model, dataset,
    steps, encoded, labels), as :func:`tiny_model`. ``backbone="tiny"``: an embedding, dropout 0.5,
    a dense unit, in Keras 3; ``"kerashub"``: lesson 12's wiring (:func:`keras3.sentence_encoder`,
    :func:`keras3.build_classifier`) on a one-layer random KerasHub BERT (dropout 0.3, its unused
    pooler frozen as lesson 12 freezes it) and a head with dropout 0.5."""
    import keras

    from toxhelpers import batches, keras3

    keras.utils.set_random_seed(seed)
    encoded, labels = tiny_rows()
    if backbone == "kerashub":
        keras3.check_keras_hub()
        import keras_hub

        bert = keras_hub.models.BertBackbone(vocabulary_size=VOCABULARY, num_layers=1, num_heads=2, hidden_dim=8,
                                             intermediate_dim=16, dropout=0.3, max_sequence_length=24)
        head = keras.Sequential([keras.layers.Dropout(0.5), keras.layers.Dense(1, activation="sigmoid")])
        net = keras3.build_classifier(keras3.sentence_encoder(bert, "cls"), head)
        bert.get_layer("pooled_dense").trainable = False
    else:
        inputs = {name: keras.Input((None,), dtype="int32", name=name) for name in batches.INPUT_NAMES}
        hidden = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(VOCABULARY, 8)(inputs["input_ids"]))
        net = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dropout(0.5)(hidden)))
    steps = batches.batches_per_epoch(encoded, 8)
    net.compile(optimizer=keras.optimizers.Adam(learning_rate=keras3.LinearWarmupDecay(0.05, steps * epochs, steps)),
                loss=keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True), jit_compile=False)
    return net, batches.training_dataset(encoded, labels, 8, "bucketed", seed), steps, encoded, labels


def encoder_model(epochs: int):
    """The bundled encoder cut to one layer, with a head, compiled like lesson 6, and the
    bucketed dataset of distributed_steps.py's 48 comments."""
    from distributed_steps import training_rows
    from toxhelpers import batches, model, pretrained, training

    training.seed_everything(SEED)
    checkpoint = pretrained.resolve_checkpoint(pretrained.BUNDLED, announce=False)
    config = pretrained.encoder_config(checkpoint, 0.1, 0.1)
    config.num_hidden_layers = 1
    encoder = pretrained.load_encoder(checkpoint, config)
    encoded, labels = training_rows(pretrained.load_tokenizer(checkpoint))
    head = model.build_head(encoder.config.hidden_size, [16], dropout=0.2, seed=SEED)
    classifier = model.build_classifier(encoder, head, "cls")
    model.set_encoder_trainable(encoder, True)
    steps = batches.batches_per_epoch(encoded, BATCH_SIZE, "bucketed")
    model.compile_model(classifier, learning_rate=training.learning_rate_schedule(1e-4, steps * epochs, "linear", 0.25))
    training.seed_everything(SEED)
    data = batches.training_dataset(encoded, labels, BATCH_SIZE, "bucketed", SEED)
    return classifier, data, steps, encoded, labels


def fit_kit(kind: str):
    """(the Keras module, its TrainingCheckpoint, early stopping on validation ROC-AUC given a
    patience) for a model kind: tf-keras and lesson 6's, or Keras 3 and lesson 12's."""
    from toxhelpers import checkpointing, training

    if kind not in ("keras3", "kerashub"):
        from toxhelpers.tf_setup import tf_keras

        return tf_keras, checkpointing.TrainingCheckpoint, training.early_stopping
    import keras

    from toxhelpers import keras3

    def early_stopping(patience: int):  # lesson 12's
        return keras.callbacks.EarlyStopping(monitor="val_roc_auc", mode="max", patience=patience,
                                             restore_best_weights=True)
    return keras, keras3.TrainingCheckpoint, early_stopping


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=sorted(EPOCHS), default="encoder")
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--every", type=int, required=True, help="0: no checkpoint callback (the reference)")
    parser.add_argument("--result", required=True)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds to sleep after each step")
    args = parser.parse_args(argv)

    import numpy as np

    from toxhelpers import training

    epochs = EPOCHS[args.model]
    build = {"encoder": lambda: encoder_model(epochs), "tiny": lambda: tiny_model(SEED, epochs),
             "keras3": lambda: keras3_model(SEED, epochs), "kerashub": lambda: keras3_model(SEED, epochs, "kerashub")}[args.model]
    classifier, data, steps, encoded, labels = build()
    keras, checkpoint_class, early_stopping = fit_kit(args.model)

    class Pause(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(args.pause)

    validation = training.ValidationScores(encoded, labels)
    step_log = training.StepLog()
    resume = checkpoint_class(args.artifacts, "finetuning", data, every=args.every) if args.every else None
    fit = classifier.fit(data, epochs=epochs, steps_per_epoch=steps, verbose=0,
                         callbacks=[validation, early_stopping(1), step_log, Pause(),
                                    training.ProgressBar(steps)] + ([resume] if resume else []))

    history = training.history_frame(fit)
    resumed_from = None if resume is None else resume.resumed_from
    np.savez(args.result, weights=np.concatenate([np.ravel(weight) for weight in classifier.get_weights()]),
             probabilities=np.stack([validation.probabilities[epoch] for epoch in sorted(validation.probabilities)]),
             history=history.to_numpy(), history_columns=np.array([str(name) for name in history.columns]),
             step_log=step_log.frame().reset_index().to_numpy(),
             resumed_from=np.array([-1, -1] if resumed_from is None else [resumed_from["epoch"], resumed_from["step"]]),
             end_saved=resume is not None and json.loads((resume.folder / "latest.json").read_text())["position"]["completed"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
