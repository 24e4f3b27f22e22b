"""A model card (Mitchell et al., 2019): what the model is, what it is for, and how far to trust it.

Lesson 10 writes ``model_card.md`` (artifact ``model_card``) on every run, from facts the run
measured: the weights actually used (with their sha256), the training data, metrics with bootstrap
intervals, calibration, lesson 8's int8 serving results, and lesson 9's bias results when that
lesson ran. Nothing in the card is typed in by hand except the intended uses and the limitations
that follow from how the model was made.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from toxhelpers.artifacts import artifact_path, require_artifact, sha256_file, write_text


def weights_facts(artifacts_dir: str | os.PathLike, spec: Any) -> dict[str, Any]:
    """The pretrained checkpoint the run started from and the sha256 of each fine-tuned file."""
    folder = require_artifact(artifacts_dir, "finetuned_model")
    files = sorted(path for path in folder.rglob("*") if path.is_file() and path.suffix in (".h5", ".safetensors"))
    checkpoint = spec.checkpoint or {}
    return {"pretrained": checkpoint.get("model_id") or checkpoint.get("requested") or "unknown",
            "requested": checkpoint.get("requested"), "source": checkpoint.get("source"),
            "pretrained_sha256": checkpoint.get("weights_sha256"),
            "files": {str(path.relative_to(folder)): sha256_file(path) for path in files}}


def data_facts(splits: dict[str, pd.DataFrame], artifacts_dir: str | os.PathLike,
               label_column: str = "label") -> dict[str, Any]:
    """What the data was (lesson 1's description: the shipped sample, Kaggle's full download or
    other rows) and the rows and toxic share of each split the model was trained, tuned and tested on."""
    from toxhelpers.recording import collect_records

    lesson_1 = collect_records(artifacts_dir).get("data", {}).get("metrics", {})
    return {"description": lesson_1.get("data.description", "not recorded (lesson 1's record is missing)"),
            "splits": {name: {"rows": len(frame), "toxic_share": float(frame[label_column].mean())}
                       for name, frame in splits.items()}}


def serving_facts(artifacts_dir: str | os.PathLike) -> dict[str, Any] | None:
    """Lesson 8's int8 results from its record (None when lesson 8 has not run here)."""
    from toxhelpers.recording import collect_records

    record = collect_records(artifacts_dir).get("serving")
    if not record:
        return None
    metrics = record["metrics"]
    get = lambda key: metrics.get(f"serving.{key}")  # noqa: E731
    return {"int8_roc_auc": get("int8.roc_auc"), "roc_auc_difference": get("int8.roc_auc_difference"),
            "max_abs_difference": get("int8.max_abs_difference"), "decisions_changed": get("int8.decisions_changed"),
            "int8_size_mb": get("latency.ONNX int8 @ 1.size_mb"), "fp32_size_mb": get("latency.ONNX fp32 @ 1.size_mb"),
            "int8_ms_batch1": get("latency.ONNX int8 @ 1.median_ms"), "tf_graph_ms_batch1": get("latency.TF graph @ 1.median_ms")}


def _number(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_table(frame: pd.DataFrame, index: bool = True, digits: int = 4) -> str:
    """A small table as Markdown (pandas' ``to_markdown`` needs ``tabulate``, not installed here)."""
    shown = frame.reset_index() if index else frame
    cell = lambda value: f"{value:.{digits}f}" if isinstance(value, float) else str(value)  # noqa: E731
    lines = ["| " + " | ".join(map(str, shown.columns)) + " |", "|---" * len(shown.columns) + "|"]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join(lines)


def _intervals_table(intervals: pd.DataFrame) -> list[str]:
    metrics = [column for column in intervals.columns if not column.endswith((" low", " high"))]
    lines = ["| model | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for name, row in intervals.iterrows():
        cells = [f"{row[m]:.3f} [{row[f'{m} low']:.3f}, {row[f'{m} high']:.3f}]" for m in metrics]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def render(weights: dict[str, Any], data: dict[str, Any], spec: Any, intervals: pd.DataFrame,
           calibration: pd.DataFrame, deployment: dict[str, Any], serving: dict[str, Any] | None,
           bias: pd.DataFrame | None, resamples: int) -> str:
    """The card as Markdown. ``calibration``: ECE and Brier per split before and after scaling;
    ``deployment``: prevalence, thresholds and expected F1 there (see lesson 10)."""
    lines = ["# Model card: toxic-comment classifier (toxhelpers)", "",
             "## Model", "",
             f"- Pretrained encoder: **{weights['pretrained']}** (source: {weights['source'] or 'n/a'}; "
             f"requested: {weights['requested'] or 'n/a'}); pretrained weights sha256 `{weights['pretrained_sha256']}`.",
             f"- Fine-tuned as a binary classifier: {spec.pooling} pooling, head {spec.head_sizes}, focal loss "
             f"(gamma {spec.focal_gamma}, alpha {spec.focal_alpha}), max_length {spec.max_length} tokens.",
             "- Fine-tuned files (sha256):", *[f"  - `{name}`: `{digest}`" for name, digest in weights["files"].items()],
             f"- Decision threshold saved with the model (F1-optimal on validation): {spec.threshold:.3f}.", "",
             "## Training data", "",
             "Jigsaw Toxic Comment Classification (Wikipedia talk-page comments, English), label as chosen "
             f"in lesson 1. Data: {data['description']}. Splits used:", "",
             "| split | rows | toxic share |", "|---|---|---|",
             *[f"| {name} | {facts['rows']:,} | {facts['toxic_share']:.1%} |" for name, facts in data["splits"].items()],
             "",
             "## Intended use", "",
             "- Ranking or pre-screening English comments for human moderators; learning how to fine-tune "
             "and evaluate a Transformer.",
             "- Out of scope: automatic removal or sanctions without human review; other languages or "
             "platforms without re-validation; judging people rather than comments.", "",
             f"## Metrics (test, 95% bootstrap intervals, {resamples} resamples)", "",
             *_intervals_table(intervals), "",
             "F1 at each model's threshold chosen on validation. The difference row is paired (same resampled rows).", "",
             "## Calibration", "",
             "Scaling fitted on validation only; ECE with 10 equal-width bins.", "",
             markdown_table(calibration), "",
             f"## Deployment at {deployment['prevalence']:.1%} toxic", "",
             f"- Probabilities on this sample are calibrated for {deployment['fitted_prevalence']:.1%} toxic; "
             "for a deployment they are moved to its toxic share by Bayes' rule (lesson 10).",
             f"- Recommended threshold on the model's raw score: **{deployment['recommended']:.3f}** "
             f"(expected test F1 there {deployment['f1_recommended']:.3f}; best in hindsight "
             f"{deployment['f1_hindsight']:.3f} at {deployment['hindsight']:.3f}).",
             f"- Re-estimating the threshold from labelled deployment comments: about {deployment['knee']} labels "
             "reach the plateau of the labels-vs-F1 curve.", "",
             "## Identity-term bias", "",
             *(["Lesson 9's most-flagged identity templates:", "", markdown_table(bias.head(10), index=False)]
               if bias is not None else ["Not measured in this run (lesson 9 did not run)."]), "",
             "## Serving (ONNX int8, lesson 8)", "",
             *([f"- int8 test ROC-AUC {_number(serving['int8_roc_auc'], 4)} (change vs TensorFlow "
                f"{_number(serving['roc_auc_difference'], 4)}); largest probability change "
                f"{_number(serving['max_abs_difference'], 4)}; decisions changed at the threshold "
                f"{_number(serving['decisions_changed'], 4)}.",
                f"- Size {_number(serving['int8_size_mb'], 1)} MB (fp32 {_number(serving['fp32_size_mb'], 1)} MB); "
                f"batch-1 latency {_number(serving['int8_ms_batch1'], 1)} ms (TF graph "
                f"{_number(serving['tf_graph_ms_batch1'], 1)} ms) on the run's machine."]
               if serving else ["Lesson 8 did not run here."]), "",
             "## Limitations", "",
             f"- Reads only the first {spec.max_length} tokens of a comment (lesson 8's windowed scorer reads more).",
             "- Trained and tested on one platform's comments from the 2010s, "
             f"{data['splits'].get('test', {}).get('toxic_share', float('nan')):.1%} toxic in the test split; at "
             "another toxic share precision and F1 change (see the deployment section).",
             "- The score is not a probability unless the calibration above is applied, and then only for "
             "the toxic share it was moved to.",
             "- Labels are crowd-sourced and noisy; the model can flag identity terms, quotes and reclaimed "
             "words, and miss toxicity expressed without offensive words.",
             "- Small test set: see the intervals before claiming one model beats another.", ""]
    return "\n".join(lines)


def write_model_card(artifacts_dir: str | os.PathLike, text: str) -> Path:
    return write_text(text, artifact_path(artifacts_dir, "model_card"))


def read_model_card(artifacts_dir: str | os.PathLike) -> str:
    return require_artifact(artifacts_dir, "model_card").read_text(encoding="utf-8")
