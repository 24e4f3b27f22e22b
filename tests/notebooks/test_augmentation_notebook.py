"""Lesson 2 headless: 01_data then 02_augmentation through papermill on the notebook tier's data,
with small parameters and the default (offline) method, checked from outside the notebook."""

from __future__ import annotations

from pathlib import Path

import pytest

from toxhelpers import augment, data
from toxhelpers.artifacts import frame_hash, read_json

pytestmark = pytest.mark.notebooks

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def run(notebook: str, out: Path, **parameters) -> None:
    import papermill

    papermill.execute_notebook(str(NOTEBOOKS / notebook), str(out / notebook), parameters=parameters,
                               cwd=str(NOTEBOOKS), kernel_name="python3", progress_bar=False)


def test_augmentation_notebook(tmp_path: Path, walkthrough_data: Path) -> None:
    artifacts = tmp_path / "artifacts"
    run("01_data.ipynb", tmp_path, artifacts_dir=str(artifacts), data_dir=str(walkthrough_data),
        max_train_rows=200, max_test_rows=60)
    before = {split: path.read_bytes() for split in data.SPLITS
              for path in [data.split_path(artifacts, split)]}

    run("02_augmentation.ipynb", tmp_path, artifacts_dir=str(artifacts), compare_rows=20, example_rows=1)

    assert {split: data.split_path(artifacts, split).read_bytes() for split in data.SPLITS} == before
    train = data.load_split(artifacts, "train")
    balanced = data.load_split(artifacts, "train", variant="balanced")
    assert (balanced[data.TARGET_COLUMN] == 1).sum() == (balanced[data.TARGET_COLUMN] == 0).sum()
    new = balanced[balanced["augmented"]]
    assert len(new) > 0 and set(new["source_id"]) <= set(train[data.ID_COLUMN])
    assert (new["method"] == augment.DEFAULT_METHOD).all()
    metrics = read_json(artifacts / "metrics" / "augmentation.json")["metrics"]
    assert metrics["augmentation.rows_added"] == len(new)
    assert metrics["augmentation.balanced_hash"] == frame_hash(balanced)  # the file holds the frame the lesson made
    for method in augment.OFFLINE_METHODS:
        assert metrics[f"augmentation.throughput.{method}_texts_per_s"] > 0
    for split in ("validation", "test"):
        assert metrics[f"augmentation.split_sha256_before.{split}"] == metrics[f"augmentation.split_sha256_after.{split}"]
