"""Shared fixtures: where the real Jigsaw sample is, and the real bundled encoder.

The shared sample (real Jigsaw rows) lives outside the repository, at ../shared/data/jigsaw-sample
from the project root, or wherever $TOXHELPERS_SHARED_SAMPLE points. On a user's machine without
it, the tests that need it skip with a reason; CI sets TOXHELPERS_REQUIRE_SHARED_SAMPLE=1 so that a
missing sample fails instead of silently skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import toxhelpers  # noqa: F401  (TF_USE_LEGACY_KERAS before anything imports TensorFlow)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
# Comments we wrote from templates, in Kaggle's layout (with -1 rows in test_labels.csv): for tests
# that need a tiny set of known lengths and classes, never as the package's data.
SYNTHETIC_DATA_DIR = Path(__file__).resolve().parent / "synthetic_data"


# The longest test files, longest first (2-core AMD EPYC family 23, 2026-12-07, in the suite: the
# walkthrough's file ~870 s, then ~260, ~200, ~90, ~70, ~60 s). They run first, so under `--dist loadfile` (with
# `--no-loadscope-reorder`, pyproject.toml) one process makes the walkthrough while the other takes
# these, and only short files are left for whichever finishes first. Left to xdist's default order
# (files with most tests first), the Ray test's file started last, after the walkthrough (the suite
# then ended ~170 s after one process had gone idle), and the two agreement files landed in
# different processes, each making the one-process reference (``one_process``, ~40 s) again.
LONGEST_TEST_FILES = ("tests/notebooks/test_walkthrough.py", "tests/unit/test_distribute.py",
                      "tests/unit/test_run_ray_engine.py", "tests/unit/test_run_resume.py",
                      "tests/notebooks/test_interrupt_and_bad_data.py", "tests/unit/test_training.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest test files first; every other test keeps its place (a stable sort)."""
    rank = {path: index for index, path in enumerate(LONGEST_TEST_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def shared_sample_dir() -> Path:
    return Path(os.environ.get("TOXHELPERS_SHARED_SAMPLE",
                               PROJECT_ROOT.parent / "shared" / "data" / "jigsaw-sample")).resolve()


def missing(message: str, required_by: str) -> None:
    """Something a test needs is not on this machine: skip, or fail where the environment
    variable ``required_by`` is 1 (CI sets it, so a missing prerequisite never skips silently)."""
    if os.environ.get(required_by) == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_sample() -> Path:
    """The real Jigsaw rows; skip (or, in CI, fail) when they are not on this machine."""
    folder = shared_sample_dir()
    if not (folder / "train.csv").is_file():
        missing(f"the shared Jigsaw sample is not at {folder} (set TOXHELPERS_SHARED_SAMPLE to its folder)",
                "TOXHELPERS_REQUIRE_SHARED_SAMPLE")
    return folder


@pytest.fixture(scope="session")
def ray_train() -> None:
    """Ray Train (the optional ``ray`` extra); skip without it, or fail in CI
    (``TOXHELPERS_REQUIRE_RAY=1``), which installs it."""
    try:
        import ray.train  # noqa: F401
    except ImportError as error:
        missing(f"Ray Train is not installed ({error}); install the ray extra", "TOXHELPERS_REQUIRE_RAY")


@pytest.fixture(scope="session")
def bundled_checkpoint():
    """The real bundled encoder (all-MiniLM-L6-v2 weights), hash-checked."""
    from toxhelpers import pretrained

    return pretrained.resolve_checkpoint(pretrained.BUNDLED, announce=False)


@pytest.fixture(scope="session")
def tokenizer(bundled_checkpoint):
    from toxhelpers import pretrained

    return pretrained.load_tokenizer(bundled_checkpoint)
