"""toxhelpers finetune: the parameters it injects into lesson 6 (running the lesson is the notebook tier's job)."""

from __future__ import annotations

import json
import re

import pytest

from toxhelpers.__main__ import main
from toxhelpers.run.errors import UsageError
from toxhelpers.run.finetune import LESSON, lesson_parameters, parse_arguments
from toxhelpers.run.notebooks import DEFAULT_NOTEBOOKS_DIR

NOTEBOOK = DEFAULT_NOTEBOOKS_DIR / LESSON


def parameters(tmp_path, *extra: str) -> dict:
    return lesson_parameters(parse_arguments(["--artifacts-dir", str(tmp_path), *extra]), NOTEBOOK)


def test_strategy_precision_and_overrides_are_injected_checked(tmp_path):
    injected = parameters(tmp_path, "--strategy", "multi_worker", "--precision", "mixed_bfloat16",
                          "-p", "batch_size=16", "-p", "learning_rate=2e-5")
    assert injected == {"artifacts_dir": str(tmp_path.resolve()), "strategy": "multi_worker",
                        "precision": "mixed_bfloat16", "batch_size": 16, "learning_rate": 2e-5}


def test_defaults_are_the_lessons(tmp_path):
    assert parameters(tmp_path) == {"artifacts_dir": str(tmp_path.resolve()), "strategy": "default",
                                    "precision": "float32"}


@pytest.mark.parametrize("override, message", [
    ("bogus=1", "-p bogus: not a parameter of 06_finetuning.ipynb"),
    ("strategy=mirrored", "use --strategy instead"),
    ("batch_size=0", "parameter batch_size=0: expected an integer in [1, 65536]"),
])
def test_bad_overrides_are_refused(tmp_path, override, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        parameters(tmp_path, "-p", override)


def test_a_broken_tf_config_stops_before_any_kernel(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 3}}))
    assert main(["finetune", "--artifacts-dir", str(tmp_path), "--strategy", "multi_worker"]) == 2
    assert "is not in its cluster" in capsys.readouterr().err
