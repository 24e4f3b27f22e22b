"""A notebook that fails: the run stops there and says which cell, which line and which error."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat

from tiny_lessons import command_line, lessons, profile, stable_code, write_notebook  # noqa: F401 (fixtures)
from toxhelpers.run.cli import main


def test_failure_stops_with_notebook_cell_and_error(lessons: Path, profile: Path, capsys) -> None:
    write_notebook(lessons / "03_after.ipynb", ['artifacts_dir = "../artifacts"',
                                                "print('should not run')\nopen(f'{artifacts_dir}/after.txt', 'w').write('x')"])
    argv = ["--profile", str(profile), "--notebooks-dir", str(lessons), "--out", str(lessons.parent / "report"),
            "--quiet", "-p", "fail=true"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "FAILED: 02_use.ipynb in cell 4 of 4 (In [4]):" in err  # In [1] is papermill's injected cell
    assert "line 3: raise ValueError('scale must be positive')" in err
    assert "ValueError: scale must be positive" in err
    out = lessons.parent / "report"
    partial = nbformat.read(out / "notebooks" / "02_use.ipynb", as_version=4)
    assert any(output.get("ename") == "ValueError" for cell in partial.cells for output in cell.get("outputs", []))
    assert not (out / "notebooks" / "03_after.ipynb").exists()
    assert not (out / ".state" / "02_use.json").exists()
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "failed" and record["failure"]["error"] == "ValueError: scale must be positive"
    assert "use.scaled_total" not in json.loads((out / "metrics.json").read_text())
    assert "**Status:** failed" in (out / "summary.md").read_text()

    assert main(argv[:-2]) == 0  # fixed: 01 is reused, 02 and 03 run
    assert "01_make.ipynb reused: unchanged since" in capsys.readouterr().err


def test_a_lesson_that_wrote_none_of_its_outputs_is_not_recorded_complete(lessons: Path, profile: Path,
                                                                          capsys) -> None:
    """Issue 22 row 3: a lesson that ran to the end but wrote nothing into the artifacts (as lesson
    5 did when an inherited TF_CONFIG made it worker 1) used to be recorded complete."""
    write_notebook(lessons / "03_nothing.ipynb", ['artifacts_dir = "../artifacts"', "print('wrote nothing')"])
    write_notebook(lessons / "05_training.ipynb", ['artifacts_dir = "../artifacts"',
                                                   "from toxhelpers import recording\n"
                                                   "recording.Recorder(artifacts_dir, 'training')"])
    out, argv = lessons.parent / "report", command_line(lessons, profile)
    assert main(argv + ["--only", "03"]) == 1
    err = capsys.readouterr().err
    assert "FAILED: 03_nothing.ipynb:" in err and "wrote none of its outputs (expected a file in artifacts/)" in err
    assert main(argv + ["--only", "05"]) == 1  # the table's outputs: a record alone is not enough
    assert ("wrote none of its outputs (expected artifacts/phase1/head.json, artifacts/phase1/head.weights.h5, "
            "artifacts/phase1/spec.json, "
            "artifacts/phase1/{split}_predictions.parquet)") in capsys.readouterr().err
    assert not (out / ".state" / "03_nothing.json").exists() and not (out / ".state" / "05_training.json").exists()
    assert json.loads((out / "run.json").read_text())["status"] == "failed"


def test_an_inherited_tf_config_is_ignored_unless_a_lesson_joins_the_cluster(lessons: Path, profile: Path,
                                                                           capsys, monkeypatch) -> None:
    """Issue 22 row 3: with the default strategy the kernels start without TF_CONFIG, said once."""
    inherited = json.dumps({"cluster": {"worker": ["localhost:23456", "localhost:23457"]},
                            "task": {"type": "worker", "index": 1}})
    monkeypatch.setenv("TF_CONFIG", inherited)
    write_notebook(lessons / "03_env.ipynb", ['artifacts_dir = "../artifacts"\nstrategy = "default"',
                                              "import json, os\njson.dump(os.environ.get('TF_CONFIG'), "
                                              "open(f'{artifacts_dir}/tf_config.json', 'w'))"])
    out, argv = lessons.parent / "report", command_line(lessons, profile, "--only", "03")
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.count("TF_CONFIG is set in the environment but strategy is 'default': it is ignored") == 1
    assert json.loads((out / "artifacts" / "tf_config.json").read_text()) is None
    assert main(argv + ["-p", "strategy=multi_worker"]) == 0  # joining the cluster: passed on
    assert "TF_CONFIG is set" not in capsys.readouterr().err
    assert json.loads((out / "artifacts" / "tf_config.json").read_text()) == inherited
    assert __import__("os").environ["TF_CONFIG"] == inherited  # the runner's own environment is restored


def test_lessons_run_on_this_interpreters_kernel_whatever_jupyter_finds(lessons: Path, profile: Path,
                                                                      monkeypatch, capsys) -> None:
    """Issue 22 row 4: a kernelspec named python3 earlier on JUPYTER_PATH (another environment's,
    or anything else) used to run the lessons: "Kernel died", or other code silently."""
    import sys

    marker = lessons.parent / "foreign-kernel-ran"
    spec = lessons.parent / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": ["/bin/sh", "-c", f"touch {marker}; exit 1", "{connection_file}"],
        "display_name": "Python 3 (another environment)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(lessons.parent / "jupyter"))
    out = lessons.parent / "report"
    assert main(command_line(lessons, profile, "--only", "01")) == 0
    assert not marker.exists()
    kernel = json.loads((out / "run.json").read_text())["kernel"]
    assert kernel["python"] == sys.executable and kernel["python_version"] == sys.version.split()[0]
    assert 1 <= kernel["cpus_usable"] <= (os.cpu_count() or 1)  # TF-IDF + LR's last digits depend on it


def test_a_dead_kernel_is_reported_with_its_cell_and_peak_memory(lessons: Path, profile: Path, capsys) -> None:
    """Issue 22 row 15: a kernel killed (the OOM killer, kill -9) was reported as 'DeadKernelError:
    Kernel died' with no cell, and summary.md showed '03_die.ipynb, : ...'."""
    write_notebook(lessons / "03_die.ipynb", ['artifacts_dir = "../artifacts"', "numbers = list(range(10))",
                                              "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"])
    out = lessons.parent / "report"
    assert main(command_line(lessons, profile, "--only", "03")) == 1
    err = capsys.readouterr().err
    assert "FAILED: 03_die.ipynb in cell 4 of 4:\n    import os, signal\n" in err, err  # the cell, by its first line
    assert "the kernel died (DeadKernelError) while this cell ran; peak memory of the notebook" in err
    assert "most likely it ran out of memory" in err
    summary = (out / "summary.md").read_text()
    assert "**Status:** failed (03_die.ipynb, cell 4 of 4: the kernel died" in summary
    assert json.loads((out / "run.json").read_text())["failure"]["cell"] == "cell 4 of 4"


def test_a_lesson_this_python_cannot_run_is_skipped_in_one_line_and_the_run_goes_on(
        lessons: Path, profile: Path, capsys) -> None:
    path = write_notebook(lessons / "03_future.ipynb", ['artifacts_dir = "../artifacts"', "import not_installed_yet"])
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata["toxhelpers"] = {"requires_python": "99.0", "requires_why": "a package of the future needs it"}
    nbformat.write(notebook, path)
    out = lessons.parent / "report"
    argv = ["--profile", str(profile), "--notebooks-dir", str(lessons), "--out", str(out), "--quiet"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    skipped = [line for line in err.splitlines() if "03_future.ipynb skipped:" in line]
    assert len(skipped) == 1 and "needs Python 99.0 or newer (a package of the future needs it); this is Python 3." in skipped[0]
    assert "Traceback" not in err and not (out / "notebooks" / "03_future.ipynb").exists()
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "complete"
    assert [item["status"] for item in record["notebooks"]] == ["ran", "ran", "skipped"]
    assert main(argv + ["--dry-run"]) == 0
    assert "03_future.ipynb: would skip: needs Python 99.0" in capsys.readouterr().out
