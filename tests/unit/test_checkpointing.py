"""Resuming a fit (toxhelpers.checkpointing, and toxhelpers.keras3's for Keras 3): in-process tests
on a tiny model (an embedding, dropout, a dense unit: seconds) on tf-keras for the rules, and on
Keras 3; then separate processes (resumable_fit.py) stopped by SIGINT and by SIGKILL in the middle
of their fit, rerun, and compared with a fit without the checkpoint: the tiny models in the default
suite; the bundled encoder (tf-keras, lesson 6) and lesson 12's wiring on a one-layer random KerasHub
BERT in the slow tier."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from toxhelpers import checkpointing, keras3, training

# A resumed fit is the same computation in another process: measured identical (0.0); a rerun
# from step 0, or a shuffle one epoch off, moves the weights by far more than this.
RESUME_TOLERANCE = 1e-6


class StopAfter(Exception):
    """Stands in for an interrupt in the in-process tests."""


needs_keras_hub = pytest.mark.skipif(sys.version_info < keras3.KERAS_HUB_PYTHON,
                                     reason="keras-hub 0.32.0 needs Python 3.11 (lesson 12 is skipped on 3.10)")
KINDS = ["tiny", "keras3"]  # the tiny model on tf-keras (lesson 6's fit), on Keras 3 (lesson 12's)


def tiny_training(artifacts, every: int, stop_after: int | None = None, seed: int = 3, epochs: int = 3,
                  kind: str = "tiny"):
    """A tiny model (``tiny``: on tf-keras, ``keras3``: the same on Keras 3) fitted with its lesson's
    callbacks and checkpoint (``every=0``: without the checkpoint callback, the reference);
    ``stop_after``: raise after that many steps, as an interrupt would."""
    from resumable_fit import fit_kit, keras3_model, tiny_model

    keras, checkpoint_class, early_stopping = fit_kit(kind)

    class Stop(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if stop_after is not None and int(np.asarray(self.model.optimizer.iterations)) >= stop_after:
                raise StopAfter

    net, data, steps, encoded, labels = (keras3_model if kind == "keras3" else tiny_model)(seed, epochs)
    validation, log = training.ValidationScores(encoded, labels), training.StepLog()
    checkpoint = checkpoint_class(artifacts, "finetuning", data, every=every) if every else None
    try:
        fit = net.fit(data, epochs=epochs, steps_per_epoch=steps, verbose=0,
                      callbacks=[validation, early_stopping(5), log, Stop()] + ([checkpoint] if every else []))
    except StopAfter:
        return None
    return {"weights": net.get_weights(), "history": training.history_frame(fit), "steps": log.frame(),
            "checkpoint": checkpoint, "probabilities": validation.probabilities}


def assert_same_training(got: dict, want: dict) -> None:
    for mine, theirs in zip(got["weights"], want["weights"]):
        np.testing.assert_array_equal(mine, theirs)
    pd.testing.assert_frame_equal(got["history"], want["history"])
    pd.testing.assert_frame_equal(got["steps"], want["steps"])
    assert got["probabilities"].keys() == want["probabilities"].keys()
    for epoch in want["probabilities"]:
        np.testing.assert_array_equal(got["probabilities"][epoch], want["probabilities"][epoch])


@pytest.fixture(scope="module", params=KINDS)
def never_saved(tmp_path_factory, request) -> dict:
    """A tiny fit without the checkpoint callback: what every checkpointed fit of its kind must equal."""
    return {**tiny_training(tmp_path_factory.mktemp("never_saved"), every=0, kind=request.param), "kind": request.param}


# 5 steps an epoch, saved after steps 2 and 4 of each and as each later epoch begins; the stop
# comes before that step's save. Stopped after step 3 (resumes epoch 1 after its step 2), 7
# (resumes epoch 2 at its start) and 9 (resumes epoch 2 after its step 2)
@pytest.mark.parametrize("stop_after", [3, 7, 9])
def test_a_fit_stopped_and_rerun_ends_where_an_unstopped_one_does(tmp_path, stop_after, never_saved):
    kind = never_saved["kind"]
    assert tiny_training(tmp_path / "run", every=2, stop_after=stop_after, kind=kind) is None
    assert (tmp_path / "run" / ".checkpoints" / "finetuning" / "latest.json").is_file()
    rerun = tiny_training(tmp_path / "run", every=2, kind=kind)
    position = rerun["checkpoint"].resumed_from
    steps = len(never_saved["steps"]) // 3
    assert position is not None and stop_after - 2 <= steps * position["epoch"] + position["step"] <= stop_after
    # the callback changes no number (its dropout draws Keras's masks), and the rerun goes on exactly
    assert_same_training(rerun, never_saved)
    latest = json.loads((tmp_path / "run" / ".checkpoints" / "finetuning" / "latest.json").read_text())
    assert latest["position"]["completed"]  # the fit's end, kept until the lesson records


def test_a_fit_that_completed_is_restored_by_a_rerun_not_trained_again(tmp_path, never_saved):
    """A lesson interrupted after its fit (scoring the test set) and run again: the fit restores
    its end and trains nothing, with the model, history, step log and scores of the first run."""
    kind = never_saved["kind"]
    first = tiny_training(tmp_path, every=2, kind=kind)
    rerun = tiny_training(tmp_path, every=2, kind=kind)
    assert not first["checkpoint"].completed_before and rerun["checkpoint"].completed_before
    assert_same_training(rerun, never_saved)  # trained again from the restored end, the weights would move
    assert first["checkpoint"].fit_seconds <= rerun["checkpoint"].fit_seconds  # the first run's time, recorded
    from toxhelpers import artifacts

    artifacts.remove_checkpoint(tmp_path, "finetuning")
    assert not (tmp_path / ".checkpoints" / "finetuning").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_a_resumed_fit_counts_the_time_the_interrupted_run_spent_up_to_its_save(tmp_path, kind):
    """The lessons record ``checkpoint.fit_seconds`` as the fit's time: after a resume it must be
    the whole fit's, not the last run's (lesson 6 at Kaggle's size ran in five invocations)."""
    started = time.perf_counter()
    assert tiny_training(tmp_path, every=2, stop_after=7, kind=kind) is None  # saved after step 6
    first_wall = time.perf_counter() - started
    latest_path = tmp_path / ".checkpoints" / "finetuning" / "latest.json"
    latest = json.loads(latest_path.read_text())
    assert 0 < latest["fit_seconds"] <= first_wall
    latest["fit_seconds"] = 1000.0  # as if the interrupted run had taken 1,000 s to reach its save
    latest_path.write_text(json.dumps(latest))
    started = time.perf_counter()
    rerun = tiny_training(tmp_path, every=2, kind=kind)
    assert rerun["checkpoint"].resumed_from is not None
    assert 1000.0 < rerun["checkpoint"].fit_seconds <= 1000.0 + time.perf_counter() - started


def test_a_checkpoint_of_other_batches_is_not_resumed_from(tmp_path, capsys):
    assert tiny_training(tmp_path, every=2, stop_after=4) is None
    other_seed = tiny_training(tmp_path, every=2, seed=4)
    assert other_seed["checkpoint"].resumed_from is None
    assert "saved by a fit with other batches, starting weights; training from the first step" in capsys.readouterr().out


def test_a_fit_that_saves_but_is_never_stopped_computes_what_one_without_the_callback_does(tmp_path, never_saved):
    """The default run (checkpoint_every=50, no interrupt) must keep the numbers a fit without
    checkpoints had, bit for bit: the dropout masks included."""
    assert_same_training(tiny_training(tmp_path / "saving", every=2, kind=never_saved["kind"]), never_saved)


def test_the_checkpoint_must_come_last_and_get_a_dataset_it_can_replay(tmp_path):
    from resumable_fit import tiny_model
    from toxhelpers.tf_setup import tf_keras

    net, data, steps, _, _ = tiny_model()
    checkpoint = checkpointing.TrainingCheckpoint(tmp_path, "finetuning", data, every=2)
    with pytest.raises(ValueError, match="must come last in fit's callbacks"):
        net.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[checkpoint, training.StepLog()])
    with pytest.raises(ValueError, match="expected a dataset made by batches.training_dataset"):
        checkpointing.TrainingCheckpoint(tmp_path, "finetuning", data.take(2), every=2)
    with pytest.raises(ValueError, match="every must be a whole number of steps >= 0"):
        checkpointing.TrainingCheckpoint(tmp_path, "finetuning", data, every=-1)
    assert isinstance(checkpoint, tf_keras.callbacks.Callback)


def test_a_keras3_fit_it_could_not_resume_is_refused_before_the_first_step(tmp_path):
    from resumable_fit import keras3_model

    net, data, steps, _, _ = keras3_model()
    checkpoint = keras3.TrainingCheckpoint(tmp_path, "finetuning", data, every=2)
    with pytest.raises(ValueError, match="another dataset than its TrainingCheckpoint"):
        net.fit(data.take(steps), epochs=1, verbose=0, callbacks=[checkpoint])
    with pytest.raises(ValueError, match=f"its dataset's whole length \\({steps} batches.*steps_per_epoch=2"):
        net.fit(data, epochs=1, steps_per_epoch=2, verbose=0, callbacks=[checkpoint])
    with pytest.raises(ValueError, match="must come last in fit's callbacks"):
        net.fit(data, epochs=1, verbose=0, callbacks=[checkpoint, training.StepLog()])
    assert int(np.asarray(net.optimizer.iterations)) == 0  # refused before any step


RESUMABLE_FIT = Path(__file__).with_name("resumable_fit.py")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def start_fit(tmp: Path, kind: str, name: str, every: int, pause: float = 0.0) -> subprocess.Popen:
    """resumable_fit.py (``--model kind``) writing its checkpoints under ``tmp/<name>`` and its
    result to ``<name>.npz``."""
    from toxhelpers import distribute

    env = {**distribute.local_worker_environment(), "PYTHONPATH": str(PROJECT_ROOT)}
    log = open(tmp / f"{name}.log", "a")
    return subprocess.Popen([sys.executable, str(RESUMABLE_FIT), "--model", kind, "--artifacts", str(tmp / name),
                             "--every", str(every), "--pause", str(pause), "--result", str(tmp / f"{name}.npz")],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=RESUMABLE_FIT.parent)


def saved_position(tmp: Path, name: str) -> dict | None:
    try:
        return json.loads((tmp / name / ".checkpoints" / "finetuning" / "latest.json").read_text())["position"]
    except (OSError, ValueError, KeyError):
        return None


def fit_result(tmp: Path, name: str, process: subprocess.Popen) -> dict:
    assert process.wait(timeout=600) == 0, (tmp / f"{name}.log").read_text()[-3000:]
    with np.load(tmp / f"{name}.npz") as saved:
        return {key: saved[key] for key in saved.files}


# (model, what stops it): the tiny models (tf-keras, Keras 3), killed by SIGKILL in epoch 2, in the
# default suite (three processes each, about 25 s on 2 cores); the bundled encoder and the KerasHub
# BERT, stopped by SIGINT in epoch 1 and killed by SIGKILL in epoch 2, in the slow tier
SIGNALS = {"tiny": [("sigkill", signal.SIGKILL, 8, 1)],
           "keras3": [("sigkill", signal.SIGKILL, 8, 1)],
           "encoder": [("sigint", signal.SIGINT, 2, 0), ("sigkill", signal.SIGKILL, 8, 1)],
           "kerashub": [("sigint", signal.SIGINT, 2, 0), ("sigkill", signal.SIGKILL, 8, 1)]}
PAUSE = {"tiny": 0.5, "keras3": 0.5, "kerashub": 0.5, "encoder": 1.0}  # seconds after each step of a process to be stopped


@pytest.mark.parametrize("kind", KINDS + [pytest.param("encoder", marks=pytest.mark.slow),
                                          pytest.param("kerashub", marks=[pytest.mark.slow, needs_keras_hub])])
def test_a_fit_killed_mid_fit_resumes_and_ends_with_the_model_never_stopped(tmp_path, kind):
    """A fit saved every 2 steps, in a process stopped by a real signal once a save of at least
    that many steps is on disk, then rerun into the same folder, ends with the weights,
    validation probabilities, history and step log of a process without the checkpoint callback
    (measured: identical, max |difference| 0.0). The stopped processes and the reference run side
    by side, then the reruns. ``tiny``: resumable_fit.py's tiny model; ``encoder``: the bundled
    encoder cut to one layer, dropout on."""
    from resumable_fit import STEPS

    processes = {"never_saved": start_fit(tmp_path, kind, "never_saved", every=0)}
    processes.update({name: start_fit(tmp_path, kind, name, every=2, pause=PAUSE[kind]) for name, *_ in SIGNALS[kind]})
    stopped = {}
    for name, signal_number, iterations, epoch in SIGNALS[kind]:
        deadline = time.monotonic() + 600
        while (saved_position(tmp_path, name) or {}).get("iterations", 0) < iterations:
            assert processes[name].poll() is None, (tmp_path / f"{name}.log").read_text()[-3000:]
            assert time.monotonic() < deadline, f"{name}: no checkpoint after {iterations} steps in 10 minutes"
            time.sleep(0.1)
        processes[name].send_signal(signal_number)
        assert processes[name].wait(timeout=120) != 0  # stopped mid-fit, not finished
        assert not (tmp_path / f"{name}.npz").exists()
        stopped[name] = saved_position(tmp_path, name)
        assert stopped[name]["epoch"] == epoch
    reruns = {name: start_fit(tmp_path, kind, name, every=2) for name in stopped}
    reference = fit_result(tmp_path, "never_saved", processes["never_saved"])
    for name, process in reruns.items():
        result = fit_result(tmp_path, name, process)
        position = stopped[name]
        assert result["resumed_from"].tolist() == [position["epoch"], position["step"]]
        assert position["epoch"] * STEPS[kind] + position["step"] > 0  # not from step 0
        assert bool(result["end_saved"])  # kept for a rerun of the lesson's later cells
        for key in ("weights", "probabilities", "step_log"):
            difference = float(np.abs(result[key] - reference[key]).max())
            print(name, key, "max |difference|", difference)
            assert difference <= RESUME_TOLERANCE, (name, key, difference)
        assert result["history_columns"].tolist() == reference["history_columns"].tolist()
        assert float(np.abs(result["history"] - reference["history"]).max()) <= RESUME_TOLERANCE
