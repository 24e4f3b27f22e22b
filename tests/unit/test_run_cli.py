"""``toxhelpers run`` on the command line: one clear message for bad input, and what the
terminal shows in the compact (default), verbose and quiet modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tiny_lessons import command_line, lessons, options, profile, stable_code  # noqa: F401 (fixtures)
from toxhelpers.run.cli import main
from toxhelpers.run.errors import UsageError
from toxhelpers.run.orchestrate import run


def test_bad_input_gives_one_clear_message(lessons: Path, profile: Path, capsys) -> None:
    assert main(["--profile", "nope", "--notebooks-dir", str(lessons)]) == 2
    assert "unknown profile 'nope'; available: demo, full, smoke" in capsys.readouterr().err
    assert main(["--profile", str(profile), "-p", "size:3", "--notebooks-dir", str(lessons)]) == 2
    assert "expected -p key=value" in capsys.readouterr().err
    bad = lessons.parent / "bad.yaml"
    bad.write_text("size: 3\n")
    assert main(["--profile", str(profile), "--config", str(bad), "--notebooks-dir", str(lessons)]) == 2
    assert "expected a YAML config like" in capsys.readouterr().err
    assert main(["--profile", str(profile), "--only", "7", "--notebooks-dir", str(lessons)]) == 2
    assert "--only '7' matches no notebook" in capsys.readouterr().err


def test_bad_run_options_stop_before_anything_runs(lessons: Path, profile: Path, capsys) -> None:
    """--compare-to, --tolerance and --out are checked first: they used to fail (with a traceback)
    only after the whole run, or to print "metrics match" after a dry run compared nothing."""
    out = lessons.parent / "report"
    base = ["--profile", str(profile), "--notebooks-dir", str(lessons), "--quiet"]
    truncated = lessons.parent / "truncated"
    truncated.mkdir()
    (truncated / "metrics.json").write_text('{"make.count": 2, "make.to')
    listed = lessons.parent / "listed"
    listed.mkdir()
    (listed / "metrics.json").write_text("[1, 2]")
    a_file = lessons.parent / "a-file"
    a_file.write_text("not a folder")
    cases = [
        (["--compare-to", str(lessons.parent / "missing")], f"--compare-to {lessons.parent / 'missing'}: "
         f"{lessons.parent / 'missing' / 'metrics.json'} does not exist; expected the report folder of an earlier"),
        (["--dry-run", "--compare-to", "/nonexistent"], "--compare-to /nonexistent: /nonexistent/metrics.json does not exist"),
        (["--compare-to", str(truncated)], f"{truncated / 'metrics.json'} is not readable JSON"),
        (["--compare-to", str(listed)], f"{listed / 'metrics.json'} holds list"),
        (["--tolerance", "-1"], "--tolerance -1.0: expected a number >= 0"),
        (["--tolerance", "nan"], "--tolerance nan: expected a number >= 0"),
        (["--out", str(a_file)], f"--out {a_file}: {a_file} is a file; expected a folder for the report"),
        (["--out", str(a_file / "sub")], f"--out {a_file / 'sub'}: {a_file} is a file"),
    ]
    for arguments, message in cases:
        argv = base + (arguments if "--out" in arguments else arguments + ["--out", str(out)])
        assert main(argv) == 2, arguments
        err = capsys.readouterr().err
        assert err.startswith("toxhelpers run: error: ") and message in err and err.count("\n") == 1, err
        assert not out.exists(), f"{arguments}: something ran"


# ------------------------------------------------------------------ what the terminal shows

CELL_OUTPUT = "made [1, 2]"  # what 01_make prints


def run_tiny(lessons: Path, profile: Path, capsys, *flags: str) -> tuple[str, Path]:
    """Both lessons through the command line; returns everything printed, and the report folder."""
    out = lessons.parent / "report"
    argv = ["--profile", str(profile), "--notebooks-dir", str(lessons), "--out", str(out), "--force", *flags]
    assert main(argv) == 0
    captured = capsys.readouterr()
    return captured.out + captured.err, out


def test_compact_output_shows_cells_not_their_output(lessons: Path, profile: Path, capsys) -> None:
    """The default: a line per notebook, and (stderr not being a terminal here) one plain line per
    code cell as it starts; the cells' output only in logs/."""
    shown, out = run_tiny(lessons, profile, capsys)
    assert CELL_OUTPUT not in shown
    assert CELL_OUTPUT in (out / "logs" / "01_make.log").read_text()
    assert "[1/2] 01_make.ipynb ..." in shown and "[1/2] 01_make.ipynb done in" in shown
    assert "cell 5/6  recorder.input('numbers', {'path': data_file, 'sha256': sha256_file(data_file)})" in shown
    assert "cell 1/6" not in shown  # the markdown title cell is not announced
    assert "\r" not in shown  # not a terminal: plain lines only


def test_verbose_output_streams_every_cell(lessons: Path, profile: Path, capsys) -> None:
    shown, out = run_tiny(lessons, profile, capsys, "--verbose")
    assert CELL_OUTPUT in shown and CELL_OUTPUT in (out / "logs" / "01_make.log").read_text()
    assert "cell 5/6" not in shown
    assert "[2/2] 02_use.ipynb done in" in shown


def test_quiet_output_has_only_notebook_lines_and_the_table(lessons: Path, profile: Path, capsys) -> None:
    shown, out = run_tiny(lessons, profile, capsys, "--quiet")
    assert CELL_OUTPUT not in shown and "cell 5/6" not in shown
    assert CELL_OUTPUT in (out / "logs" / "01_make.log").read_text()
    assert "[1/2] 01_make.ipynb done in" in shown and "done: report in" in shown
    assert json.loads((out / "metrics.json").read_text())["make.count"] == 2


def test_quiet_and_verbose_exclude_each_other(lessons: Path, profile: Path, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--profile", str(profile), "--notebooks-dir", str(lessons), "--quiet", "--verbose"])
    assert stopped.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(UsageError, match="--quiet and --verbose: expected at most one of them"):
        run(options(lessons, profile, quiet=True, verbose=True))
    assert not (lessons.parent / "report").exists()


# ------------------------------------------------------------------ signals (real processes)

WAIT = ['artifacts_dir = "../artifacts"\nseconds = 120',
        "import pathlib, time\npathlib.Path(artifacts_dir, 'wait').mkdir(exist_ok=True)\n"
        "pathlib.Path(artifacts_dir, 'wait', 'started.txt').write_text('x')\ntime.sleep(seconds)"]


def start_run(argv: list[str], log: Path):
    """``python -m toxhelpers run`` as a process of its own (in its own session, so a signal
    reaches it alone), its output in ``log``."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                                    os.environ.get("PYTHONPATH")])))
    with open(log, "w") as handle:
        return subprocess.Popen([sys.executable, "-m", "toxhelpers", "run", *argv], stdout=handle,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)


def wait_until(condition, what: str, timeout: float = 90) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_sigterm_is_an_interrupt_and_sigkill_is_reported_next_time(lessons: Path, profile: Path, capsys) -> None:
    """Issue 22 row 6: after SIGTERM or SIGKILL of the runner, run.json and summary.md still said
    "complete" for the previous run while the killed lesson's outputs were gone, and SIGTERM
    ended the runner silently (exit 143, no report)."""
    import signal

    import psutil

    from tiny_lessons import write_notebook

    write_notebook(lessons / "03_wait.ipynb", WAIT)
    out, log = lessons.parent / "report", lessons.parent / "run.log"
    argv = command_line(lessons, profile, "--only", "03")
    started = out / "artifacts" / "wait" / "started.txt"
    record = lambda: json.loads((out / "run.json").read_text())  # noqa: E731

    for stop in (signal.SIGTERM, signal.SIGKILL):
        started.unlink(missing_ok=True)
        process = start_run(argv, log)
        try:
            wait_until(lambda: started.is_file() or process.poll() is not None, "03_wait to start")
            assert process.poll() is None, log.read_text()
            assert record()["status"] == "running" and "**Status:** running since" in (out / "summary.md").read_text()
            kernels = [child.pid for child in psutil.Process(process.pid).children(recursive=True)]
            process.send_signal(stop)
            code = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        text = log.read_text()
        if stop == signal.SIGTERM:
            assert code == 143 and "Interrupted: partial notebook kept" in text and "Traceback" not in text, text
            assert record()["status"] == "interrupted" and record()["stopped_by"] == "SIGTERM"
            stopped = next(item for item in record()["notebooks"] if item["name"] == "03_wait.ipynb")
            assert stopped["status"] == "interrupted" and stopped["wall_seconds"] > 0
            assert stopped["peak_memory_mb"] > 0 and stopped["peak_memory_cell"]  # its cost until the stop
            assert "**Status:** interrupted by SIGTERM" in (out / "summary.md").read_text()
            wait_until(lambda: not any(psutil.pid_exists(pid) for pid in kernels), "the kernel to end", 30)
        else:
            assert code == -signal.SIGKILL
            assert record()["status"] == "running"  # what a killed run leaves: not "complete"
            for pid in kernels:  # a kernel the killed runner may have left (started by this test)
                try:
                    psutil.Process(pid).kill()
                except psutil.NoSuchProcess:
                    pass

    from toxhelpers.run.cli import main

    capsys.readouterr()
    assert main(argv + ["--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "note: the previous run into this folder" in printed and "did not finish: it was killed" in printed
    assert main(argv + ["-p", "seconds=0"]) == 0
    assert "did not finish: it was killed" in capsys.readouterr().err
    assert record()["status"] == "complete"
    assert "did not finish" not in (out / "summary.md").read_text()
