"""Does a fine-tuning process's memory creep up over a long fit, and what makes it? (issue 23:
lesson 6 at Kaggle's size peaked at 3,025 MB on one machine after a 4,506-step fit in one process,
2,553 MB on another whose fit was split over five processes.)

Not a test: nothing here passes or fails. Each variant runs in a fresh process: lesson 6's
classifier on the bundled encoder (``benchmark_records.bundled_classifier``) trained by ``fit`` on
one batch shape (8 x 128 tokens, lesson 6's cap of 1,024 tokens a batch) for ``--steps`` steps of
one epoch, with lesson 6's checkpoint (``checkpointing.TrainingCheckpoint``, every 5 steps) or
without it, and optionally with glibc's malloc limited to two arenas (``MALLOC_ARENA_MAX=2``: by
default glibc keeps up to 8 per core, and memory freed in one arena is not reused by another).
It reports resident memory every 50 steps and the process's peak.

    .venv/bin/python benchmarks/fit_memory_creep.py                    # the three variants, 250 steps
    .venv/bin/python benchmarks/fit_memory_creep.py --steps 500 --variants plain arena2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from benchmark_records import bundled_classifier, machine, random_batch, save_record

VARIANTS = {  # name: (checkpoint every N steps (0: no callback), extra environment)
    "plain": (0, {}),
    "checkpoint": (5, {}),
    "arena2": (0, {"MALLOC_ARENA_MAX": "2"}),
}
ROWS, WIDTH, EVERY = 8, 128, 50


def measure(checkpoint_every: int, steps: int) -> dict:
    """In this process: resident MB every ``EVERY`` steps of one ``fit``, and the peak."""
    import numpy as np

    import toxhelpers  # noqa: F401  (Keras 2 before TensorFlow)
    from toxhelpers import batches, checkpointing, recording
    from toxhelpers.tf_setup import tf_keras

    from step_memory import resident_mb

    classifier = bundled_classifier()
    inputs, labels = random_batch(np.random.default_rng(0), ROWS * steps, WIDTH)
    data = batches.training_dataset(inputs, labels[:, 0], ROWS, "fixed", seed=0)
    resident = {"loaded": resident_mb()}

    class Trace(tf_keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if (batch + 1) % EVERY == 0:
                resident[str(batch + 1)] = resident_mb()

    callbacks = [Trace()]
    if checkpoint_every:
        callbacks.append(checkpointing.TrainingCheckpoint(tempfile.mkdtemp(), "finetuning", data, every=checkpoint_every))
    classifier.fit(data, epochs=1, verbose=0, callbacks=callbacks)
    return {"resident_mb": resident, "peak_memory_mb": recording.peak_memory_mb()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(args.child, args.steps)))
        return 0
    runs = {}
    for name in args.variants:
        every, environment = VARIANTS[name]
        done = subprocess.run([sys.executable, __file__, "--child", str(every), "--steps", str(args.steps)],
                              capture_output=True, text=True, check=True, env={**os.environ, **environment})
        runs[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{name}: {runs[name]}", flush=True)
    points = list(next(iter(runs.values()))["resident_mb"])
    lines = ["# Resident memory over one long fit, by variant", "",
             f"Machine: {machine()}. Lesson 6's classifier on the bundled encoder, one fresh process per variant, "
             f"{args.steps} steps of {ROWS} x {WIDTH} tokens in one epoch.", "",
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
