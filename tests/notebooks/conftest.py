"""The notebook tier: every lesson run headless through papermill.

It runs on the small real sample shipped with the package, the data a fresh clone's
``./dev walkthrough`` uses when no Kaggle download is found, so the tier checks the first run a
learner makes (the shared sample, larger, is what the slow tier and the README's results use).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def walkthrough_data() -> Path:
    """The data the notebook tier runs on: the sample shipped in ``toxhelpers/sample_data``."""
    from toxhelpers import data

    return data.sample_data_dir()
