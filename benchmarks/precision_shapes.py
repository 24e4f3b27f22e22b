"""Where mixed_bfloat16 wins or loses on this CPU: one training step and one scoring step of
lesson 6's classifier (bundled encoder + head) per batch shape, float32 against mixed_bfloat16.

Not a test: nothing here passes or fails. Why it exists: one ``train_on_batch`` of 32 comments x
128 tokens ran 1.4-2x faster under ``mixed_bfloat16`` on an AVX512_BF16 CPU, yet lesson 6's whole
fine-tuning ran 3.04x slower (benchmarks/results/bf16_lesson6_2026-12-06.md). Lesson 6's batches
are length-bucketed (32 rows of 16, 32, ..., 128 tokens), so this measures every bucket's shape.

    .venv/bin/python benchmarks/precision_shapes.py             # both precisions, interleaved
    .venv/bin/python benchmarks/precision_shapes.py --rounds 3 --steps 8

Each (round, precision) runs in a fresh process (Keras' dtype policy is global, and a process
keeps its traced graphs): it builds the classifier under the policy, warms every shape up twice
(the first call traces), then times ``--steps`` calls per shape and keeps the median. Precisions
alternate within each round, so load on the machine falls on both alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from benchmark_records import bundled_classifier, machine, random_batch, save_record

PRECISIONS = ("float32", "mixed_bfloat16")
WIDTHS = (16, 32, 64, 128)  # lesson 6's bucket widths (every 16 up to max_length 128; a subset)
BATCH = 32


def measure(precision: str, steps: int) -> dict:
    """In this process: median seconds per train_on_batch and predict_on_batch, per width, and the
    process's peak memory."""
    import numpy as np

    import toxhelpers  # noqa: F401  (Keras 2 before TensorFlow)
    from toxhelpers import recording

    classifier = bundled_classifier(precision)
    rng = np.random.default_rng(0)
    results = {}
    for width in WIDTHS:
        inputs, labels = random_batch(rng, BATCH, width)
        for _ in range(2):
            classifier.train_on_batch(inputs, labels)
            classifier.predict_on_batch(inputs)
        train, score = [], []
        for _ in range(steps):
            start = time.perf_counter()
            classifier.train_on_batch(inputs, labels)
            train.append(time.perf_counter() - start)
            start = time.perf_counter()
            classifier.predict_on_batch(inputs)
            score.append(time.perf_counter() - start)
        results[width] = {"train_s": statistics.median(train), "score_s": statistics.median(score)}
    return {"widths": results, "peak_memory_mb": recording.peak_memory_mb()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--child", choices=PRECISIONS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.steps)))
        return 0

    runs: dict[str, list[dict]] = {precision: [] for precision in PRECISIONS}
    peaks: dict[str, list[float]] = {precision: [] for precision in PRECISIONS}
    for round_index in range(args.rounds):
        for precision in PRECISIONS if round_index % 2 == 0 else PRECISIONS[::-1]:
            done = subprocess.run([sys.executable, __file__, "--child", precision, "--steps", str(args.steps)],
                                  capture_output=True, text=True, check=True)
            measured = json.loads(done.stdout.strip().splitlines()[-1])
            runs[precision].append({int(width): times for width, times in measured["widths"].items()})
            peaks[precision].append(measured["peak_memory_mb"])
            print(f"round {round_index + 1} {precision}: {runs[precision][-1]}, peak {peaks[precision][-1]:.0f} MB",
                  flush=True)

    lines = [f"# float32 vs mixed_bfloat16 per batch shape ({BATCH} rows x width tokens)", "",
             f"Machine: {machine()}. Rounds: {args.rounds} (precisions alternating), {args.steps} timed "
             "steps per shape each, median per round, then the median over rounds.", "",
             "| width | train float32 (s) | train bf16 (s) | bf16 speed-up | score float32 (s) | score bf16 (s) | bf16 speed-up |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    summary = {}
    for width in WIDTHS:
        row = {f"{kind}_{precision}": statistics.median(run[width][f"{kind}_s"] for run in runs[precision])
               for kind in ("train", "score") for precision in PRECISIONS}
        summary[width] = row
        lines.append(f"| {width} | {row['train_float32']:.3f} | {row['train_mixed_bfloat16']:.3f} | "
                     f"{row['train_float32'] / row['train_mixed_bfloat16']:.2f}x | {row['score_float32']:.3f} | "
                     f"{row['score_mixed_bfloat16']:.3f} | {row['score_float32'] / row['score_mixed_bfloat16']:.2f}x |")
    lines += ["", "Peak memory of a measuring process (largest over rounds): "
              + ", ".join(f"{precision} {max(peaks[precision]):,.0f} MB" for precision in PRECISIONS)]
    print("\n".join(lines))
    stem = save_record("precision_shapes", {"machine": machine(), "batch": BATCH, "rounds": args.rounds,
                                            "steps": args.steps, "runs": runs, "peak_memory_mb": peaks,
                                            "summary": summary}, lines)
    print(f"record: {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
