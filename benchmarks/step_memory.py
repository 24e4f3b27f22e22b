"""How much memory a fine-tuning kernel keeps, by the largest batch it trained on: the evidence for
lesson 9's 1,024 tokens per batch (issue 23: every lesson within 3 GB).

Not a test: nothing here passes or fails. Each cap on the tokens of a batch (``tokens_per_batch``,
as the lessons pass it to ``batches.training_dataset``) runs in a fresh process, because a
TensorFlow process keeps the memory of its largest training step: it builds lesson 6's classifier
on the bundled encoder, then trains a few steps on each bucket width (16, 32, 64, 128 tokens) with
as many rows as the cap allows (at most 32), and reports its resident memory after each width,
its peak, and the seconds per 1,000 token positions of the last width (does a smaller cap cost
speed?). Caps run in the order given, alternating direction between rounds.

    .venv/bin/python benchmarks/step_memory.py                       # caps 1024 2048 4096, 2 rounds
    .venv/bin/python benchmarks/step_memory.py --caps 1024 2048 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from benchmark_records import bundled_classifier, machine, random_batch, save_record

WIDTHS = (16, 32, 64, 128)  # lesson 6's bucket widths at max_length 128 (every 16; a subset)
BATCH = 32


def resident_mb() -> float:
    """This process's resident memory now, in MiB."""
    import psutil

    return psutil.Process().memory_info().rss / 1024 ** 2


def measure(cap: int, steps: int) -> dict:
    """In this process: resident memory after each width, the peak, and seconds per 1,000 tokens."""
    import numpy as np

    import toxhelpers  # noqa: F401  (Keras 2 before TensorFlow)
    from toxhelpers import batches, recording

    classifier = bundled_classifier()
    rng = np.random.default_rng(0)
    after, seconds_per_1000 = {"loaded": resident_mb()}, {}
    for width, rows in zip(WIDTHS, batches.bucket_batch_sizes(list(WIDTHS), BATCH, cap)):
        inputs, labels = random_batch(rng, rows, width)
        classifier.train_on_batch(inputs, labels)  # the first step of a shape traces
        started = time.perf_counter()
        for _ in range(steps):
            classifier.train_on_batch(inputs, labels)
        seconds_per_1000[f"{rows}x{width}"] = (time.perf_counter() - started) / steps / (rows * width) * 1000
        after[f"{rows}x{width}"] = resident_mb()
    return {"resident_mb_after": after, "seconds_per_1000_tokens": seconds_per_1000,
            "peak_memory_mb": recording.peak_memory_mb()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--caps", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per width after the traced one")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.steps)))
        return 0
    runs: dict[int, list[dict]] = {cap: [] for cap in args.caps}
    for round_index in range(args.rounds):
        for cap in args.caps if round_index % 2 == 0 else args.caps[::-1]:
            done = subprocess.run([sys.executable, __file__, "--child", str(cap), "--steps", str(args.steps)],
                                  capture_output=True, text=True, check=True)
            runs[cap].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"round {round_index + 1}, cap {cap}: peak {runs[cap][-1]['peak_memory_mb']:,.0f} MB", flush=True)
    lines = ["# Memory a fine-tuning process keeps, by the tokens of its largest batch", "",
             f"Machine: {machine()}. Lesson 6's classifier on the bundled encoder, one fresh process per cap and "
             f"round ({args.rounds} rounds, caps alternating), {args.steps} timed steps per width after a traced one.",
             "", "| tokens per batch (cap) | batches trained (rows x width) | resident MB after each | "
             "peak MB (median over rounds) | s per 1,000 tokens, widest batch (median) |",
             "| ---: | --- | --- | ---: | ---: |"]
    for cap, measured in runs.items():
        shapes = [key for key in measured[0]["resident_mb_after"] if key != "loaded"]
        resident = " / ".join(f"{statistics.median(run['resident_mb_after'][key] for run in measured):,.0f}"
                              for key in ["loaded", *shapes])
        peak = statistics.median(run["peak_memory_mb"] for run in measured)
        widest = statistics.median(run["seconds_per_1000_tokens"][shapes[-1]] for run in measured)
        lines.append(f"| {cap:,} | loaded, {', '.join(shapes)} | {resident} | {peak:,.0f} | {widest:.3f} |")
    print("\n".join(lines))
    stem = save_record("step_memory", {"machine": machine(), "rounds": args.rounds, "steps": args.steps,
                                       "runs": {str(cap): measured for cap, measured in runs.items()}}, lines)
    print(f"record: {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
