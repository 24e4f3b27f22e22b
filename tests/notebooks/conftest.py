"""The notebook tier: every lesson run headless through papermill.

It runs on the shared Jigsaw sample when this machine has it (CI does, and must: it sets
``TOXHELPERS_REQUIRE_SHARED_SAMPLE=1``), and otherwise on the demo set shipped with the package,
so a newcomer's ``./dev test`` executes every lesson too instead of skipping them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def walkthrough_data(request: pytest.FixtureRequest) -> Path:
    """The data the notebook tier runs on: the shared sample, or else the shipped demo set."""
    from toxhelpers import data

    try:
        return request.getfixturevalue("shared_sample")
    except pytest.skip.Exception:
        if os.environ.get("TOXHELPERS_REQUIRE_SHARED_SAMPLE") == "1":
            raise
        return data.demo_data_dir()
