"""toxhelpers finetune: the parameters it injects into lesson 11 (running the lesson is the notebook tier's job)."""

from __future__ import annotations

import json
import re
from pathlib import Path

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
    assert injected == {"artifacts_dir": str(tmp_path.resolve()), "strategy": "multi_worker", "scaling_rows": 0,
                        "precision": "mixed_bfloat16", "batch_size": 16, "learning_rate": 2e-5}


def test_defaults_are_the_lessons_on_every_training_row(tmp_path):
    assert parameters(tmp_path) == {"artifacts_dir": str(tmp_path.resolve()), "strategy": "default",
                                    "precision": "float32", "scaling_rows": 0}
    assert parameters(tmp_path, "-p", "scaling_rows=64")["scaling_rows"] == 64


@pytest.mark.parametrize("override, message", [
    ("bogus=1", "-p bogus: not a parameter of 11_scaling_out.ipynb"),
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


# ------------------------------------------------ issue 22 row 13: the same care as toxhelpers run

TINY_LESSON = ['artifacts_dir = "../artifacts"\nstrategy = "default"\nprecision = "float32"\nscaling_rows = 512\n'
               'fail = False',
               "import pathlib\nif fail:\n    raise ValueError('the lesson failed here')\n"
               "pathlib.Path(artifacts_dir, 'scaled').mkdir(exist_ok=True)\n"
               "pathlib.Path(artifacts_dir, 'scaled', 'validation_predictions.parquet').write_text('x')"]


@pytest.fixture()
def tiny_finetune(tmp_path):
    """A stand-in lesson 11 (no TensorFlow) and an artifacts folder holding what it needs from
    lessons 3-6 (placeholder files: only their presence is checked before the kernel starts)."""
    from tiny_lessons import write_notebook

    from toxhelpers.artifacts import artifact_path
    from toxhelpers.run.finetune import NEEDED

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_notebook(notebooks / LESSON, TINY_LESSON)
    artifacts = tmp_path / "report" / "artifacts"
    for name, fields in NEEDED:
        path = artifact_path(artifacts, name, **fields)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    return ["finetune", "--artifacts-dir", str(artifacts), "--notebooks-dir", str(notebooks),
            "--out", str(tmp_path / "out" / LESSON)]


def test_finetune_on_an_empty_folder_says_which_lesson_to_run(tmp_path, capsys):
    assert main(["finetune", "--artifacts-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no tokens/checkpoint.json (written by 03_tokenization.ipynb); run lessons " \
        "1-6 into it first" in err, err


def test_finetune_reports_a_failing_lesson_in_one_message_and_clears_old_outputs(tiny_finetune, capsys):
    artifacts = tiny_finetune[2]
    stale = [f"{artifacts}/scaled/model/encoder/tf_model.h5", f"{artifacts}/scaled/validation_predictions.parquet",
             f"{artifacts}/metrics/scaling.json"]
    for name in stale:
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_text("old")
    assert main(tiny_finetune + ["-p", "fail=true"]) == 1
    err = capsys.readouterr().err
    assert "FAILED: 11_scaling_out.ipynb in cell 3 of 3" in err and "ValueError: the lesson failed here" in err
    assert "Traceback" not in err and "partial notebook kept" in err
    assert not any(Path(name).exists() for name in stale)  # never old beside new
    assert main(tiny_finetune) == 0


def test_finetune_refuses_what_run_refuses(tiny_finetune, tmp_path, capsys, monkeypatch):
    from toxhelpers.run.run_folder import locked

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert main(tiny_finetune[:-1] + [str(a_file / LESSON)]) == 2
    assert f"--out {a_file / LESSON}: {a_file} is a file" in capsys.readouterr().err
    with locked(Path(tiny_finetune[2])):
        assert main(tiny_finetune) == 2
    assert "another toxhelpers run is writing to" in capsys.readouterr().err
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["localhost:1"], "chief": ["a:1", "b:1"]},
                                                "task": {"type": "chief", "index": 0}}))
    assert main(tiny_finetune + ["--strategy", "multi_worker"]) == 2
    assert "lists ['a:1', 'b:1'] as 'chief': expected exactly one address" in capsys.readouterr().err


def test_the_stand_in_holds_what_finetune_checks(tmp_path):
    from toxhelpers.artifacts import artifact_path
    from toxhelpers.run.finetune import NEEDED

    assert sorted(artifact_path(tmp_path, name, **fields).relative_to(tmp_path).as_posix() for name, fields in NEEDED) \
        == ["finetuned/metrics.json", "phase1/head.json", "phase1/head.weights.h5", "phase1/spec.json",
            "tokens/checkpoint.json", "tokens/validation.npz"]
