"""Fine-tuning recipes for lesson 6, measured on this machine: time, memory and VALIDATION scores.

Not a test: nothing here passes or fails, and the test split is never read (recipes are chosen
on validation only). It needs the artifacts of a run of lessons 1-5 (tokens, phase-1 head), e.g.
``./dev walkthrough --profile full --until 05 --out reports/full``, then:

    .venv/bin/python benchmarks/finetune_recipes.py --artifacts reports/full/artifacts
    .venv/bin/python benchmarks/finetune_recipes.py --artifacts ... --recipes linear-1,linear-2

Each recipe runs in its own Python process (so its peak memory is its own) from the same phase-1
start and seed, and reports, per epoch: training seconds, validation ROC-AUC and PR-AUC, and the
validation F1 at the natural 9.5% prevalence (validation reweighted, its own best threshold: a
comparison between recipes, not a promise for test). ``xla`` times training steps of one fixed
shape with and without XLA compilation (``jit_compile=True``), compile time included.
The record (JSON + Markdown) goes to benchmarks/results/finetune_recipes_<date>.*.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from benchmark_records import save_record

import numpy as np

import toxhelpers  # noqa: F401  (Keras 2 before TensorFlow)
from toxhelpers import batches, data, evaluation, model, pretrained, tokenization, training
from toxhelpers.losses import BinaryFocalLoss
from toxhelpers.recording import peak_memory_mb
from toxhelpers.tf_setup import tf, tf_keras


# name -> recipe. "constant-*" is the article's (and lesson 6's old) recipe: Adam at 2e-5 throughout.
RECIPES = {
    "constant-1": {"schedule": "constant", "learning_rate": 2e-5, "epochs": 1},
    "linear-1": {"schedule": "linear", "learning_rate": 5e-5, "epochs": 1},
    "linear-2": {"schedule": "linear", "learning_rate": 5e-5, "epochs": 2},
    "linear-1-cap2048": {"schedule": "linear", "learning_rate": 5e-5, "epochs": 1, "tokens_per_batch": 2048},
    "linear-1-cap1024": {"schedule": "linear", "learning_rate": 5e-5, "epochs": 1, "tokens_per_batch": 1024},  # lesson 6's since 2026-12-07
    "linear-1-len256": {"schedule": "linear", "learning_rate": 5e-5, "epochs": 1, "max_length": 256},
    "linear-2-len256": {"schedule": "linear", "learning_rate": 5e-5, "epochs": 2, "max_length": 256},
}
DEFAULT_RECIPES = ("constant-1", "linear-1", "linear-1-cap2048", "linear-1-cap1024", "linear-2")


def load_start(artifacts: Path, max_length: int | None):
    """Encoded train/validation splits (re-encoded when ``max_length`` differs) and the phase-1
    classifier (encoder + trained head), exactly as lesson 6 starts."""
    checkpoint = tokenization.tokenized_checkpoint(artifacts, announce=False)
    encoded = {split: tokenization.load_encoded(artifacts, split) for split in ("train", "validation")}
    if max_length and max_length != encoded["train"]["input_ids"].shape[1]:
        tokenizer = pretrained.load_tokenizer(checkpoint)
        for split, arrays in encoded.items():
            frame = data.load_split(artifacts, split)
            assert (frame["id"].astype(str).to_numpy() == arrays["id"]).all()
            encoded[split] = {**tokenization.encode(tokenizer, frame[data.TEXT_COLUMN].tolist(), max_length),
                              "label": arrays["label"], "id": arrays["id"]}
    spec = model.load_spec(artifacts, "phase1")
    encoder = pretrained.load_encoder(checkpoint, pretrained.encoder_config(
        checkpoint, spec.encoder_dropout, spec.attention_dropout))
    head, spec = model.load_head(artifacts, "phase1")
    classifier = model.build_classifier(encoder, head, spec.pooling)
    model.set_encoder_trainable(encoder, True)
    return encoded, classifier, spec


def run_recipe(artifacts: Path, name: str, batch_size: int, seed: int) -> dict:
    """Fine-tune one recipe from the phase-1 start; per-epoch time and validation scores."""
    recipe = RECIPES[name]
    training.seed_everything(seed)
    encoded, classifier, spec = load_start(artifacts, recipe.get("max_length"))
    labels = {split: arrays["label"] for split, arrays in encoded.items()}
    tokens = recipe.get("tokens_per_batch")
    steps = batches.batches_per_epoch(encoded["train"], batch_size, "bucketed", tokens_per_batch=tokens)
    rate = training.learning_rate_schedule(recipe["learning_rate"], steps * recipe["epochs"], recipe["schedule"])
    model.compile_model(classifier, rate, spec.focal_gamma, spec.focal_alpha)
    validation = training.ValidationScores(encoded["validation"], labels["validation"])
    timer = EpochTimer()
    train = batches.training_dataset(encoded["train"], labels["train"], batch_size, "bucketed", seed,
                                     tokens_per_batch=tokens)
    started = time.perf_counter()
    history = classifier.fit(train, epochs=recipe["epochs"], verbose=0, callbacks=[timer, validation])
    fit_seconds = time.perf_counter() - started
    epochs = []
    for epoch, p in validation.probabilities.items():
        natural = evaluation.best_f1_threshold_at_prevalence(labels["validation"], p)
        epochs.append({"epoch": epoch, "train_seconds": timer.seconds[epoch - 1],
                       "val_roc_auc": history.history["val_roc_auc"][epoch - 1],
                       "val_pr_auc": history.history["val_pr_auc"][epoch - 1],
                       "val_f1_natural": evaluation.metrics_at_prevalence(labels["validation"], p, natural)["f1"],
                       "val_f1": evaluation.binary_metrics(
                           labels["validation"], p, evaluation.best_f1_threshold(labels["validation"], p))["f1"]})
    return {"recipe": name, **recipe, "steps_per_epoch": steps, "fit_seconds": fit_seconds,
            "validation_seconds": validation.seconds, "epochs_detail": epochs,
            "train_examples_per_s": len(labels["train"]) * recipe["epochs"] / sum(timer.seconds),
            "peak_memory_mb": peak_memory_mb()}


class EpochTimer(tf_keras.callbacks.Callback):
    """Seconds of each epoch's training steps only: it is listed before the validation callback,
    so validation is not billed to training."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def run_xla(artifacts: Path, batch_size: int, seed: int, steps: int = 10, width: int = 64) -> dict:
    """Training steps of one (batch, width) shape, plain graph vs XLA: first step (tracing and
    compiling) and the median of the next ``steps``."""
    encoded, classifier, spec = load_start(artifacts, None)
    rows = np.argsort(encoded["train"]["attention_mask"].sum(1))[-batch_size * (steps + 1):]
    result = {"recipe": "xla", "width": width, "batch_size": batch_size, "steps": steps}
    start_weights = classifier.get_weights()
    for jit in (False, True):
        training.seed_everything(seed)
        classifier.set_weights(start_weights)
        classifier.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=2e-5),
                           loss=BinaryFocalLoss(spec.focal_gamma, spec.focal_alpha), jit_compile=jit)
        times = []
        for step in range(steps + 1):
            chosen = rows[step * batch_size:(step + 1) * batch_size]
            inputs = {name: tf.constant(encoded["train"][name][chosen, :width]) for name in ("input_ids", "attention_mask")}
            started = time.perf_counter()
            classifier.train_on_batch(inputs, encoded["train"]["label"][chosen].astype("float32"))
            times.append(time.perf_counter() - started)
        key = "xla" if jit else "graph"
        result.update({f"{key}_first_step_s": times[0], f"{key}_step_median_s": float(np.median(times[1:]))})
    result["xla_speedup"] = result["graph_step_median_s"] / result["xla_step_median_s"]
    result["peak_memory_mb"] = peak_memory_mb()
    return result


def child(args: argparse.Namespace) -> None:
    artifacts = Path(args.artifacts).resolve()
    result = (run_xla(artifacts, args.batch_size, args.seed) if args.child == "xla"
              else run_recipe(artifacts, args.child, args.batch_size, args.seed))
    print("RESULT " + json.dumps(result))


def markdown(record: dict) -> str:
    lines = [f"# Fine-tuning recipes, {record['started']}", "",
             f"{record['machine']}; artifacts {record['artifacts']}; batch {record['batch_size']}, seed "
             f"{record['seed']}. Validation only (the test split is not read).", "",
             "| recipe | epoch | train s | examples/s | val ROC-AUC | val PR-AUC | val F1 | val F1 @ 9.5% | peak MB |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for result in record["results"]:
        if result["recipe"] == "xla":
            continue
        for epoch in result["epochs_detail"]:
            lines.append(f"| {result['recipe']} | {epoch['epoch']} | {epoch['train_seconds']:.0f} | "
                         f"{result['train_examples_per_s']:.1f} | {epoch['val_roc_auc']:.4f} | {epoch['val_pr_auc']:.4f} | "
                         f"{epoch['val_f1']:.4f} | {epoch['val_f1_natural']:.4f} | {result['peak_memory_mb']:.0f} |")
    for result in record["results"]:
        if result["recipe"] == "xla":
            lines += ["", f"XLA, training steps at batch {result['batch_size']} x {result['width']} tokens: "
                      f"first step {result['graph_first_step_s']:.1f} s plain vs {result['xla_first_step_s']:.1f} s XLA; "
                      f"then {result['graph_step_median_s'] * 1e3:.0f} ms vs {result['xla_step_median_s'] * 1e3:.0f} ms "
                      f"per step ({result['xla_speedup']:.2f}x); peak {result['peak_memory_mb']:.0f} MB"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--recipes", default=",".join(DEFAULT_RECIPES),
                        help=f"comma-separated, from {', '.join([*RECIPES, 'xla'])}")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="", help="suffix for the record's file name")
    args = parser.parse_args()
    if args.child:
        return child(args)
    names = [name for name in args.recipes.split(",") if name]
    unknown = [name for name in names if name not in RECIPES and name != "xla"]
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; choose from {[*RECIPES, 'xla']}")
    record = {"started": dt.datetime.now().isoformat(timespec="seconds"), "artifacts": args.artifacts,
              "machine": f"{os.cpu_count()} CPUs, {platform.platform()}", "batch_size": args.batch_size,
              "seed": args.seed, "results": []}
    for name in names:
        print(f"== {name}", flush=True)
        done = subprocess.run([sys.executable, __file__, "--artifacts", args.artifacts, "--child", name,
                               "--batch-size", str(args.batch_size), "--seed", str(args.seed)],
                              capture_output=True, text=True)
        found = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode or not found:
            print(done.stdout[-2000:], done.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"recipe {name} failed")
        record["results"].append(json.loads(found[-1][len("RESULT "):]))
        print(json.dumps(record["results"][-1], indent=1), flush=True)
        save_record("finetune_recipes", record, markdown(record),  # after each recipe: a stopped run keeps the rest
                    date=dt.date.today().isoformat() + (f"_{args.tag}" if args.tag else ""))


if __name__ == "__main__":
    main()
