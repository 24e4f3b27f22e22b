"""Training-speed benchmarks for lessons 3-6, measured on this machine and written as a record.

Not a test: nothing here passes or fails. It needs the artifacts of a run of lessons 1-5 (tokens,
model spec, phase-1 head), e.g. ``./dev walkthrough --profile full --out reports/full``, then:

    .venv/bin/python benchmarks/training_speed.py --artifacts reports/full/artifacts

What it measures (each section can be chosen with --only):
  tokenizer   fast vs slow tokenizer, comments/s
  features    frozen-encoder feature extraction, comments/s, fixed vs bucketed padding
  phase1      one epoch of the article's phase 1 (frozen encoder run every epoch) vs the cached
              route (features once + the head's epochs)
  pipeline    training examples/s through the tf.data input pipeline vs a bare train_on_batch loop
              over pre-built numpy batches, same model and batches
  finetune    one full fine-tuning epoch with fixed vs bucketed padding, from the same phase-1
              start, with the validation ROC-AUC after each
The record (JSON + Markdown) goes to benchmarks/results/ with versions and the machine's CPU count.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

from benchmark_records import save_record

import numpy as np

import toxhelpers  # noqa: F401  (Keras 2 before TensorFlow)
from toxhelpers import batches, data, evaluation, model, pretrained, recording, tokenization, training

SECTIONS = ("tokenizer", "features", "phase1", "pipeline", "finetune")


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


class Bench:
    """Loads the run's artifacts once; each method measures one section and returns a dict."""

    def __init__(self, artifacts: Path, batch_size: int):
        self.artifacts, self.batch_size = artifacts, batch_size
        self.checkpoint = tokenization.tokenized_checkpoint(artifacts, announce=False)
        self.spec = model.load_spec(artifacts, "phase1")
        self.encoded = {split: tokenization.load_encoded(artifacts, split) for split in ("train", "validation")}
        self.labels = {split: arrays["label"] for split, arrays in self.encoded.items()}

    def fresh_classifier(self, frozen: bool):
        """Encoder + phase-1 head, compiled for phase 1 (frozen) or phase 2."""
        config = pretrained.encoder_config(self.checkpoint, self.spec.encoder_dropout, self.spec.attention_dropout)
        encoder = pretrained.load_encoder(self.checkpoint, config)
        head, spec = model.load_head(self.artifacts, "phase1")
        classifier = model.build_classifier(encoder, head, spec.pooling)
        model.set_encoder_trainable(encoder, not frozen)
        rate = spec.head_learning_rate if frozen else 2e-5
        return model.compile_model(classifier, rate, spec.focal_gamma, spec.focal_alpha), encoder, head

    def tokenizer(self) -> dict:
        texts = data.load_split(self.artifacts, "train")[data.TEXT_COLUMN].tolist()[:2000]
        max_length = self.encoded["train"]["input_ids"].shape[1]
        fast = tokenization.throughput(pretrained.load_tokenizer(self.checkpoint), texts, max_length)
        slow = tokenization.throughput(pretrained.load_tokenizer(self.checkpoint, fast=False), texts, max_length, 1)
        return {"fast_texts_per_s": fast, "slow_texts_per_s": slow, "speedup": fast / slow, "texts": len(texts)}

    def features(self) -> dict:
        _, encoder, _ = self.fresh_classifier(frozen=True)
        rows = self.encoded["validation"]
        result = {}
        for padding in batches.PADDINGS:
            training.extract_features(encoder, {k: v[:64] for k, v in rows.items()}, padding=padding)  # warm-up
            _, seconds = timed(training.extract_features, encoder, rows, padding=padding)
            result[f"{padding}_texts_per_s"] = len(rows["label"]) / seconds
        result["speedup"] = result["bucketed_texts_per_s"] / result["fixed_texts_per_s"]
        return result

    def phase1(self) -> dict:
        classifier, encoder, _ = self.fresh_classifier(frozen=True)
        train_data = batches.training_dataset(self.encoded["train"], self.labels["train"], self.batch_size, "fixed")
        validation_data = batches.training_dataset(self.encoded["validation"], self.labels["validation"],
                                                   self.batch_size, "fixed", shuffle=False)
        classifier.fit(train_data.take(2), verbose=0)
        _, uncached_epoch = timed(classifier.fit, train_data, validation_data=validation_data, epochs=1, verbose=0)
        features, feature_seconds = timed(lambda: {split: training.extract_features(encoder, arrays)
                                                   for split, arrays in self.encoded.items()})
        head = model.build_head(encoder.config.hidden_size, self.spec.head_sizes, self.spec.head_dropout)
        history, head_seconds = timed(training.fit_head, head, features["train"][self.spec.pooling],
                                      self.labels["train"], features["validation"][self.spec.pooling],
                                      self.labels["validation"], self.spec.head_learning_rate, epochs=6, patience=2)
        epochs = len(history)
        return {"uncached_epoch_seconds": uncached_epoch, "epochs": epochs,
                "uncached_seconds": uncached_epoch * epochs, "feature_seconds": feature_seconds,
                "head_seconds": head_seconds, "cached_seconds": feature_seconds + head_seconds,
                "speedup": uncached_epoch * epochs / (feature_seconds + head_seconds)}

    def pipeline(self, steps: int = 40) -> dict:
        """``fit`` on the lessons' tf.data pipeline vs ``train_on_batch`` on the same batches in memory.

        Both are timed after warm-up steps that trace the graph. ``fit`` is timed the way the
        lessons time it (:func:`training.examples_per_second`: warm-up and timed steps drawn from
        one repeated dataset). A ``fit`` on ``dataset.skip(1).take(n)`` right after a warm-up
        ``fit`` on ``take(1)`` instead stalled after its last step for about as long as the
        steps took (measured: 20 steps, 21 s of steps, 41 s in all; a third call did not): that pattern
        would bill a one-off cost to the pipeline.
        """
        classifier, _, _ = self.fresh_classifier(frozen=False)
        dataset = batches.training_dataset(self.encoded["train"], self.labels["train"], self.batch_size, "fixed", seed=1)
        numpy_batches = [({name: inputs[name].numpy() for name in batches.INPUT_NAMES}, label.numpy())
                         for inputs, label in dataset.take(steps + 1)]
        steps = len(numpy_batches) - 1  # fewer when the training split is small
        classifier.train_on_batch(*numpy_batches[0])  # warm-up builds the graph
        _, bare = timed(lambda: [classifier.train_on_batch(x, y) for x, y in numpy_batches[1:]])
        bare_rate = steps * self.batch_size / bare
        fit_rate = training.examples_per_second(classifier, dataset, float(self.batch_size), steps)
        return {"steps": steps, "bare_train_on_batch_examples_per_s": bare_rate,
                "fit_tf_data_examples_per_s": fit_rate, "pipeline_overhead": bare_rate / fit_rate - 1}

    def finetune(self) -> dict:
        result = {}
        for padding in batches.PADDINGS:
            training.seed_everything(42)
            classifier, _, _ = self.fresh_classifier(frozen=False)
            train_data = batches.training_dataset(self.encoded["train"], self.labels["train"], self.batch_size, padding)
            _, seconds = timed(classifier.fit, train_data, epochs=1, verbose=0)
            probabilities = batches.predict(classifier, self.encoded["validation"])[:, 0]
            result[padding] = {"epoch_seconds": seconds,
                               "examples_per_s": len(self.labels["train"]) / seconds,
                               "validation_roc_auc": evaluation.binary_metrics(
                                   self.labels["validation"], probabilities)["roc_auc"]}
        result["speedup"] = result["fixed"]["epoch_seconds"] / result["bucketed"]["epoch_seconds"]
        return result


def write_record(record: dict) -> Path:
    lines = [f"# Training speed, {record['date']}", "",
             f"{record['machine']['cpus']} CPUs, {record['machine']['platform']}; artifacts {record['artifacts']}", ""]
    for section, values in record["results"].items():
        lines += [f"## {section}", "", "| measure | value |", "| --- | --- |"]
        for key, value in _flatten(values).items():
            lines.append(f"| {key} | {value:.4g} |" if isinstance(value, float) else f"| {key} | {value} |")
        lines.append("")
    lines.append(f"Peak memory (max RSS): {record['peak_rss_mb']:.0f} MB")
    return save_record("training_speed", record, lines, date=record["date"][:10])


def _flatten(values: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, required=True, help="artifacts_dir of a run of lessons 1-5")
    parser.add_argument("--only", nargs="*", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    bench = Bench(args.artifacts.resolve(), args.batch_size)
    results = {}
    for section in args.only:
        print(f"== {section}", flush=True)
        results[section], seconds = timed(getattr(bench, section))
        print(json.dumps(results[section], indent=2), f"({seconds:.0f} s)", flush=True)
    record = {"date": dt.datetime.now().isoformat(timespec="seconds"), "artifacts": str(args.artifacts),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "versions": recording.package_versions(), "batch_size": args.batch_size, "results": results,
              "peak_rss_mb": recording.peak_memory_mb()}
    print("record:", write_record(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
