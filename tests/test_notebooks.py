"""The walkthrough, headless: every lesson notebook runs through ``toxhelpers run`` (papermill).

One ``smoke`` run of all notebooks on the shared Jigsaw sample is made per test session and
shared by every test here; each notebook then gets its own test, so a failing cell fails the
test named after its notebook, with the cell's error text. A second, 01-only run checks that the
same parameters and seed give identical splits.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from toxhelpers import runner
from toxhelpers.artifacts import read_json

pytestmark = pytest.mark.notebooks

NOTEBOOKS = sorted(runner.DEFAULT_NOTEBOOKS_DIR.glob(runner.NOTEBOOK_PATTERN))


def smoke_run(out: Path, data_dir: Path, **options) -> runner.RunResult:
    return runner.run(runner.RunOptions(profile="smoke", overrides={"data_dir": str(data_dir)}, out=out,
                                        quiet=True, **options))


@pytest.fixture(scope="session")
def walkthrough(shared_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> runner.RunResult:
    """The whole walkthrough, smoke profile, on the shared sample: run once, checked per notebook."""
    return smoke_run(tmp_path_factory.mktemp("smoke") / "report", shared_sample)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_and_records(walkthrough: runner.RunResult, notebook: Path) -> None:
    status = walkthrough.status(notebook.name)
    if status.failure is not None:
        failure = status.failure
        pytest.fail(f"{failure.notebook} failed in {failure.cell}: {failure.source_line}\n"
                    f"{failure.error}\n\n{failure.traceback[-3000:]}", pytrace=False)
    if status.status != "ran":
        before = walkthrough.failure.notebook if walkthrough.failure else "an earlier notebook"
        pytest.fail(f"{notebook.name} did not run ({status.status}): {before} failed before it", pytrace=False)
    assert (walkthrough.folder.html(notebook)).is_file()
    assert status.sections, f"{notebook.name} wrote no record: make a toxhelpers.report.Recorder"
    for section in status.sections:
        record = read_json(walkthrough.folder.artifacts / "metrics" / f"{section}.json")
        assert record["metrics"], f"{notebook.name}: its record {section}.json holds no metrics"


def test_the_run_report_is_complete(walkthrough: runner.RunResult) -> None:
    root = walkthrough.folder.root
    assert walkthrough.ok and walkthrough.exit_code == 0
    for name in ("summary.md", "metrics.json", "run.json", "parameters.yaml"):
        assert (root / name).is_file()
    assert read_json(root / "run.json")["inputs"], "no data files or weights recorded as inputs"


def test_same_seed_same_splits(walkthrough: runner.RunResult, shared_sample: Path, tmp_path: Path) -> None:
    """A second run of 01_data with the same parameters writes byte-for-byte the same splits."""
    first = {key: value for key, value in walkthrough.metrics.items() if key.startswith("data.")}
    assert {"data.split_hash.train", "data.split_hash.validation", "data.split_hash.test"} <= set(first)
    again = smoke_run(tmp_path / "again", shared_sample, only=["01"])
    assert again.ok, again.failure
    second = {key: value for key, value in again.metrics.items() if key.startswith("data.")}
    assert {key: second[key] for key in first if "split_hash" in key} == {
        key: first[key] for key in first if "split_hash" in key}
    assert runner.compare_metrics(first, second, tolerance=0.0) == []
