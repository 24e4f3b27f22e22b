"""The walkthrough, headless: every lesson notebook runs through ``toxhelpers run`` (papermill).

One ``smoke`` run of all notebooks (on the shared Jigsaw sample, or the small sample shipped with the package
where the shared one is absent: see conftest.py) is made per test session and
shared by every test here; each notebook then gets its own test, so a failing cell fails the
test named after its notebook, with the cell's error text. A second, 01-only run checks that the
same parameters and seed give identical splits. The tests that need no walkthrough (Ctrl-C and
resume, bad data) are in test_interrupt_and_bad_data.py, so the suite's other process takes them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from smoke import smoke_run
from toxhelpers.artifacts import read_json
from toxhelpers.run.compare import compare_metrics
from toxhelpers.run.notebooks import DEFAULT_NOTEBOOKS_DIR, NOTEBOOK_PATTERN
from toxhelpers.run.summary import RunResult

pytestmark = pytest.mark.notebooks

NOTEBOOKS = sorted(DEFAULT_NOTEBOOKS_DIR.glob(NOTEBOOK_PATTERN))


@pytest.fixture(scope="session")
def walkthrough(walkthrough_data: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """The whole walkthrough, smoke profile: run once, checked per notebook. Once per test session:
    under pytest-xdist the workers' temporary folders share a parent, where the first worker to make
    it signs; a second one means the tests of this file were spread over workers (the suite's
    distribution changed) and the machine would run the walkthrough twice."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        signed = tmp_path_factory.getbasetemp().parent / "walkthrough-made-by"
        if signed.exists():
            pytest.fail(f"the walkthrough was already made by xdist worker {signed.read_text()}, now again by "
                        f"{worker}: keep this file's tests in one worker (pyproject.toml's --dist)", pytrace=False)
        signed.write_text(worker)
    return smoke_run(tmp_path_factory.mktemp("smoke") / "report", walkthrough_data)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_and_records(walkthrough: RunResult, notebook: Path) -> None:
    status = walkthrough.status(notebook.name)
    if status.failure is not None:
        failure = status.failure
        pytest.fail(f"{failure.notebook} failed in {failure.cell}: {failure.source_line}\n"
                    f"{failure.error}\n\n{failure.traceback[-3000:]}", pytrace=False)
    if status.status == "skipped":  # a lesson this Python cannot run (lesson 12 on Python 3.10)
        pytest.skip(f"{notebook.name}: {status.reason}")
    if status.status != "ran":
        before = walkthrough.failure.notebook if walkthrough.failure else "an earlier notebook"
        pytest.fail(f"{notebook.name} did not run ({status.status}): {before} failed before it", pytrace=False)
    assert (walkthrough.folder.html(notebook)).is_file()
    assert status.sections, f"{notebook.name} wrote no record: make a toxhelpers.recording.Recorder"
    for section in status.sections:
        record = read_json(walkthrough.folder.artifacts / "metrics" / f"{section}.json")
        assert record["metrics"], f"{notebook.name}: its record {section}.json holds no metrics"


def test_lesson_12_repeats_lesson_6_on_keras_3_and_its_checks_hold(walkthrough: RunResult) -> None:
    """Lesson 12 (Keras 3 + KerasHub) prints its checks as sentences; they are held to account here."""
    status = walkthrough.status("12_keras_hub")
    if status.status == "skipped":
        pytest.skip(status.reason)
    metrics = walkthrough.metrics
    assert metrics["keras_hub.head_max_abs_difference"] < 1e-6  # lesson 4's head, read by Keras 3
    assert metrics["keras_hub.focal_loss_max_difference"] < 1e-5  # Keras 3's focal loss is lesson 4's
    assert metrics["keras_hub.schedule_max_difference"] < 1e-9  # and its schedule lesson 6's, step by step
    assert metrics["keras_hub.reload_max_abs_difference"] < 1e-6  # the .keras file reloads unchanged
    assert metrics["keras_hub.tokenizer_same_ids_share_strip_accents"] > 0.9
    assert metrics["keras_hub.tokenizer_rows_checked"] == (metrics["data.split_counts.validation.non_toxic"]
                                                          + metrics["data.split_counts.validation.toxic"])
    # the same recipe on the same rows: lesson 6's training rows, epochs and numbers as it recorded them
    assert metrics["keras_hub.like_for_like"] is True
    assert metrics["keras_hub.epochs_run"] == metrics["finetuning.epochs_run"]
    assert metrics["keras_hub.phase1.epochs_run"] == metrics["training.epochs_run"]
    assert metrics["keras_hub.lesson6.validation_roc_auc"] == metrics["finetuning.validation.at_0.5.roc_auc"]
    assert metrics["keras_hub.lesson6.test_roc_auc"] == metrics["finetuning.test.at_0.5.roc_auc"]
    assert metrics["keras_hub.lesson6_agreement.spearman"] > 0  # two models of one recipe rank test alike
    for section in ("keras_hub", "finetuning"):  # the peak memory each kernel reached, beside each other
        assert 500 < read_json(walkthrough.folder.artifacts / "metrics" / f"{section}.json")["peak_memory_mb"] < 8000
    assert read_json(walkthrough.folder.artifacts / "metrics" / "keras_hub.json")["parameters"]["seed"] == 42


def test_lesson_13_serves_lesson_12s_file_by_the_lean_onnx_route(walkthrough: RunResult) -> None:
    """Lesson 13 loads lesson 12's .keras file in a fresh kernel; the ONNX files exported from it give
    the trained model's test probabilities (lesson 12 saved them). Smoke profile: a barely trained
    model on a few hundred rows, so the int8 bound is loose (the full run's bar, 0.002, is
    tests/integration's)."""
    status = walkthrough.status("13_keras_hub_serving")
    if status.status == "skipped":
        pytest.skip(status.reason)
    metrics = walkthrough.metrics
    assert metrics["keras_hub_serving.threshold"] == metrics["keras_hub.threshold"]
    assert metrics["keras_hub_serving.onnx_fp32.max_abs_difference"] < 1e-4  # the lean ONNX route on a Keras 3 model
    assert abs(metrics["keras_hub_serving.onnx_int8.roc_auc_difference"]) < 0.05
    assert metrics["keras_hub_serving.onnx_fp32.roc_auc_reference"] == metrics["keras_hub.test.at_0.5.roc_auc"]
    assert (walkthrough.folder.artifacts / "keras_hub_serving" / "classifier.int8.onnx").is_file()


def test_the_run_report_is_complete(walkthrough: RunResult) -> None:
    root = walkthrough.folder.root
    assert walkthrough.ok and walkthrough.exit_code == 0
    for name in ("summary.md", "metrics.json", "run.json", "parameters.yaml"):
        assert (root / name).is_file()
    assert read_json(root / "run.json")["inputs"], "no data files or weights recorded as inputs"


def test_same_seed_same_splits(walkthrough: RunResult, walkthrough_data: Path, tmp_path: Path) -> None:
    """A second run of 01_data with the same parameters writes byte-for-byte the same splits."""
    first = {key: value for key, value in walkthrough.metrics.items() if key.startswith("data.")}
    assert {"data.split_hash.train", "data.split_hash.validation", "data.split_hash.test"} <= set(first)
    again = smoke_run(tmp_path / "again", walkthrough_data, only=["01"])
    assert again.ok, again.failure
    second = {key: value for key, value in again.metrics.items() if key.startswith("data.")}
    assert {key: second[key] for key in first if "split_hash" in key} == {
        key: first[key] for key in first if "split_hash" in key}
    assert compare_metrics(first, second, tolerance=0.0) == []


def test_lesson_2_grows_only_the_training_split(walkthrough: RunResult) -> None:
    """The walkthrough's lesson 2 (default offline method): balanced classes, new rows made from
    training rows only, validation and test byte-identical to what lesson 1 wrote."""
    from toxhelpers import augment, data
    from toxhelpers.artifacts import frame_hash

    artifacts, metrics = walkthrough.folder.artifacts, walkthrough.metrics
    for split in data.SPLITS:
        assert frame_hash(data.load_split(artifacts, split)) == metrics[f"data.split_hash.{split}"]
    train = data.load_split(artifacts, "train")
    balanced = data.load_split(artifacts, "train", variant="balanced")
    assert (balanced[data.TARGET_COLUMN] == 1).sum() == (balanced[data.TARGET_COLUMN] == 0).sum()
    new = balanced[balanced["augmented"]]
    assert len(new) > 0 and set(new["source_id"]) <= set(train[data.ID_COLUMN])
    assert (new["method"] == augment.DEFAULT_METHOD).all()
    assert metrics["augmentation.rows_added"] == len(new)
    assert metrics["augmentation.balanced_hash"] == frame_hash(balanced)  # the file holds the frame the lesson made
    for method in augment.OFFLINE_METHODS:
        assert metrics[f"augmentation.throughput.{method}_texts_per_s"] > 0
    for split in ("validation", "test"):
        assert metrics[f"augmentation.split_sha256_before.{split}"] == metrics[f"augmentation.split_sha256_after.{split}"]


def test_the_lessons_checks_hold(walkthrough: RunResult) -> None:
    """The checks the lessons print as sentences (no assert in a lesson), asserted here."""
    metrics = walkthrough.metrics
    assert metrics["training.transplant_max_abs_difference"] < 1e-4  # head on features = head on the encoder
    assert metrics["finetuning.phase1_reassembly_max_abs_difference"] < 1e-4  # lesson 6 starts from lesson 5's model
    assert metrics["finetuning.reload_max_abs_difference"] < 1e-5  # the saved model reloads unchanged
    assert metrics["serving.fp32.max_abs_difference"] < 1e-4  # ONNX fp32 gives TensorFlow's answers


@pytest.mark.slow
def test_lesson_11_under_a_strategy_trains_like_one_process(walkthrough: RunResult, tmp_path: Path) -> None:
    """Lesson 11 with strategy="mirrored" (on this CPU one replica: the strategy's scope, the
    per-replica batch and the distributed dataset, the code a GPU machine runs) gives the
    walkthrough's one-process predictions. Slow tier: in the default run, lesson 11 runs under a
    strategy in tests/unit/test_run_ray_engine.py (multi_worker, 2 Ray workers), and two mirrored
    replicas are checked against one process in tests/unit/test_distribute.py."""
    import shutil

    from toxhelpers import model

    out = tmp_path / "mirrored"
    shutil.copytree(walkthrough.folder.root, out)
    result = smoke_run(out, None, {"strategy": "mirrored"}, only=["11"])
    assert result.ok, result.failure
    one_process = model.load_predictions(walkthrough.folder.artifacts, "validation", stage="scaled")["probability"]
    mirrored = model.load_predictions(out / "artifacts", "validation", stage="scaled")["probability"]
    assert len(one_process) > 0 and abs(one_process.to_numpy() - mirrored.to_numpy()).max() < 1e-6


def lessons_with_an_edited_head(folder: Path) -> Path:
    """A copy of the lessons in which lesson 4's build_head cell puts a LayerNormalization before
    each dropout, as a learner would edit it."""
    import shutil

    notebooks = folder / "notebooks"
    shutil.copytree(DEFAULT_NOTEBOOKS_DIR, notebooks)
    lesson_4 = notebooks / "04_model.ipynb"
    content = json.loads(lesson_4.read_text())
    dropout = 'tf_keras.layers.Dropout(dropout, seed=seed + index, name=f"dropout_{index + 1}")]'
    edited = [cell for cell in content["cells"] if dropout in "".join(cell["source"])]
    assert len(edited) == 1, "lesson 4 no longer has the build_head cell this test edits"
    edited[0]["source"] = "".join(edited[0]["source"]).replace(
        dropout, 'tf_keras.layers.LayerNormalization(name=f"norm_{index + 1}"),\n                   ' + dropout)
    lesson_4.write_text(json.dumps(content))
    return notebooks


def head_layers(head_folder: Path) -> list[str]:
    """The layer classes of a head saved by ``model.write_head``."""
    return [layer["class_name"] for layer in json.loads((head_folder / "head.json").read_text())["config"]["layers"]]


def test_a_head_edited_in_lesson_4_is_the_head_lesson_5_trains(walkthrough: RunResult, tmp_path: Path) -> None:
    """One idea, one edit: a LayerNormalization added to lesson 4's build_head cell is the head
    lesson 5 trains and saves. That the later lessons rebuild whatever head lesson 5 saved is held
    by test_the_lessons_checks_hold (lesson 6 starts from lesson 5's model; lesson 8 serves lesson
    6's) and by tests/unit/test_model.py (a head with LayerNormalization is saved and read back);
    the edit carried through lessons 6 and 8 is the slow tier's test below."""
    import shutil

    notebooks = lessons_with_an_edited_head(tmp_path)
    out = tmp_path / "report"
    shutil.copytree(walkthrough.folder.root, out)
    result = smoke_run(out, None, {"time_uncached_batches": 0}, only=["04", "05"], notebooks_dir=notebooks)
    assert result.ok, result.failure
    built = head_layers(out / "artifacts" / "model")
    assert built.count("LayerNormalization") == 2
    assert head_layers(out / "artifacts" / "phase1") == built


@pytest.mark.slow
def test_a_head_edited_in_lesson_4_is_the_head_lessons_5_6_train_and_lesson_8_serves(walkthrough: RunResult,
                                                                                  tmp_path: Path) -> None:
    """The same edit carried through lesson 6's saved model and lesson 8's reloaded classifier
    (slow tier: lessons 4, 5, 6 and 8 again, about 4 minutes on 2 cores)."""
    import shutil

    notebooks = lessons_with_an_edited_head(tmp_path)
    out = tmp_path / "report"
    shutil.copytree(walkthrough.folder.root, out)
    quick = {"time_uncached_batches": 0, "compare_padding_batches": 0, "agreement_rows": 32, "latency_repeats": 1,
             "benchmark_batch_sizes": [1], "long_comment_rows": 0}  # only what this test checks
    result = smoke_run(out, None, quick, only=["04", "05", "06", "08"], notebooks_dir=notebooks)
    assert result.ok, result.failure
    layers = head_layers(out / "artifacts" / "model")
    assert "LayerNormalization" in layers
    assert head_layers(out / "artifacts" / "finetuned" / "model") == layers
    assert ["LayerNormalization" in name for name in result.metrics["serving.head_layers"]].count(True) == 2
    assert result.metrics["serving.fp32.max_abs_difference"] < 1e-4
