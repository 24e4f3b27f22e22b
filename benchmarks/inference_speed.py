"""Inference-speed benchmark for lesson 8, measured on this machine and written as a record.

Not a test: nothing here passes or fails. It needs the fine-tuned model of a run of lessons 1-6
(the fine-tuned model and the encoded test split, see ``toxhelpers.artifacts``), then:

    .venv/bin/python benchmarks/inference_speed.py --artifacts reports/full/artifacts

What it measures:
  export      ONNX export and int8 quantization time, file sizes (TF weights, ONNX fp32, ONNX int8)
  agreement   ONNX fp32 and int8 against TensorFlow on test rows: largest probability difference,
              ROC-AUC difference
  latency     median and p90 latency and examples/s at each batch size (default 1 and 32) and
              sequence length (default 128), for TF eager, TF graph, ONNX fp32 and ONNX int8,
              backends taking turns call by call
The ONNX files are written to a temporary folder (the artifacts are only read). The record (JSON +
Markdown) goes to benchmarks/results/ with versions, CPU count and load average.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmark_records import machine, save_record

import toxhelpers  # noqa: F401  (Keras 2 before TensorFlow)
from toxhelpers import batches, data, model, recording, serving, tokenization



def measure(artifacts: Path, batch_sizes: list[int], length: int, repeats: int, threads: int = 0,
            agreement_rows: int = 512) -> dict:
    """Export, quantize, check agreement and time the four backends; one dict of results."""
    saved = model.finetuned_path(artifacts)
    classifier, tokenizer, spec = model.load_classifier(saved)
    result: dict = {"settings": {"batch_sizes": batch_sizes, "length": length, "repeats": repeats,
                                 "onnx_threads": threads, "model_max_length": spec.max_length}}
    with tempfile.TemporaryDirectory(prefix="toxhelpers-onnx-") as folder:
        paths = {"fp32": Path(folder) / "classifier.fp32.onnx", "int8": Path(folder) / "classifier.int8.onnx"}
        started = time.perf_counter()
        serving.export_onnx(classifier, paths["fp32"])
        exported = time.perf_counter()
        serving.quantize_int8(paths["fp32"], paths["int8"])
        tf_size = serving.file_size_mb(saved / "encoder") + serving.file_size_mb(saved / "head.weights.h5")
        sizes = {"TF eager": tf_size, "TF graph": tf_size, "ONNX fp32": serving.file_size_mb(paths["fp32"]),
                 "ONNX int8": serving.file_size_mb(paths["int8"])}
        result["export"] = {"export_seconds": exported - started, "quantize_seconds": time.perf_counter() - exported,
                            "size_mb": sizes}
        onnx = {name: serving.OnnxClassifier(path, threads) for name, path in paths.items()}
        result["agreement"] = agreement(classifier, onnx, artifacts, agreement_rows, spec.threshold)
        texts = data.load_split(artifacts, "test")[data.TEXT_COLUMN].tolist()[:max(batch_sizes)]
        inputs = serving.benchmark_inputs(tokenization.encode(tokenizer, texts, length), batch_sizes, length)
        backends = {**serving.tf_backends(classifier), "ONNX fp32": onnx["fp32"], "ONNX int8": onnx["int8"]}
        load_before = os.getloadavg()[0]
        table = serving.latency_table(backends, inputs, repeats=repeats, sizes_mb=sizes)
        result["load_average"] = {"before": load_before, "after": os.getloadavg()[0]}
    result["latency"] = {f"batch {batch}": {backend: {key: float(value) for key, value in row.items()}
                                            for backend, row in table.loc[batch].iterrows()}
                         for batch in batch_sizes}
    first = min(batch_sizes)
    result["int8_speedup_batch_1"] = {name: table.loc[(first, name), "median_ms"] / table.loc[(first, "ONNX int8"), "median_ms"]
                                      for name in ("TF eager", "TF graph", "ONNX fp32")}
    return result


def agreement(classifier, onnx: dict, artifacts: Path, rows: int, threshold: float) -> dict:
    """ONNX fp32 and int8 against TensorFlow on the first ``rows`` test rows (0: all)."""
    tokens = tokenization.load_encoded(artifacts, "test")
    if rows:
        tokens = {name: values[:rows] for name, values in tokens.items()}
    reference = batches.predict(classifier, tokens)[:, 0]
    return {"rows": len(tokens["label"]),
            **{name: serving.agreement(reference, batches.predict_with(session, tokens), tokens["label"], threshold)
               for name, session in onnx.items()}}


def markdown_table(latency: dict) -> list[str]:
    """The inference table: one row per batch size and backend."""
    lines = ["| batch | backend | median ms | p90 ms | examples/s | size MB | speed-up vs TF eager |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for batch, backends in latency.items():
        for backend, row in backends.items():
            lines.append(f"| {batch.split()[-1]} | {backend} | {row['median_ms']:.1f} | {row['p90_ms']:.1f} | "
                         f"{row['examples_per_s']:.1f} | {row['size_mb']:.1f} | {row['speedup_vs_first']:.2f} |")
    return lines


def inference_markdown(result: dict) -> list[str]:
    settings, load = result["settings"], result["load_average"]
    lines = [f"Sequence length {settings['length']}, {settings['repeats']} timed calls per cell (median), "
             f"ONNX threads {settings['onnx_threads'] or 'default'}; load average {load['before']:.1f} before, "
             f"{load['after']:.1f} after.", "", *markdown_table(result["latency"]), ""]
    speedup = result["int8_speedup_batch_1"]
    lines.append("ONNX int8 at the smallest batch is " + ", ".join(f"{value:.2f}x faster than {name}"
                                                                     for name, value in speedup.items()) + ".")
    agree = result["agreement"]
    lines += ["", f"Agreement with TensorFlow on {agree['rows']} test rows:", "",
              "| model | max abs difference | ROC-AUC | ROC-AUC difference |", "| --- | --- | --- | --- |"]
    lines += [f"| ONNX {name} | {agree[name]['max_abs_difference']:.2e} | {agree[name]['roc_auc']:.4f} | "
              f"{agree[name]['roc_auc_difference']:+.4f} |" for name in ("fp32", "int8")]
    export = result["export"]
    lines += ["", f"Export {export['export_seconds']:.0f} s, quantization {export['quantize_seconds']:.0f} s."]
    return lines


def write_record(record: dict, stem_name: str, body: list[str], title: str) -> Path:
    """``<stem>.json`` with everything, ``<stem>.md`` with the readable tables."""
    header = [f"# {title}, {record['date']}", "",
              f"{record['machine']['cpus']} CPUs, {record['machine']['platform']}; artifacts {record['artifacts']}", ""]
    footer = ["", f"Peak memory (max RSS): {record['peak_rss_mb']:.0f} MB"]
    return save_record(stem_name, record, header + body + footer, date=record["date"][:10])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, required=True, help="artifacts_dir of a run of lessons 1-6")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--length", type=int, default=128, help="tokens per row")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per backend and batch size")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: its default)")
    parser.add_argument("--agreement-rows", type=int, default=512, help="test rows compared with TF (0: all)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = measure(args.artifacts.resolve(), args.batch_sizes, args.length, args.repeats, args.threads,
                     args.agreement_rows)
    print("\n".join(inference_markdown(result)), f"\n({time.perf_counter() - started:.0f} s)", flush=True)
    record = {"date": dt.datetime.now().isoformat(timespec="seconds"), "artifacts": str(args.artifacts),
              "machine": machine(), "versions": recording.package_versions(), "results": {"inference": result},
              "peak_rss_mb": recording.peak_memory_mb()}
    print("record:", write_record(record, "inference_speed", inference_markdown(result), "Inference speed"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
