"""toxhelpers finetune --engine ray: lesson 11 on workers Ray Train starts, against one process.

The agreement test runs lesson 11 itself (papermill) as 2 local CPU workers under Ray's
``TensorflowTrainer``, batch 4 each, and compares it with the one-process reference of the
tf.distribute tests (``distributed_steps.py``, batch 8: the ``one_process`` fixture, shared).
Lesson 11's inputs are made by hand for what it reads (lessons 1-6 would take minutes), so that
it trains what ``distributed_steps.py`` trains: its 48 synthetic comments (every global batch
full), the bundled encoder and a phase-1 head without dropout, its seed, learning rate and
warm-up. The runs then see the same rows per step and may differ only by the order of float32
sums: test_distribute.py's tolerance applies. About 95 s on an idle 2-core machine (Ray starts a
local cluster, each worker a kernel). Needs the ``ray`` extra, which a learner's default install
leaves out (``TOXHELPERS_EXTRAS=dev,contextual,kerashub,ray ./dev setup``): skipped without it,
except in CI, which installs it and sets ``TOXHELPERS_REQUIRE_RAY=1`` so a missing Ray fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from distributed_steps import AGREEMENT, SEED, agreement, training_rows
from toxhelpers.run.errors import UsageError
from toxhelpers.run.finetune import check_engine, parse_arguments

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def engine_arguments(*extra: str):
    args = parse_arguments(["--artifacts-dir", "x", *extra])
    check_engine(args)
    return args


@pytest.mark.parametrize("extra, message", [
    (["--engine", "ray"], "--engine ray needs --workers N"),
    (["--engine", "ray", "--workers", "0"], "--engine ray needs --workers N"),
    (["--workers", "2"], "--workers goes with --engine ray"),
    (["--engine", "ray", "--workers", "2", "--strategy", "mirrored"], "--strategy multi_worker, got mirrored"),
])
def test_engine_options_are_checked(extra, message):
    with pytest.raises(UsageError, match=message):
        engine_arguments(*extra)


def test_ray_workers_run_multi_worker(ray_train):
    assert engine_arguments("--engine", "ray", "--workers", "2").strategy == "multi_worker"
    assert engine_arguments().strategy == "default" and engine_arguments().engine == "process"


def lesson_11_inputs(folder: Path) -> Path:
    """What lesson 11 reads from lessons 1-6, for the 48 comments of distributed_steps.py."""
    from toxhelpers import model, pretrained, tokenization, training

    checkpoint = pretrained.resolve_checkpoint(pretrained.BUNDLED, announce=False)
    encoded, labels = training_rows(pretrained.load_tokenizer(checkpoint))
    ids = [f"comment-{index}" for index in range(len(labels))]
    for split in ("train", "validation"):  # validation: the same rows, scored after training
        tokenization.save_encoded(folder, split, encoded, labels, ids)
    tokenization.record_checkpoint(folder, checkpoint)
    training.seed_everything(SEED)
    hidden = pretrained.encoder_config(checkpoint).hidden_size
    spec = model.ClassifierSpec(pooling="cls", head_sizes=[32], head_dropout=0.0, encoder_dropout=0.0,
                                attention_dropout=0.0, max_length=32, training_set="unbalanced",
                                checkpoint=checkpoint.describe())
    model.save_head(model.build_head(hidden, [32], dropout=0.0, seed=SEED), spec, folder, "phase1")
    # lesson 11 prints lesson 6's validation ROC-AUC beside its own; lesson 6 did not run here
    model.save_finetuning_metrics(folder, {"validation": {"validation @ 0.5": {"roc_auc": float("nan")}}})
    return folder


def test_two_ray_workers_train_lesson_11_like_one_process_with_twice_their_batch(ray_train, one_process, tmp_path):
    from toxhelpers import model

    artifacts = lesson_11_inputs(tmp_path / "artifacts")
    out = tmp_path / "finetune"
    # a short temporary folder of its own: Ray's sockets live there (a path length limit), and so
    # do the other worker's scratch folders, which must be gone at the end
    scratch = Path(tempfile.mkdtemp(prefix="thr-", dir="/tmp"))
    command = [sys.executable, "-m", "toxhelpers", "finetune", "--artifacts-dir", str(artifacts),
               "--out", str(out / "11_scaling_out.ipynb"), "--engine", "ray", "--workers", "2",
               "-p", "batch_size=4", "-p", "scaling_rows=0", "-p", f"seed={SEED}", "-p", "learning_rate=1e-4",
               "-p", "warmup_fraction=0.25"]
    environ = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    try:
        ran = subprocess.run(command, env={**environ, "PYTHONPATH": str(PROJECT_ROOT), "TMPDIR": str(scratch)},
                             cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1200)
        assert ran.returncode == 0, (ran.stdout + ran.stderr)[-5000:]
        leftovers = sorted(path.name for path in scratch.iterdir() if path.name.startswith("toxhelpers-worker-"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    classifier, _, _ = model.load_classifier(model.scaled_path(artifacts))
    ray_workers = {"weights": np.concatenate([np.ravel(weight) for weight in classifier.get_weights()]),
                   "probabilities": model.load_predictions(artifacts, "validation", stage="scaled")["probability"].to_numpy()}
    difference = agreement(ray_workers, one_process)
    print("2 Ray workers (lesson 11) vs one process:", difference)
    assert max(difference.values()) < AGREEMENT, difference
    record = json.loads((artifacts / "metrics" / "scaling.json").read_text())["metrics"]
    assert record["scaling.replicas"] == 2 and record["scaling.global_batch"] == 8 and record["scaling.steps"] == 6
    assert sorted(path.name for path in out.iterdir()) == ["11_scaling_out.ipynb", "ray"]  # the chief's notebook
    assert leftovers == []  # the other worker's scratch folder was removed
