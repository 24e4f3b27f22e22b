"""Lessons stopped half-way and lessons given bad data, headless: each makes its own short smoke
run, with no need of the walkthrough (test_walkthrough.py), so pytest-xdist can run them in the
other process while the walkthrough is made."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smoke import smoke_run

pytestmark = pytest.mark.notebooks
PROJECT_ROOT = Path(__file__).resolve().parents[2]


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
