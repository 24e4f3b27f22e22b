"""The report runner's logic, on tiny throwaway notebooks (no TensorFlow, a few seconds each).

Two lessons stand in for the walkthrough: ``01_make`` reads a data file, writes an artifact, a
figure and a record (through the real toxhelpers Recorder); ``02_use`` reads that artifact and
can be told to fail. Together they exercise parameter filtering, precedence, the report folder,
failure reporting and every resume decision.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
import yaml

from toxhelpers import parameter_checks, runner
from toxhelpers.runner import RunOptions, UsageError

KERNELSPEC = {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"},
              "language_info": {"name": "python"}}

MAKE = [
    'artifacts_dir = "../artifacts"\ndata_file = None\nsize = 3\nseed = 0',
    "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
    "from toxhelpers import report\nfrom toxhelpers.artifacts import sha256_file, write_json\n"
    "recorder = report.Recorder(artifacts_dir, 'make', parameters=dict(size=size, seed=seed))",
    "recorder.input('numbers', {'path': data_file, 'sha256': sha256_file(data_file)})\n"
    "numbers = [int(line) for line in open(data_file).read().split()][:size]\n"
    "write_json(numbers, f'{artifacts_dir}/data/numbers.json')\n"
    "print('made', numbers)",
    "recorder.metric('count', len(numbers))\n"
    "recorder.headline('total', float(sum(numbers)), key='total', baseline=1.5, article=0.9218)\n"
    "fig, ax = plt.subplots(figsize=(2, 2))\nax.plot(numbers)\nrecorder.figure(fig, 'numbers')",
]
USE = [
    'artifacts_dir = "../artifacts"\nscale = 2\n'
    "fail = False  # e.g. fail=True: papermill's own parser skips this line",
    "import json\nfrom toxhelpers import report\n"
    "recorder = report.Recorder(artifacts_dir, 'use', parameters=dict(scale=scale))",
    "numbers = json.load(open(f'{artifacts_dir}/data/numbers.json'))\nif fail:\n"
    "    raise ValueError('scale must be positive')\nrecorder.metric('scaled', [n * scale for n in numbers])\n"
    "recorder.headline('scaled total', float(sum(numbers) * scale), key='scaled_total')",
]


@pytest.fixture(autouse=True)
def stable_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other people edit toxhelpers modules while these tests run; the code hash is tested apart."""
    monkeypatch.setattr(runner, "code_hash", lambda: "code")


def write_notebook(path: Path, cells: list[str]) -> Path:
    notebook = nbformat.v4.new_notebook(metadata=KERNELSPEC)
    notebook.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}")]
    notebook.cells += [nbformat.v4.new_code_cell(cells[0], metadata={"tags": ["parameters"]})]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in cells[1:]]
    nbformat.write(notebook, path)
    return path


@pytest.fixture()
def lessons(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write_notebook(folder / "01_make.ipynb", MAKE)
    write_notebook(folder / "02_use.ipynb", USE)
    (tmp_path / "numbers.txt").write_text("1\n2\n3\n4\n")
    return folder


@pytest.fixture()
def profile(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({"description": "tiny test profile",
                                    "parameters": {"data_file": str(tmp_path / "numbers.txt"), "size": 2}}))
    return path


def options(lessons: Path, profile: Path, **changes) -> RunOptions:
    base = dict(profile=str(profile), notebooks_dir=lessons, out=lessons.parent / "report", quiet=True)
    return RunOptions(**(base | changes))


def statuses(result: runner.RunResult) -> dict[str, str]:
    return {Path(item.name).stem: item.status for item in result.notebooks}


# ------------------------------------------------------------------ parameters (no kernels)


def test_precedence_profile_config_then_p(tmp_path: Path, profile: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("parameters:\n  size: 5\n  seed: 1\n")
    params = runner.resolve_parameters(str(profile), config, ["seed=7", "fail=false"], base=tmp_path)
    assert params.values["size"] == 5  # config beats profile
    assert params.values["seed"] == 7  # -p beats config
    assert params.values["fail"] is False  # YAML-parsed
    assert params.values["data_file"] == str(tmp_path / "numbers.txt")
    assert params.profile == "tiny" and params.description == "tiny test profile"


def test_relative_paths_are_resolved_against_the_invoking_folder(tmp_path: Path, profile: Path) -> None:
    params = runner.resolve_parameters(str(profile), None, ["data_file=sub/x.txt", "label_rule=any"],
                                       base=tmp_path)
    assert params.values["data_file"] == str(tmp_path / "sub" / "x.txt")
    assert params.values["label_rule"] == "any"


def test_each_notebook_gets_only_its_keys(lessons: Path, profile: Path) -> None:
    ctx, selected = runner.prepare(options(lessons, profile, overrides=["scale=3"]))
    assert [path.name for path in selected] == ["01_make.ipynb", "02_use.ipynb"]
    make, use = (ctx.passed(path) for path in selected)
    artifacts = str(lessons.parent / "report" / "artifacts")
    assert make == {"artifacts_dir": artifacts, "data_file": str(lessons.parent / "numbers.txt"), "size": 2}
    assert use == {"artifacts_dir": artifacts, "scale": 3}
    assert ctx.declared["02_use.ipynb"] == {"artifacts_dir": '"../artifacts"', "scale": "2", "fail": "False"}


def test_unknown_key_is_an_error_with_a_suggestion(lessons: Path, profile: Path) -> None:
    with pytest.raises(UsageError, match=r"no notebook declares parameter 'scal' \(did you mean 'scale'\?\)"):
        runner.prepare(options(lessons, profile, overrides=["scal=3"]))
    with pytest.raises(UsageError, match="artifacts_dir is set by the runner"):
        runner.prepare(options(lessons, profile, overrides=["artifacts_dir=/tmp/x"]))


def test_bad_input_gives_one_clear_message(lessons: Path, profile: Path, capsys) -> None:
    assert runner.main(["--profile", "nope", "--notebooks-dir", str(lessons)]) == 2
    assert "unknown profile 'nope'; available: demo, full, smoke" in capsys.readouterr().err
    assert runner.main(["--profile", str(profile), "-p", "size:3", "--notebooks-dir", str(lessons)]) == 2
    assert "expected -p key=value" in capsys.readouterr().err
    bad = lessons.parent / "bad.yaml"
    bad.write_text("size: 3\n")
    assert runner.main(["--profile", str(profile), "--config", str(bad), "--notebooks-dir", str(lessons)]) == 2
    assert "expected a YAML config like" in capsys.readouterr().err
    assert runner.main(["--profile", str(profile), "--only", "7", "--notebooks-dir", str(lessons)]) == 2
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
        assert runner.main(argv) == 2, arguments
        err = capsys.readouterr().err
        assert err.startswith("toxhelpers run: error: ") and message in err and err.count("\n") == 1, err
        assert not out.exists(), f"{arguments}: something ran"


def test_selection_by_number_name_and_range(lessons: Path) -> None:
    notebooks = runner.discover_notebooks(lessons)
    names = lambda paths: [path.stem for path in paths]  # noqa: E731
    assert names(runner.select_notebooks(notebooks, only=["2"])) == ["02_use"]
    assert names(runner.select_notebooks(notebooks, only=["01_make,02"])) == ["01_make", "02_use"]
    assert names(runner.select_notebooks(notebooks, start="02")) == ["02_use"]
    assert names(runner.select_notebooks(notebooks, stop="01_make.ipynb")) == ["01_make"]


def test_shipped_profiles_only_use_declared_keys() -> None:
    """Typo protection for the profiles themselves: every key is some real notebook's parameter."""
    declared = runner.declared_parameters(runner.discover_notebooks(runner.DEFAULT_NOTEBOOKS_DIR))
    assert {"smoke", "demo", "full"} <= set(runner.available_profiles())
    for name in runner.available_profiles():
        description, values = runner.load_profile(name)
        assert description, f"profile {name} needs a description"
        runner.check_known(values, declared)


def test_shipped_profiles_and_notebook_defaults_pass_the_parameter_checks() -> None:
    """The checks' own table is honest: it names only real parameters, every notebook default
    and every shipped profile passes it, and keys declared by several notebooks agree on a type."""
    declared = runner.declared_parameters(runner.discover_notebooks(runner.DEFAULT_NOTEBOOKS_DIR))
    known = {key for params in declared.values() for key in params}
    assert set(parameter_checks.parameter_rules()) <= known
    defaults = parameter_checks.notebook_defaults(declared)
    for key, values in defaults.items():
        kinds = {parameter_checks.kind_of(value) for value in values} - {None}
        assert parameter_checks.merge_kinds(list(kinds)) is not None or not kinds, f"{key}: {values}"
        for value in values:
            parameter_checks.checked_values({key: value}, declared)
    for name in runner.available_profiles():
        parameter_checks.checked_values(runner.load_profile(name)[1], declared)


def real_lessons(tmp_path: Path, *overrides: str, **changes) -> RunOptions:
    """The real lessons' parameter cells under the smoke profile (only prepared: nothing runs)."""
    return RunOptions(profile="smoke", overrides=list(overrides), out=tmp_path / "report", quiet=True, **changes)


def test_values_take_the_type_of_the_notebooks_defaults(tmp_path: Path) -> None:
    """YAML 1.1 reads 2e-5 as text and no as False: the notebooks' defaults say what was meant."""
    ctx, _ = runner.prepare(real_lessons(tmp_path, "learning_rate=2e-5", "grid_learning_rates=[2e-5, 1]",
                                         "augment_target=0.3", "max_train_rows=null", "checkpoint=no",
                                         "contextual_checkpoint=2024-01-01"))
    values = ctx.params.values
    assert values["learning_rate"] == 2e-5 and type(values["learning_rate"]) is float
    assert values["grid_learning_rates"] == [2e-5, 1.0]
    assert values["augment_target"] == 0.3 and values["max_train_rows"] is None
    assert values["checkpoint"] == "no"  # a text parameter gets the text typed, not YAML's False
    assert values["contextual_checkpoint"] == "2024-01-01"  # nor YAML's date
    config = tmp_path / "config.yaml"
    config.write_text("parameters:\n  learning_rate: 2e-5\n")
    ctx, _ = runner.prepare(real_lessons(tmp_path, config=config))
    assert ctx.params.values["learning_rate"] == 2e-5


@pytest.mark.parametrize("override, expected", [
    ("learning_rate=fast", "parameter learning_rate=fast: expected a number > 0"),
    ("learning_rate=0", "parameter learning_rate=0: expected a number > 0"),
    ("label_rule=no", "parameter label_rule=no: expected one of 'toxic', 'any'"),
    ("epochs=abc", "parameter epochs=abc: expected an integer >= 1"),
    ("epochs=true", "parameter epochs=true: expected an integer >= 1"),
    ("epochs=2.5", "parameter epochs=2.5: expected an integer >= 1"),
    ("max_length=-1", "parameter max_length=-1: expected an integer >= 2"),
    ("batch_size=0", "parameter batch_size=0: expected an integer >= 1"),
    ("validation_fraction=1", "parameter validation_fraction=1: expected a number in (0, 1)"),
    ("grid_head_sizes=[[32], [0]]", "parameter grid_head_sizes=[[32], [0]]: expected a list of lists of integers >= 1"),
    ("new_comments=hello", "parameter new_comments=hello: expected a list of texts"),
    ("max_test_rows=all", "parameter max_test_rows=all: expected an integer >= 2 or null (None)"),
    ("seed=-1", "parameter seed=-1: expected an integer in [0, 4294967295]"),
])
def test_bad_values_stop_the_run_before_it_starts(tmp_path: Path, capsys, override: str, expected: str) -> None:
    argv = ["--profile", "smoke", "-p", override, "--out", str(tmp_path / "report"), "--dry-run"]
    assert runner.main(argv) == 2
    err = capsys.readouterr().err
    assert f"toxhelpers run: error: {expected}\n" == err
    assert not (tmp_path / "report").exists()


def test_sequence_length_is_capped_by_the_encoder(tmp_path: Path, capsys, bundled_checkpoint) -> None:
    """max_length beyond the encoder's position embeddings is refused before the run."""
    argv = ["--profile", "smoke", "--out", str(tmp_path / "report"), "--dry-run"]
    assert runner.main(argv + ["-p", "checkpoint=bundled", "-p", "max_length=100000"]) == 2
    assert "parameter max_length=100000: expected at most 512, the max_position_embeddings of checkpoint 'bundled'" \
        in capsys.readouterr().err
    small = tmp_path / "small-encoder"
    small.mkdir()
    config = json.loads((bundled_checkpoint.path / "config.json").read_text())
    (small / "config.json").write_text(json.dumps(config | {"max_position_embeddings": 64}))
    assert runner.main(argv + ["-p", f"checkpoint={small}", "-p", "benchmark_length=65"]) == 2
    assert "parameter benchmark_length=65: expected at most 64" in capsys.readouterr().err
    assert runner.main(argv + ["-p", "checkpoint=not-cached-anywhere/xyz", "-p", "max_length=513"]) == 2
    assert "expected at most 512, the usual limit of BERT-family encoders" in capsys.readouterr().err
    assert runner.main(argv + ["-p", f"checkpoint={small}", "-p", "max_length=64"]) == 0


def test_a_checkpoint_folder_is_found_where_the_command_runs(tmp_path: Path, profile: Path) -> None:
    """Notebooks run in notebooks/: a relative folder must be made absolute, or it would be taken
    for a hub name there (and silently replaced by the bundled fallback)."""
    (tmp_path / "mydir").mkdir()
    params = runner.resolve_parameters(str(profile), None, ["checkpoint=mydir", "contextual_checkpoint=./mydir"],
                                       base=tmp_path)
    assert params.values["checkpoint"] == params.values["contextual_checkpoint"] == str(tmp_path / "mydir")
    hub = runner.resolve_parameters(str(profile), None, ["checkpoint=distilbert-base-uncased",
                                                         "contextual_checkpoint=bundled"], base=tmp_path)
    assert hub.values["checkpoint"] == "distilbert-base-uncased" and hub.values["contextual_checkpoint"] == "bundled"
    with pytest.raises(UsageError, match=r"parameter checkpoint=\./nope: .*/nope is not a folder; expected an existing "
                                         r"folder \(relative to .*\) or a Hugging Face hub model name"):
        runner.resolve_parameters(str(profile), None, ["checkpoint=./nope"], base=tmp_path)


def test_code_hash_ignores_the_runner_but_sees_lesson_code(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.undo()
    package = tmp_path / "toxhelpers"
    package.mkdir()
    (package / "data.py").write_text("A = 1\n")
    (package / "runner.py").write_text("B = 1\n")
    monkeypatch.setattr(runner, "PACKAGE_DIR", package)
    first = runner.code_hash()
    (package / "runner.py").write_text("B = 2\n")
    assert runner.code_hash() == first
    (package / "data.py").write_text("A = 2\n")
    assert runner.code_hash() != first


def test_compare_metrics_tolerance() -> None:
    left = {"a.acc": 0.9000, "a.rows": 10, "a.hash": "x", "a.only": 1}
    right = {"a.acc": 0.9004, "a.rows": 10, "a.hash": "x"}
    assert runner.compare_metrics(left, right, tolerance=1e-3) == ["a.only: only in this run"]
    assert runner.compare_metrics({"a.acc": 0.9}, {"a.acc": 0.91}, 1e-3) == ["a.acc: 0.9 vs 0.91"]
    assert runner.compare_metrics({"a.rows": 10}, {"a.rows": 11}, 1.0) == ["a.rows: 10 vs 11"]
    timings = {"a.fit_seconds": 1.0, "a.texts_per_s": 5.0, "a.timing.speedup": 2.0, "a.throughput.fast": 3.0}
    assert runner.compare_metrics(timings, {key: value * 2 for key, value in timings.items()}, 0.0) == []


# ------------------------------------------------------------------ runs (tiny kernels)


def test_run_writes_the_whole_report(lessons: Path, profile: Path) -> None:
    result = runner.run(options(lessons, profile))
    assert result.ok and result.exit_code == 0, result.failure
    out = lessons.parent / "report"
    for name in ("01_make", "02_use"):
        assert (out / "notebooks" / f"{name}.ipynb").is_file()
        assert "<html" in (out / "html" / f"{name}.html").read_text()[:2000].lower()
        assert (out / "logs" / f"{name}.log").is_file()
    assert "made [1, 2]" in (out / "logs" / "01_make.log").read_text()
    assert (out / "figures" / "make_numbers.png").read_bytes()[:4] == b"\x89PNG"

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == {"make.count": 2, "make.total": 3.0, "use.scaled": [2, 4], "use.scaled_total": 6.0}
    assert yaml.safe_load((out / "parameters.yaml").read_text())["size"] == 2

    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "complete"
    assert record["versions"]["papermill"] and record["versions"]["python"]
    assert record["inputs"]["make.numbers"]["sha256"] == runner.sha256_file(lessons.parent / "numbers.txt")
    assert record["peak_memory_mb"]["kernels"] > 0
    by_name = {item["name"]: item for item in record["notebooks"]}
    assert by_name["02_use.ipynb"]["wall_seconds"] > 0
    assert by_name["02_use.ipynb"]["parameters"] == {"artifacts_dir": str(out / "artifacts")}

    summary = (out / "summary.md").read_text()
    assert "| 01_make | total | 3.0000 | 1.5000 | 0.9218 |" in summary
    assert "| 02_use | scaled total | 6.0000 | – | – |" in summary
    assert "Article (published, Kaggle test set)" in summary


def test_resume_skips_unchanged_and_reruns_what_changed(lessons: Path, profile: Path) -> None:
    assert runner.run(options(lessons, profile)).ok
    assert statuses(runner.run(options(lessons, profile))) == {"01_make": "reused", "02_use": "reused"}

    # A parameter only 02 reads: 01 is reused, 02 reruns.
    result = runner.run(options(lessons, profile, overrides=["scale=3"]))
    assert statuses(result) == {"01_make": "reused", "02_use": "ran"}
    assert "scale (notebook default) -> 3" in result.status("02_use").reason
    assert result.metrics["use.scaled_total"] == 9.0

    # A data file 01 recorded as input changed: 01 reruns, and 02 because its input changed.
    (lessons.parent / "numbers.txt").write_text("5\n6\n7\n")
    result = runner.run(options(lessons, profile, overrides=["scale=3"]))
    assert statuses(result) == {"01_make": "ran", "02_use": "ran"}
    assert "numbers.txt missing or changed" in result.status("01_make").reason
    assert "input artifacts changed" in result.status("02_use").reason

    # 01 reruns (its source changed) but writes the same artifacts: 02 is still reused.
    notebook = nbformat.read(lessons / "01_make.ipynb", as_version=4)
    notebook.cells[2].source += "\n# a comment"
    nbformat.write(notebook, lessons / "01_make.ipynb")
    assert statuses(runner.run(options(lessons, profile, overrides=["scale=3"]))) == {
        "01_make": "ran", "02_use": "reused"}

    # An output deleted: the notebook that wrote it reruns; an executed notebook deleted: same.
    (lessons.parent / "report" / "artifacts" / "metrics" / "use.json").unlink()
    assert statuses(runner.run(options(lessons, profile, overrides=["scale=3"]))) == {
        "01_make": "reused", "02_use": "ran"}
    (lessons.parent / "report" / "html" / "01_make.html").unlink()
    result = runner.run(options(lessons, profile, overrides=["scale=3"]))
    assert statuses(result)["01_make"] == "ran" and "html/01_make.html" in result.status("01_make").reason

    # --force reruns everything.
    assert statuses(runner.run(options(lessons, profile, overrides=["scale=3"], force=True))) == {
        "01_make": "ran", "02_use": "ran"}


def test_compare_to_reports_match_and_differences(lessons: Path, profile: Path, capsys) -> None:
    argv = ["--profile", str(profile), "--notebooks-dir", str(lessons), "--quiet"]
    first, second = lessons.parent / "first", lessons.parent / "second"
    assert runner.main(argv + ["--out", str(first)]) == 0
    assert runner.main(argv + ["--out", str(second), "--compare-to", str(first)]) == 0
    assert f"metrics match {first} within tolerance 0.001" in capsys.readouterr().err
    assert runner.main(argv + ["--out", str(second), "--dry-run", "--compare-to", str(first)]) == 0
    captured = capsys.readouterr()
    assert "metrics match" not in captured.err and f"then compare with {first} (4 metrics" in captured.out
    assert runner.main(argv + ["--out", str(second), "-p", "scale=3", "--compare-to", str(first)]) == 3
    assert "differs from" in capsys.readouterr().err


def test_half_written_artifacts_are_never_trusted(lessons: Path, profile: Path) -> None:
    assert runner.run(options(lessons, profile)).ok
    artifacts = lessons.parent / "report" / "artifacts"
    (artifacts / "data" / ".numbers.json.abc.tmp").write_text("[1,")  # an interrupted atomic write
    assert statuses(runner.run(options(lessons, profile))) == {"01_make": "reused", "02_use": "reused"}
    (artifacts / "data" / "numbers.json").write_text("[1,")  # truncated in place
    assert statuses(runner.run(options(lessons, profile))) == {"01_make": "ran", "02_use": "reused"}
    # A run killed mid-notebook has no manifest for it (deleted before the notebook starts).
    (lessons.parent / "report" / ".state" / "02_use.json").unlink()
    assert statuses(runner.run(options(lessons, profile))) == {"01_make": "reused", "02_use": "ran"}


def test_failure_stops_with_notebook_cell_and_error(lessons: Path, profile: Path, capsys) -> None:
    write_notebook(lessons / "03_after.ipynb", ['artifacts_dir = "../artifacts"', "print('should not run')"])
    argv = ["--profile", str(profile), "--notebooks-dir", str(lessons), "--out", str(lessons.parent / "report"),
            "--quiet", "-p", "fail=true"]
    assert runner.main(argv) == 1
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

    assert runner.main(argv[:-2]) == 0  # fixed: 01 is reused, 02 and 03 run
    assert "01_make.ipynb reused: unchanged since" in capsys.readouterr().err


def test_running_a_subset_keeps_other_results_only_while_current(lessons: Path, profile: Path) -> None:
    assert runner.run(options(lessons, profile)).ok
    result = runner.run(options(lessons, profile, only=["1"], overrides=["size=3"]))
    assert statuses(result) == {"01_make": "ran", "02_use": "not selected"}
    assert "stale" in result.status("02_use").reason
    assert "use.scaled_total" not in result.metrics  # its numbers describe the old 01 output
    assert result.metrics["make.total"] == 6.0
