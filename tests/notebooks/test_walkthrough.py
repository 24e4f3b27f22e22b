"""The walkthrough, headless: every lesson notebook runs through ``toxhelpers run`` (papermill).

One ``smoke`` run of all notebooks (on the shared Jigsaw sample, or the small sample shipped with the package
where the shared one is absent: see conftest.py) is made per test session and
shared by every test here; each notebook then gets its own test, so a failing cell fails the
test named after its notebook, with the cell's error text. A second, 01-only run checks that the
same parameters and seed give identical splits, and a third is interrupted with SIGINT mid-lesson
and resumed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toxhelpers.artifacts import read_json
from toxhelpers.run.compare import compare_metrics
from toxhelpers.run.notebooks import DEFAULT_NOTEBOOKS_DIR, NOTEBOOK_PATTERN
from toxhelpers.run.orchestrate import RunOptions, run
from toxhelpers.run.summary import RunResult

pytestmark = pytest.mark.notebooks
PROJECT_ROOT = Path(__file__).resolve().parents[2]

NOTEBOOKS = sorted(DEFAULT_NOTEBOOKS_DIR.glob(NOTEBOOK_PATTERN))


def smoke_run(out: Path, data_dir: Path, overrides: dict | None = None, **options) -> RunResult:
    return run(RunOptions(profile="smoke", overrides={"data_dir": str(data_dir), **(overrides or {})}, out=out,
                          quiet=True, **options))


@pytest.fixture(scope="session")
def walkthrough(walkthrough_data: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """The whole walkthrough, smoke profile: run once, checked per notebook."""
    return smoke_run(tmp_path_factory.mktemp("smoke") / "report", walkthrough_data)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_and_records(walkthrough: RunResult, notebook: Path) -> None:
    status = walkthrough.status(notebook.name)
    if status.failure is not None:
        failure = status.failure
        pytest.fail(f"{failure.notebook} failed in {failure.cell}: {failure.source_line}\n"
                    f"{failure.error}\n\n{failure.traceback[-3000:]}", pytrace=False)
    if status.status != "ran":
        before = walkthrough.failure.notebook if walkthrough.failure else "an earlier notebook"
        pytest.fail(f"{notebook.name} did not run ({status.status}): {before} failed before it", pytrace=False)
    assert (walkthrough.folder.html(notebook)).is_file()
    assert status.sections, f"{notebook.name} wrote no record: make a toxhelpers.recording.Recorder"
    for section in status.sections:
        record = read_json(walkthrough.folder.artifacts / "metrics" / f"{section}.json")
        assert record["metrics"], f"{notebook.name}: its record {section}.json holds no metrics"


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


def test_phase1_uncached_path_under_a_strategy_trains_like_one_process(walkthrough: RunResult, walkthrough_data: Path,
                                                                       tmp_path: Path) -> None:
    """Lesson 5's cached_features=False path with strategy="mirrored" (on this CPU one replica: the
    strategy's scope, the per-replica batch and the distributed dataset, the code a GPU machine
    runs) gives the one-process path's phase-1 predictions; two replicas are checked against one
    process in tests/unit/test_distribute.py."""
    import shutil

    from toxhelpers import model

    predictions = {}
    for strategy in ("default", "mirrored"):
        out = tmp_path / strategy
        shutil.copytree(walkthrough.folder.root, out)
        result = smoke_run(out, walkthrough_data, {"cached_features": False, "strategy": strategy}, only=["05"])
        assert result.ok, result.failure
        predictions[strategy] = model.load_predictions(out / "artifacts", "validation", stage="phase1")["probability"].to_numpy()
    assert len(predictions["default"]) > 0
    assert abs(predictions["default"] - predictions["mirrored"]).max() < 1e-6


def child_processes(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (papermill starts each notebook's kernel as one)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        if parent == pid:
            children.append(int(stat.parent.name))
    return children


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds kernel processes through /proc")
def test_ctrl_c_mid_lesson_then_resume(walkthrough_data: Path, tmp_path: Path) -> None:
    """SIGINT while 02 executes: exit status 130, its kernel gone, nothing of 02 trusted; rerun
    into the same folder, 01 is reused and 02 runs again."""
    out, log = tmp_path / "report", tmp_path / "run.log"
    command = [sys.executable, "-m", "toxhelpers", "run", "--profile", "smoke", "--data-dir", str(walkthrough_data),
               "--out", str(out), "--until", "02", "--quiet"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])))
    with open(log, "w") as handle:  # SIGINT at its default: a shell's background job would ignore it
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_for(lambda: "02_augmentation.ipynb ..." in log.read_text() or process.poll() is not None, 300,
                 "02_augmentation to start")
        vectors = out / "artifacts" / "augment"  # 02 exports the word vectors there early, its record only at its end
        wait_for(lambda: any(vectors.glob("*.w2v.bin")) or process.poll() is not None, 120, "02 to write its word vectors")
        time.sleep(1)  # mid-lesson: 02 runs for about 20 s on the smoke profile
        kernels = child_processes(process.pid)
        assert process.poll() is None and kernels, log.read_text()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 130, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in kernels), 30, "the kernel to end")
    assert "Interrupted: partial notebook kept" in log.read_text() and "Traceback" not in log.read_text()
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "interrupted"
    assert {item["name"]: item["status"] for item in record["notebooks"][:2]} == {
        "01_data.ipynb": "ran", "02_augmentation.ipynb": "interrupted"}
    assert not (out / ".state" / "02_augmentation.json").exists()  # no manifest: nothing of 02 trusted
    owners = json.loads((out / ".state" / "owners.json").read_text())
    assert "02_augmentation.ipynb" in owners.values()  # what it wrote is known to be its, not 01's

    rerun = smoke_run(out, walkthrough_data, stop="02")
    assert rerun.ok, rerun.failure
    assert rerun.status("01_data").status == "reused"
    assert rerun.status("02_augmentation").status == "ran"
    assert "no completed run" in rerun.status("02_augmentation").reason


def test_lesson_01_names_the_file_of_a_one_class_test_set(tmp_path: Path) -> None:
    """Lesson 01 stops on a test set without both classes (it used to go on to NaN scores), and
    the message names the labels file."""
    import shutil

    import pandas as pd

    folder = tmp_path / "one-class"
    shutil.copytree(PROJECT_ROOT / "tests" / "synthetic_data", folder)
    labels = pd.read_csv(folder / "test_labels.csv")
    labels.loc[labels["toxic"] != -1, "toxic"] = 1
    labels.to_csv(folder / "test_labels.csv", index=False)
    result = smoke_run(tmp_path / "report", folder, only=["01"])
    assert result.failure is not None and result.failure.notebook == "01_data.ipynb"
    assert result.failure.error == (f"ValueError: {folder / 'test_labels.csv'}: class 0 (non-toxic) has 0 row(s); "
                                    "a model can only learn, and be scored, on both classes.")
