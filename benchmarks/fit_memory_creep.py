"""Does a fine-tuning process's memory creep up over a long fit, and what makes it? (issue 23:
lesson 6 at Kaggle's size peaked at 3,025 MB on one machine after a 4,506-step fit in one process,
2,553 MB on another whose fit was split over five processes.)

Not a test: nothing here passes or fails. Each variant runs in a fresh process: lesson 6's
classifier on the bundled encoder (``benchmark_records.bundled_classifier``) trained by ``fit`` for
``--steps`` steps of one epoch, on one batch shape (8 x 128 tokens, lesson 6's cap of 1,024 tokens a
batch) or, as lesson 6 trains, on length-bucketed batches (``bucketed``: batches of 32 rows padded
to their bucket's width, at most 1,024 tokens, so eight shapes from 32 x 16 to 8 x 128 in a random
order; lengths drawn log-normally around 50 tokens, capped at 128, like comments), with lesson 6's
checkpoint (``checkpointing.TrainingCheckpoint``, every 5 steps) or without it, and optionally
with glibc's malloc limited to two arenas (``MALLOC_ARENA_MAX=2``: by default glibc keeps up to 8
per core, and memory freed in one arena is not reused by another; tensors of changing sizes are
what fragments them) or asked to hand its free pages back every 50 steps (``malloc_trim(0)``,
``bucketed-trim``). It reports resident memory ten times over the fit and the process's peak.

    .venv/bin/python benchmarks/fit_memory_creep.py                    # every variant, 250 steps
    .venv/bin/python benchmarks/fit_memory_creep.py --steps 1000 --variants bucketed bucketed-arena2
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from benchmark_records import bundled_classifier, machine, random_batch, save_record

VARIANTS = {  # name: (checkpoint every N steps (0: no callback), padding, extra environment, malloc_trim every N steps)
    "plain": (0, "fixed", {}, 0),
    "checkpoint": (5, "fixed", {}, 0),
    "arena2": (0, "fixed", {"MALLOC_ARENA_MAX": "2"}, 0),
    "bucketed": (0, "bucketed", {}, 0),
    "bucketed-arena2": (0, "bucketed", {"MALLOC_ARENA_MAX": "2"}, 0),
    "bucketed-trim": (0, "bucketed", {}, 50),
}
ROWS, WIDTH, BUCKETED_ROWS, TOKENS_PER_BATCH = 8, 128, 32, 1024


def training_rows(padding: str, steps: int) -> tuple[dict, Any]:
    """Enough random rows for ``steps`` batches: every position real (``fixed``), or of comment-like
    lengths (``bucketed``), right-padded as lesson 3 writes them."""
    import numpy as np

    rng = np.random.default_rng(0)
    if padding == "fixed":
        return random_batch(rng, ROWS * steps, WIDTH)
    inputs, labels = random_batch(rng, BUCKETED_ROWS * steps, WIDTH)
    lengths = np.clip(rng.lognormal(np.log(50), 0.9, len(labels)), 4, WIDTH).astype(int)
    mask = (np.arange(WIDTH) < lengths[:, None]).astype("int32")
    return {"input_ids": inputs["input_ids"] * mask, "attention_mask": mask}, labels


def measure(variant: str, steps: int) -> dict:
    """In this process: resident MB ten times over one ``fit`` of ``steps`` steps, and the peak."""
    import toxhelpers  # noqa: F401  (Keras 2 before TensorFlow)
    from toxhelpers import batches, checkpointing, recording
    from toxhelpers.tf_setup import tf_keras

    from step_memory import resident_mb

    checkpoint_every, padding, _, trim_every = VARIANTS[variant]
    every = max(1, steps // 10)
    classifier = bundled_classifier()
    inputs, labels = training_rows(padding, steps)
    data = (batches.training_dataset(inputs, labels[:, 0], ROWS, "fixed", seed=0) if padding == "fixed" else
            batches.training_dataset(inputs, labels[:, 0], BUCKETED_ROWS, "bucketed", seed=0,
                                     tokens_per_batch=TOKENS_PER_BATCH))
    resident = {"loaded": resident_mb()}
    libc = ctypes.CDLL("libc.so.6") if trim_every else None

    class Trace(tf_keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if libc is not None and (batch + 1) % trim_every == 0:
                libc.malloc_trim(0)
            if (batch + 1) % every == 0:
                resident[str(batch + 1)] = resident_mb()

    callbacks = [Trace()]
    if checkpoint_every:
        callbacks.append(checkpointing.TrainingCheckpoint(tempfile.mkdtemp(), "finetuning", data, every=checkpoint_every))
    classifier.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=callbacks)
    return {"resident_mb": resident, "peak_memory_mb": recording.peak_memory_mb()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--child", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(args.child, args.steps)))
        return 0
    runs = {}
    for name in args.variants:
        environment = VARIANTS[name][2]
        done = subprocess.run([sys.executable, __file__, "--child", name, "--steps", str(args.steps)],
                              capture_output=True, text=True, check=True, env={**os.environ, **environment})
        runs[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{name}: {runs[name]}", flush=True)
    points = list(dict.fromkeys(point for run in runs.values() for point in run["resident_mb"]))
    lines = ["# Resident memory over one long fit, by variant", "",
             f"Machine: {machine()}. Lesson 6's classifier on the bundled encoder, one fresh process per variant, "
             f"{args.steps} steps in one epoch: {ROWS} x {WIDTH} tokens (fixed), or bucketed batches of "
             f"{BUCKETED_ROWS} rows and at most {TOKENS_PER_BATCH} tokens (bucketed variants).", "",
             f"| variant | {' | '.join(f'after {point}' if point != 'loaded' else 'loaded' for point in points)} | peak MB |",
             "| --- |" + " ---: |" * (len(points) + 1)]
    for name, run in runs.items():
        values = " | ".join(f"{run['resident_mb'].get(point, float('nan')):,.0f}" for point in points)
        lines.append(f"| {name} | {values} | {run['peak_memory_mb']:,.0f} |")
    print("\n".join(lines))
    stem = save_record("fit_memory_creep", {"machine": machine(), "steps": args.steps, "variants": VARIANTS,
                                            "runs": runs}, lines)
    print(f"record: {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
