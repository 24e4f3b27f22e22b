"""Lesson 6's fine-tuning step, one worker vs two local workers, on this machine: examples/s and
the all-reduce's share of a step.

Not a test, and needs no artifacts (the shipped demo comments, the real bundled encoder):

    .venv/bin/python benchmarks/distribute.py            # about 2-3 minutes on 2 cores

Two configurations, each its own process(es), at the same global batch (``--batch-size`` x 2):
  one_worker   the default strategy, one process, global batch 2B
  two_workers  ``MultiWorkerMirroredStrategy``, two processes on localhost (``TF_CONFIG`` with two
               free ports), B rows each per step
Both train with ``distribute.distribute_dataset`` and fixed padding (one shape: no graph tracing
inside the timed steps), after untimed warm-up steps. Each worker of the two-worker run also times
an all-reduce (sum) of tensors shaped like the classifier's trainable weights, alone: the
communication a step adds. On 2 CPU cores the two workers share the same cores, so expect no gain:
this measures the overhead, the speed-up needs a core (or GPU) per worker. The record goes to
benchmarks/results/distribute_<date>.{json,md}.
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
from typing import Any

from benchmark_records import save_record

MAX_LENGTH = 64
BENCHMARK_ROWS = 400  # real comments from the shipped sample, padded to MAX_LENGTH


def child(strategy_name: str, batch_size: int, warmup_steps: int, timed_steps: int, reduce_repeats: int) -> dict:
    """One worker's measurement (this process): seconds per step, and of one gradient all-reduce."""
    import numpy as np

    import toxhelpers  # noqa: F401
    from toxhelpers import batches, data, distribute, model, pretrained, tokenization, training
    from toxhelpers.run.peak_memory import high_water_mb

    strategy = distribute.make_strategy(strategy_name)
    training.seed_everything(42)
    checkpoint = pretrained.resolve_checkpoint(pretrained.BUNDLED, announce=False)
    frame = data.load_train(data.locate_data(data.sample_data_dir())).head(BENCHMARK_ROWS)
    encoded = tokenization.encode(pretrained.load_tokenizer(checkpoint), frame["comment_text"].tolist(), MAX_LENGTH)
    labels = frame["toxic"].to_numpy()
    global_batch = distribute.global_batch_size(batch_size, strategy)
    with strategy.scope():
        encoder = pretrained.load_encoder(checkpoint)
        classifier = model.build_classifier(encoder, model.build_head(encoder.config.hidden_size), "cls")
        model.set_encoder_trainable(encoder, True)
        model.compile_model(classifier, learning_rate=1e-5)
    train = distribute.distribute_dataset(strategy, lambda: batches.training_dataset(
        encoded, labels, global_batch, "fixed", 42))
    if distribute.is_default(strategy):
        train = train.repeat()
    all_reduce = gradient_all_reduce(strategy, [w.shape for w in classifier.trainable_weights])
    classifier.fit(train, epochs=1, steps_per_epoch=warmup_steps, verbose=0)
    all_reduce()  # a barrier: both workers start the clock together (the first to arrive would bill its wait)
    started = time.perf_counter()
    classifier.fit(train, epochs=1, steps_per_epoch=timed_steps, verbose=0)
    step_seconds = (time.perf_counter() - started) / timed_steps
    result = {"strategy": strategy_name, "replicas": distribute.replicas(strategy), "per_replica_batch": batch_size,
              "global_batch": global_batch, "step_seconds": step_seconds,
              "examples_per_s": global_batch / step_seconds, "chief": distribute.is_chief(),
              "gradient_mb": sum(int(np.prod(w.shape)) for w in classifier.trainable_weights) * 4 / 2**20}
    if not distribute.is_default(strategy):
        for _ in range(2):
            all_reduce()
        started = time.perf_counter()
        for _ in range(reduce_repeats):
            all_reduce()
        result["all_reduce_seconds"] = (time.perf_counter() - started) / reduce_repeats
    result["peak_mb"] = high_water_mb(os.getpid())  # this worker process's peak (Linux VmHWM)
    return result


def gradient_all_reduce(strategy, shapes) -> Any:
    """A graph that sums, across the replicas, tensors shaped like the model's gradients: the
    communication one training step adds (with the default strategy: nothing to sum)."""
    from toxhelpers.tf_setup import tf

    @tf.function
    def all_reduce():
        def summed():
            tensors = [tf.ones(shape) for shape in shapes]
            return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, tensors)
        return strategy.run(summed)

    return all_reduce


def launch(args: argparse.Namespace, strategy: str, batch_size: int, workers: int) -> list[dict]:
    """Start ``workers`` processes of :func:`child` and collect their RESULT lines."""
    from toxhelpers import distribute

    configs = distribute.local_tf_configs(workers)
    processes = []
    for index in range(workers):
        env = distribute.local_worker_environment(configs[index] if workers > 1 else None)
        command = [sys.executable, __file__, "--child", strategy, "--batch-size", str(batch_size),
                   "--warmup-steps", str(args.warmup_steps), "--timed-steps", str(args.timed_steps),
                   "--reduce-repeats", str(args.reduce_repeats)]
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=1800)
        found = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
        if process.returncode or not found:
            raise SystemExit(f"{strategy} worker failed:\n{stderr[-3000:]}")
        results.append(json.loads(found[-1][len("RESULT "):]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16, help="per worker of the two-worker run (default 16)")
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--timed-steps", type=int, default=10)
    parser.add_argument("--reduce-repeats", type=int, default=10)
    parser.add_argument("--child", choices=("default", "multi_worker"), help=argparse.SUPPRESS)
    parser.add_argument("--note", default="", help="one line for the record, e.g. 'quiet machine'")
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.child, args.batch_size, args.warmup_steps, args.timed_steps,
                                           args.reduce_repeats)), flush=True)
        return
    record = {"started": dt.datetime.now().isoformat(timespec="seconds"), "note": args.note,
              "machine": f"{os.cpu_count()} CPUs, {platform.platform()}", "max_length": MAX_LENGTH,
              "padding": "fixed", "timed_steps": args.timed_steps}
    record["one_worker"] = launch(args, "default", 2 * args.batch_size, 1)[0]
    print(record["one_worker"], flush=True)
    record["two_workers"] = launch(args, "multi_worker", args.batch_size, 2)
    print(record["two_workers"], flush=True)
    one, two = record["one_worker"], record["two_workers"]
    slowest = max(worker["step_seconds"] for worker in two)
    record["summary"] = {"one_worker_examples_per_s": one["examples_per_s"],
                         "two_workers_examples_per_s": two[0]["global_batch"] / slowest,
                         "speedup": one["step_seconds"] / slowest,
                         "all_reduce_seconds": max(worker["all_reduce_seconds"] for worker in two),
                         "step_seconds_difference": slowest - one["step_seconds"]}
    summary = record["summary"]
    two_peaks = " / ".join(f"{worker['peak_mb']:,.0f}" for worker in two)
    lines = [f"# One worker vs two local workers, {record['started']}", "",
             f"{record['machine']}; lesson 6's step on real comments of the shipped sample, {MAX_LENGTH} tokens, fixed padding, "
             f"global batch {one['global_batch']}, {args.timed_steps} timed steps after {args.warmup_steps} warm-up"
             + (f"; {args.note}" if args.note else ""), "",
             "| configuration | rows per step (per worker) | s per step | examples/s | peak MB per worker |",
             "| --- | ---: | ---: | ---: | ---: |",
             f"| one worker (default strategy) | {one['global_batch']} ({one['global_batch']}) | "
             f"{one['step_seconds']:.2f} | {one['examples_per_s']:.1f} | {one['peak_mb']:,.0f} |",
             f"| two local workers (MultiWorkerMirroredStrategy) | {two[0]['global_batch']} ({args.batch_size}) | "
             f"{slowest:.2f} | {summary['two_workers_examples_per_s']:.1f} | "
             f"{two_peaks} |", "",
             f"Speed-up {summary['speedup']:.2f}x (step time difference {summary['step_seconds_difference']:+.2f} s); "
             f"an all-reduce of the gradients alone ({two[0]['gradient_mb']:.0f} MB, float32) takes "
             f"{summary['all_reduce_seconds']:.2f} s."]
    save_record("distribute", record, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
