"""A few fine-tuning steps of the real bundled encoder, as lesson 6 takes them, under a strategy.

Run as a script (one process per worker; test_distribute.py starts them):

    python distributed_steps.py --strategy multi_worker --batch-size 4 --artifacts DIR --result FILE.npz

It builds the classifier, optimiser and metrics in the strategy's scope, distributes lesson 6's
bucketed batches with :func:`distribute.distribute_dataset`, trains one epoch with lesson 6's
callbacks (validation scores, early stopping, the step log) and writes the final
weights and validation probabilities to ``--result``, and saves the classifier through
:func:`distribute.worker_artifacts_dir` (the chief into ``--artifacts``, others into a scratch
folder, whose path goes into ``--result`` so the test can check it is gone).

Deterministic on purpose: dropout 0 (encoder and head), one seed, and rows chosen so every global
batch is full (24 comments of at most 16 tokens and 24 of 17-32: each length bucket divides into
batches of 8), so N replicas x batch B see exactly the rows one process sees with batch N x B.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_ROOT))

AGREEMENT = 1e-5  # see test_distribute.py's docstring
ROWS_PER_BUCKET = 24
SYNTHETIC_TRAIN = Path(__file__).resolve().parents[1] / "synthetic_data" / "train.csv"
MAX_LENGTH = 32
SEED = 7


def training_rows(tokenizer):
    """48 synthetic comments, 24 per length bucket (16 and 32 tokens), and their labels."""
    import numpy as np
    import pandas as pd

    from toxhelpers import tokenization

    frame = pd.read_csv(SYNTHETIC_TRAIN)
    lengths = tokenization.token_lengths(tokenizer, frame["comment_text"].tolist())
    short, long = np.flatnonzero(lengths <= 16)[:ROWS_PER_BUCKET], np.flatnonzero(lengths > 16)[:ROWS_PER_BUCKET]
    chosen = np.concatenate([short, long])
    if len(chosen) != 2 * ROWS_PER_BUCKET or lengths[chosen].max() > MAX_LENGTH:
        raise RuntimeError("the synthetic set no longer has 24 comments of each length bucket")
    encoded = tokenization.encode(tokenizer, frame["comment_text"].iloc[chosen].tolist(), max_length=MAX_LENGTH)
    return encoded, frame["toxic"].to_numpy()[chosen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", default="default")
    parser.add_argument("--logical-cpus", type=int, default=0, help="split the CPU into this many logical devices")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--batch-size", type=int, required=True, help="per replica")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--result", required=True)
    args = parser.parse_args(argv)

    import numpy as np

    from toxhelpers.tf_setup import tf

    if args.logical_cpus:  # before TensorFlow starts its runtime
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus)
    from toxhelpers import batches, distribute, model, pretrained, training

    devices = [f"/cpu:{index}" for index in range(args.logical_cpus)] if args.logical_cpus else None
    strategy = distribute.make_strategy(args.strategy, devices)
    distribute.set_precision(args.precision)
    training.seed_everything(SEED)
    checkpoint = pretrained.resolve_checkpoint(pretrained.BUNDLED, announce=False)
    tokenizer = pretrained.load_tokenizer(checkpoint)
    encoded, labels = training_rows(tokenizer)
    global_batch = distribute.global_batch_size(args.batch_size, strategy)

    with strategy.scope():  # variables (model, optimiser, metrics) are mirrored on every replica
        encoder = pretrained.load_encoder(checkpoint, pretrained.encoder_config(checkpoint, 0.0, 0.0))
        head = model.build_head(encoder.config.hidden_size, [32], dropout=0.0, seed=SEED)
        classifier = model.build_classifier(encoder, head, "cls")
        model.set_encoder_trainable(encoder, True)
        steps = batches.batches_per_epoch(encoded, global_batch, "bucketed")
        rate = training.learning_rate_schedule(args.learning_rate, steps, "linear", 0.25)
        model.compile_model(classifier, learning_rate=rate)
    data = distribute.distribute_dataset(strategy, lambda: batches.training_dataset(
        encoded, labels, global_batch, "bucketed", SEED))
    validation = training.ValidationScores(encoded, labels)  # lesson 6's callbacks, run by every worker
    classifier.fit(data, epochs=1, steps_per_epoch=steps, verbose=0,
                   callbacks=[validation, training.early_stopping(1), training.StepLog()])

    probabilities = batches.predict(classifier, encoded)[:, 0]
    assert np.array_equal(probabilities, validation.probabilities[1]), "scored after the epoch: the same weights"

    with distribute.worker_artifacts_dir(args.artifacts) as folder:  # the chief's is the real one
        model.save_classifier(folder / "model", encoder, head, tokenizer, model.ClassifierSpec(head_sizes=[32]))
        written = str(folder)

    weights = np.concatenate([np.ravel(weight) for weight in classifier.get_weights()])
    np.savez(args.result, weights=weights, probabilities=probabilities,
             iterations=int(classifier.optimizer.iterations.numpy()), replicas=distribute.replicas(strategy),
             written=written, chief=distribute.is_chief(), probability_dtype=str(probabilities.dtype))
    print(json.dumps({"pid": os.getpid(), "written": written, "steps": steps}))
    return 0


def start(tmp: Path, name: str, *args: str, tf_config: str | None = None):
    """This script in a new process (``--result tmp/<name>.npz``, output in ``tmp/<name>.log``)."""
    import subprocess

    from toxhelpers import distribute

    env = {**distribute.local_worker_environment(tf_config), "PYTHONPATH": str(PROJECT_ROOT)}
    log = open(tmp / f"{name}.log", "w")
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--result", str(tmp / f"{name}.npz"), *args],
                            env=env, stdout=log, stderr=subprocess.STDOUT)


def agreement(result: dict, reference: dict) -> dict[str, float]:
    """Max |difference| of the final weights and of the probabilities of two runs' results."""
    import numpy as np

    return {key: float(np.abs(result[key] - reference[key]).max()) for key in ("weights", "probabilities")}


def finish(tmp: Path, *named, timeout: float = 600) -> dict[str, dict]:
    """Wait for ``(name, process)`` pairs started by :func:`start`; their results, by name."""
    import numpy as np

    results = {}
    for name, process in named:
        assert process.wait(timeout=timeout) == 0, (tmp / f"{name}.log").read_text()[-3000:]
        with np.load(tmp / f"{name}.npz") as saved:
            results[name] = {key: saved[key] for key in saved.files}
    return results


if __name__ == "__main__":
    sys.exit(main())
