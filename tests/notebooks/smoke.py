"""The notebook tier's runs: ``toxhelpers run`` on the smoke profile, in this process."""

from __future__ import annotations

from pathlib import Path

from toxhelpers.run.orchestrate import RunOptions, run
from toxhelpers.run.summary import RunResult


def smoke_run(out: Path, data_dir: Path | None, overrides: dict | None = None, **options) -> RunResult:
    """A smoke run; ``data_dir`` None for a selection without lesson 1 (a -p value must reach a
    selected lesson, and only lesson 1 reads the data folder)."""
    folder = {"data_dir": str(data_dir)} if data_dir is not None else {}
    return run(RunOptions(profile="smoke", overrides={**folder, **(overrides or {})}, out=out, quiet=True, **options))
