"""Lesson 9's mitigation, recipe variants side by side: how far each carries over to held-out terms.

Not a test. It needs the artifacts of a run of lessons 1-9 (lesson 6's model, lesson 1's splits,
lesson 3's validation tokens), e.g.

    .venv/bin/python benchmarks/bias_mitigation.py --artifacts reports/full/artifacts \\
        --variants '[{"seeds": [42]}, {"seeds": [1]}, {"seeds": [42, 1, 2]}]'

Each variant starts from lesson 6's model and trains like the lesson (replayed training rows plus
identity sentences of the train-side terms, one epoch of a warm-up + linear-decay schedule, one run
per seed with the runs' weights averaged). Keys: seeds, sentences, replay, learning_rate, epochs,
tokens_per_batch; each defaults to lesson 9's parameters cell (read from the notebook), except
seeds (the lesson's first seed only: a variant names its seeds) and epochs (1, as the lesson
trains). Every variant is scored like the lesson: its own F1-optimal validation threshold, the
lesson's seeded template subsample and held-out terms.
The record goes to benchmarks/results/bias_mitigation_<date>.{json,md}. Seconds are only
comparable within one quiet run.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from benchmark_records import save_record

# What the benchmark takes from lesson 9's parameters cell (the recipe's one home; until 2026-12-07
# this file restated them, and had to be edited beside the lesson: tokens_per_batch went 2,048 -> 1,024)
RECIPE_KEYS = ("template_rows", "held_out_fraction", "replay_rows", "mitigation_sentences", "mitigation_seeds",
               "mitigation_learning_rate", "batch_size", "mitigation_tokens_per_batch", "seed")


def lesson_9_recipe(notebook: Path | None = None) -> dict[str, Any]:
    """Lesson 9's settings, as its parameters cell declares them (the shipped lesson by default)."""
    from toxhelpers import recording
    from toxhelpers.artifacts import LESSONS
    from toxhelpers.run.notebooks import DEFAULT_NOTEBOOKS_DIR

    notebook = notebook or DEFAULT_NOTEBOOKS_DIR / LESSONS["bias"]

    declared = recording.declared_parameters(recording.parameters_cell(notebook), f"{notebook.name}: its parameters cell")
    return {key: ast.literal_eval(declared[key]) for key in RECIPE_KEYS}


def default_variant(recipe: dict[str, Any]) -> dict[str, Any]:
    """A variant's defaults: the lesson's recipe, with its first seed only (the lesson averages
    one run per seed; a variant names its seeds) and one epoch (the lesson's fit is one epoch)."""
    return {"seeds": recipe["mitigation_seeds"][:1], "sentences": recipe["mitigation_sentences"],
            "replay": recipe["replay_rows"], "learning_rate": recipe["mitigation_learning_rate"], "epochs": 1,
            "tokens_per_batch": recipe["mitigation_tokens_per_batch"]}


class Setting:
    """Everything the variants share, loaded once: the model's start, the templates, validation."""

    def __init__(self, artifacts: str, recipe: dict[str, Any]):
        from toxhelpers import bias, data, evaluation, model, tokenization

        seed = recipe["seed"]
        self.batch_size = recipe["batch_size"]
        self.classifier, self.tokenizer, self.spec = model.load_finetuned(artifacts)
        self.all_templates, words = bias.load_templates(None)
        templates = bias.sample_rows(self.all_templates, recipe["template_rows"], seed)
        self.template_labels = templates["label"].to_numpy()
        self.membership = bias.match_terms(templates["phrase"].tolist(), bias.identity_terms(words, "neutral"))
        self.train_terms, self.held_out_terms = bias.split_terms(words, recipe["held_out_fraction"], seed)
        self.encoded_templates = tokenization.encode(self.tokenizer, templates["phrase"].tolist(), self.spec.max_length)
        validation = data.load_split(artifacts, "validation")
        self.validation_labels = validation["label"].to_numpy()
        before = model.load_predictions(artifacts, "validation", ids=validation["id"])["probability"].to_numpy()
        self.auc_before = evaluation.binary_metrics(self.validation_labels, before)["roc_auc"]
        self.encoded_validation = tokenization.load_encoded(artifacts, "validation")
        self.train_frame = data.load_split(artifacts, "train")
        model.set_encoder_trainable(model.encoder_of(self.classifier), True)
        self.start = self.classifier.get_weights()


def train_variant(setting: Setting, variant: dict) -> float:
    """Lesson 9's runs for one variant (cell "One remedy"), their weights averaged into the
    classifier; returns the fit seconds."""
    from toxhelpers import batches, bias, model, tokenization, training

    mixes = {seed: bias.mitigation_mix(setting.train_frame, setting.train_terms, variant["replay"], variant["sentences"],
                                       seed, held_out=setting.held_out_terms, exclude=setting.all_templates["phrase"])
             for seed in variant["seeds"]}
    encoded = {seed: tokenization.encode(setting.tokenizer, mix["text"].tolist(), setting.spec.max_length)
               for seed, mix in mixes.items()}
    steps = max(batches.batches_per_epoch(tokens, setting.batch_size, "bucketed",
                                          tokens_per_batch=variant["tokens_per_batch"])
                for tokens in encoded.values())
    model.compile_model(setting.classifier, gamma=setting.spec.focal_gamma, alpha=setting.spec.focal_alpha,
                        learning_rate=training.learning_rate_schedule(variant["learning_rate"], steps * variant["epochs"],
                                                                      "linear", 0.1))
    soup, seconds = training.WeightAverage(), 0.0
    for seed, mix in mixes.items():
        setting.classifier.set_weights(setting.start)
        training.restart_optimizer(setting.classifier)
        training.seed_everything(seed)
        started = time.perf_counter()
        setting.classifier.fit(batches.training_dataset(encoded[seed], mix["label"].to_numpy(), setting.batch_size,
                                                        "bucketed", seed,
                                                        tokens_per_batch=variant["tokens_per_batch"]),
                               epochs=variant["epochs"], verbose=0)
        seconds += time.perf_counter() - started
        soup.add(setting.classifier.get_weights())
    setting.classifier.set_weights(soup.mean())
    return seconds


def score_variant(setting: Setting) -> dict:
    """Validation cost and the held-out terms' false-positive rates of the classifier as it is."""
    from toxhelpers import batches, bias, evaluation

    validation_p = batches.predict(setting.classifier, setting.encoded_validation)[:, 0]
    threshold = evaluation.best_f1_threshold(setting.validation_labels, validation_p)
    scores = batches.predict(setting.classifier, setting.encoded_templates)[:, 0]
    table = bias.term_table(setting.template_labels, scores, setting.membership, threshold)
    held = table.loc[[term for term in table.index if term in set(setting.held_out_terms)], "fpr"]
    return {"validation_cost": setting.auc_before - evaluation.binary_metrics(setting.validation_labels, validation_p)["roc_auc"],
            "worst_held_out_term": str(held.idxmax()), "worst_held_out_fpr": float(held.max()),
            "held_out_mean_fpr": float(held.mean()),
            "final_bias_score": bias.bias_score(setting.template_labels, scores, table)["final_bias_score"],
            "worst_five": held.sort_values(ascending=False).head(5).round(2).to_dict()}


def markdown(record: dict) -> str:
    lines = [f"# Lesson 9 mitigation variants, {record['when']}", "",
             f"{record['cpus']} CPUs, {record['platform']}; artifacts {record['artifacts']}", "",
             "| variant | validation cost | worst held-out term (FPR) | held-out mean FPR | final bias score | fit s |",
             "| --- | ---: | --- | ---: | ---: | ---: |"]
    for row in record["variants"]:
        lines.append(f"| {row['label']} | {row['validation_cost']:.4f} | {row['worst_held_out_term']} "
                     f"({row['worst_held_out_fpr']:.0%}) | {row['held_out_mean_fpr']:.1%} | "
                     f"{row['final_bias_score']:.4f} | {row['fit_seconds']:.0f} |")
    lines += ["", f"Peak memory of the process (Linux VmHWM, all variants): {record['peak_mb']:,.0f} MB"]
    return "\n".join(lines) + "\n"


def main() -> None:
    recipe = lesson_9_recipe()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", required=True, help="artifacts folder of a run of lessons 1-9")
    parser.add_argument("--variants", default=json.dumps([{"seeds": [42]}, {"seeds": [42, 1, 2]}]),
                        help="JSON list of variants (keys: " + ", ".join(default_variant(recipe)) + ")")
    args = parser.parse_args()
    setting = Setting(args.artifacts, recipe)
    rows = []
    for given in json.loads(args.variants):
        variant = {**default_variant(recipe), **given}
        label = ", ".join(f"{key}={value}" for key, value in given.items()) or "defaults"
        fit_seconds = train_variant(setting, variant)
        rows.append({"label": label, "variant": variant, "fit_seconds": fit_seconds, **score_variant(setting)})
        print(json.dumps(rows[-1]), flush=True)
    from toxhelpers.run.peak_memory import high_water_mb

    record = {"when": dt.datetime.now().isoformat(timespec="seconds"), "cpus": os.cpu_count(),
              "platform": platform.platform(), "artifacts": args.artifacts, "lesson_9_recipe": recipe, "variants": rows,
              "peak_mb": high_water_mb(os.getpid())}  # the whole process, every variant in it
    save_record("bias_mitigation", record, markdown(record))
    print(markdown(record))


if __name__ == "__main__":
    main()
