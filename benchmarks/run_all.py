"""All benchmarks in one run, one combined record: training side (training_speed.py) and inference
side (inference_speed.py), measured on this machine in the same sitting.

Not a test: nothing here passes or fails. It needs the artifacts of a run of lessons 1-6, then:

    .venv/bin/python benchmarks/run_all.py --artifacts reports/full/artifacts

By default it measures tokenizer throughput (fast vs slow), frozen-feature extraction (texts/s,
fixed vs bucketed padding), fine-tuning examples/s through tf.data vs a bare train_on_batch loop,
and the inference table (TF eager / TF graph / ONNX fp32 / ONNX int8 at batch 1 and 32, sequence
length 128, with model sizes). ``--training`` adds or removes training sections (``phase1`` and
``finetune`` run whole epochs: slow). The record goes to benchmarks/results/all_<date>.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import inference_speed  # noqa: E402
import training_speed  # noqa: E402

from toxhelpers import recording  # noqa: E402

DEFAULT_TRAINING = ["tokenizer", "features", "pipeline"]


def training_markdown(results: dict) -> list[str]:
    lines = []
    for section, values in results.items():
        lines += [f"## Training: {section}", "", "| measure | value |", "| --- | --- |"]
        for key, value in training_speed._flatten(values).items():
            lines.append(f"| {key} | {value:.4g} |" if isinstance(value, float) else f"| {key} | {value} |")
        lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, required=True, help="artifacts_dir of a run of lessons 1-6")
    parser.add_argument("--training", nargs="*", choices=training_speed.SECTIONS, default=DEFAULT_TRAINING,
                        help="training sections to run (none: inference only)")
    parser.add_argument("--no-inference", action="store_true", help="skip the inference table")
    parser.add_argument("--batch-size", type=int, default=32, help="training batch size")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32], help="inference batch sizes")
    parser.add_argument("--length", type=int, default=128, help="inference tokens per row")
    parser.add_argument("--repeats", type=int, default=20, help="timed inference calls per backend and batch size")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: its default)")
    args = parser.parse_args(argv)
    artifacts = args.artifacts.resolve()
    results, seconds = {}, {}
    if args.training:
        bench = training_speed.Bench(artifacts, args.batch_size)
        for section in args.training:
            print(f"== training: {section}", flush=True)
            results[section], seconds[section] = training_speed.timed(getattr(bench, section))
            print(results[section], f"({seconds[section]:.0f} s)", flush=True)
    if not args.no_inference:
        print("== inference", flush=True)
        results["inference"], seconds["inference"] = training_speed.timed(
            inference_speed.measure, artifacts, args.batch_sizes, args.length, args.repeats, args.threads)
        print("\n".join(inference_speed.inference_markdown(results["inference"])), flush=True)
    record = {"date": dt.datetime.now().isoformat(timespec="seconds"), "artifacts": str(args.artifacts),
              "machine": inference_speed.machine(), "versions": recording.package_versions(),
              "training_batch_size": args.batch_size, "results": results, "section_seconds": seconds,
              "peak_rss_mb": recording.peak_memory_mb()}
    body = training_markdown({key: value for key, value in results.items() if key != "inference"})
    if "inference" in results:
        body += ["## Inference", "", *inference_speed.inference_markdown(results["inference"])]
    print("record:", inference_speed.write_record(record, "all", body, "Benchmarks"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
