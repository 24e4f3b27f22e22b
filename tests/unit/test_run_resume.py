"""Resume: what a rerun into the same folder reuses and what it reruns (the code hash it compares:
test_run_package_code.py)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat

from tiny_lessons import command_line, lessons, options, profile, stable_code, statuses  # noqa: F401 (fixtures)
from toxhelpers.run import resume
from toxhelpers.run.orchestrate import run


def test_a_records_measurements_are_not_part_of_its_content_as_an_input(tmp_path: Path) -> None:
    """A lesson rerun with the same results writes a record that differs only in its peak memory
    and timings; the lessons reading it used to rerun in a cascade ("input artifacts changed:
    metrics/make.json"). Its results changing still counts."""
    record_path = tmp_path / "metrics" / "make.json"
    record_path.parent.mkdir()
    record = {"section": "make", "peak_memory_mb": 100.0, "parameters": {"size": 3},
              "metrics": {"make.total": 6.0, "make.fit_seconds": 1.5}}

    def content(changes: dict) -> tuple[str, str | None]:
        record_path.write_text(json.dumps({**record, **changes}))
        info = resume.snapshot(tmp_path, resume.Hasher())["metrics/make.json"]
        return info["sha256"], resume.input_digest(info)

    first_sha, first = content({})
    measured_sha, measured = content({"peak_memory_mb": 101.5, "metrics": {**record["metrics"], "make.fit_seconds": 2.0}})
    assert measured_sha != first_sha and measured == first
    assert content({"metrics": {**record["metrics"], "make.total": 7.0}})[1] != first
    assert content({"parameters": {"size": 4}})[1] != first
    record_path.write_text("{half written")
    assert resume.input_digest(resume.snapshot(tmp_path, resume.Hasher())["metrics/make.json"]) not in (first, None)


def test_resume_skips_unchanged_and_reruns_what_changed(lessons: Path, profile: Path) -> None:
    assert run(options(lessons, profile)).ok
    assert statuses(run(options(lessons, profile))) == {"01_make": "reused", "02_use": "reused"}

    # A parameter only 02 reads: 01 is reused, 02 reruns.
    result = run(options(lessons, profile, overrides=["scale=3"]))
    assert statuses(result) == {"01_make": "reused", "02_use": "ran"}
    assert "scale (notebook default) -> 3" in result.status("02_use").reason
    assert result.metrics["use.scaled_total"] == 9.0

    # A data file 01 recorded as input changed: 01 reruns, and 02 because its input changed.
    (lessons.parent / "numbers.txt").write_text("5\n6\n7\n")
    result = run(options(lessons, profile, overrides=["scale=3"]))
    assert statuses(result) == {"01_make": "ran", "02_use": "ran"}
    assert "numbers.txt missing or changed" in result.status("01_make").reason
    assert "input artifacts changed" in result.status("02_use").reason

    # 01 reruns (its source changed) but writes the same artifacts: 02 is still reused.
    notebook = nbformat.read(lessons / "01_make.ipynb", as_version=4)
    notebook.cells[2].source += "\n# a comment"
    nbformat.write(notebook, lessons / "01_make.ipynb")
    assert statuses(run(options(lessons, profile, overrides=["scale=3"]))) == {
        "01_make": "ran", "02_use": "reused"}

    # An output deleted: the notebook that wrote it reruns; an executed notebook deleted: same.
    (lessons.parent / "report" / "artifacts" / "metrics" / "use.json").unlink()
    assert statuses(run(options(lessons, profile, overrides=["scale=3"]))) == {
        "01_make": "reused", "02_use": "ran"}
    (lessons.parent / "report" / "html" / "01_make.html").unlink()
    result = run(options(lessons, profile, overrides=["scale=3"]))
    assert statuses(result)["01_make"] == "ran" and "html/01_make.html" in result.status("01_make").reason

    # --force reruns everything.
    assert statuses(run(options(lessons, profile, overrides=["scale=3"], force=True))) == {
        "01_make": "ran", "02_use": "ran"}


def test_half_written_artifacts_are_never_trusted(lessons: Path, profile: Path) -> None:
    assert run(options(lessons, profile)).ok
    artifacts = lessons.parent / "report" / "artifacts"
    (artifacts / "data" / ".numbers.json.abc.tmp").write_text("[1,")  # an interrupted atomic write
    assert statuses(run(options(lessons, profile))) == {"01_make": "reused", "02_use": "reused"}
    (artifacts / "data" / "numbers.json").write_text("[1,")  # truncated in place
    assert statuses(run(options(lessons, profile))) == {"01_make": "ran", "02_use": "reused"}
    # A run killed mid-notebook has no manifest for it (deleted before the notebook starts).
    (lessons.parent / "report" / ".state" / "02_use.json").unlink()
    assert statuses(run(options(lessons, profile))) == {"01_make": "reused", "02_use": "ran"}


def test_running_a_subset_keeps_other_results_only_while_current(lessons: Path, profile: Path) -> None:
    assert run(options(lessons, profile)).ok
    result = run(options(lessons, profile, only=["1"], overrides=["size=3"]))
    assert statuses(result) == {"01_make": "ran", "02_use": "not selected"}
    assert "stale" in result.status("02_use").reason
    assert "use.scaled_total" not in result.metrics  # its numbers describe the old 01 output
    assert result.metrics["make.total"] == 6.0


def test_a_subset_never_runs_on_an_earlier_lessons_changed_output(lessons: Path, profile: Path, capsys) -> None:
    """Issue 22 row 2: --only 02 after 01's output was tampered with used to run 02 on it and
    report success; now nothing runs and one line names the file and the notebook to rerun."""
    from toxhelpers.run.cli import main

    out, argv = lessons.parent / "report", command_line(lessons, profile)
    assert main(argv) == 0
    numbers = out / "artifacts" / "data" / "numbers.json"
    numbers.write_text("[100, 200]")
    capsys.readouterr()
    for selection in (["--only", "02"], ["--from", "02"], ["--only", "02", "--dry-run"]):
        assert main(argv + selection) == 2, selection
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "artifacts/data/numbers.json changed since 01_make.ipynb wrote it" in err \
            and "rerun 01_make.ipynb first (e.g. --from 01)" in err, err
    assert main(argv) == 0  # 01 selected: it reruns and the run goes on
    numbers.unlink()
    assert main(argv + ["--only", "02"]) == 2
    assert "artifacts/data/numbers.json is missing since 01_make.ipynb wrote it" in capsys.readouterr().err


def test_files_in_a_folder_parameter_are_inputs(lessons: Path, profile: Path, capsys) -> None:
    """Issue 22 row 8: a folder a lesson reads (lesson 9's templates_dir) was neither hashed nor
    recorded, so changing a file in it left the lesson reused."""
    from tiny_lessons import write_notebook
    from toxhelpers.run.cli import main

    templates = lessons.parent / "templates"
    templates.mkdir()
    (templates / "words.csv").write_text("term\ngay\n")
    write_notebook(lessons / "03_read.ipynb", ['artifacts_dir = "../artifacts"\ntemplates_dir = None',
                                               "import pathlib\npathlib.Path(artifacts_dir, 'read.txt').write_text("
                                               "pathlib.Path(templates_dir, 'words.csv').read_text())"])
    argv = command_line(lessons, profile, "-p", f"templates_dir={templates}", "--only", "03")
    assert main(argv) == 0
    assert main(argv) == 0 and "03_read.ipynb reused" in capsys.readouterr().err
    (templates / "words.csv").write_text("term\nqueer\n")
    assert main(argv + ["--dry-run"]) == 0
    assert "03_read.ipynb: would run: files in templates_dir changed" in capsys.readouterr().out
    assert main(argv) == 0
    assert (lessons.parent / "report" / "artifacts" / "read.txt").read_text() == "term\nqueer\n"


def test_a_file_planted_among_a_lessons_outputs_makes_it_stale(lessons: Path, profile: Path, capsys) -> None:
    """Issue 22 row 11: a weight file planted in lesson 6's model folder changed what lesson 7
    loaded, and --dry-run still reused everything."""
    from tiny_lessons import write_notebook
    from toxhelpers.run.cli import main

    write_notebook(lessons / "03_save.ipynb", ['artifacts_dir = "../artifacts"',
                                               "import pathlib\nfolder = pathlib.Path(artifacts_dir, 'saved', 'encoder')\n"
                                               "folder.mkdir(parents=True, exist_ok=True)\n"
                                               "(folder / 'tf_model.h5').write_text('weights')"])
    argv = command_line(lessons, profile)
    assert main(argv) == 0
    (lessons.parent / "report" / "artifacts" / "saved" / "encoder" / "model.safetensors").write_text("planted")
    (lessons.parent / "report" / "artifacts" / "metrics" / "notes.json").write_text("{}")  # a shared folder
    capsys.readouterr()
    assert main(argv + ["--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "03_save.ipynb: would run: artifacts/saved/encoder/model.safetensors appeared among its outputs, " \
           "written by no lesson" in printed
    assert "01_make.ipynb: would reuse" in printed and "02_use.ipynb: would reuse" in printed


def test_a_moved_or_copied_report_resumes(lessons: Path, profile: Path) -> None:
    """Issue 22: the absolute artifacts_dir was part of every record, so a report moved or copied
    elsewhere reran every lesson; paths inside the report are now kept relative to it."""
    first = lessons.parent / "report"
    assert run(options(lessons, profile)).ok
    copy = lessons.parent / "elsewhere" / "copy"
    shutil.copytree(first, copy)
    assert statuses(run(options(lessons, profile, out=copy))) == {"01_make": "reused", "02_use": "reused"}
    moved = lessons.parent / "moved"
    first.rename(moved)
    assert statuses(run(options(lessons, profile, out=moved))) == {"01_make": "reused", "02_use": "reused"}
    (copy / "artifacts" / "data" / "numbers.json").write_text("[7]")  # the copy is checked on its own files
    assert statuses(run(options(lessons, profile, out=copy)))["01_make"] == "ran"


def test_a_reused_notebook_reports_the_time_and_memory_of_the_run_that_executed_it(lessons: Path, profile: Path) -> None:
    """A reused lesson used to have no peak memory in run.json (benchmarks/scaling.py kept its own
    copy); the manifest now keeps both costs, and run.json and summary.md give them marked as
    measured in the earlier run. Only the first run starts kernels."""
    report = lessons.parent / "report"
    first = run(options(lessons, profile))
    assert first.ok
    ran = {item.name: item for item in first.notebooks}
    for name, item in ran.items():
        state = json.loads((report / ".state" / name.replace(".ipynb", ".json")).read_text())
        assert item.measured_in == "this run" and item.peak_memory_mb > 0
        # where the peak was seen; these lessons' cells are so small that on a busy machine the
        # kernel's own start can be the most the process held
        assert re.fullmatch(r"cell \d+ of \d+|the kernel's start", item.peak_memory_cell)
        assert (state["wall_seconds"], state["peak_memory_mb"], state["peak_memory_cell"]) == (
            item.wall_seconds, item.peak_memory_mb, item.peak_memory_cell)
        # the level at the end of each cell that raised the peak, rising, the last one the peak
        cells, levels = zip(*item.memory_rises)
        assert state["memory_rises"] == [list(rise) for rise in item.memory_rises]  # in the order they ran
        assert levels == tuple(sorted(levels)) and levels[-1] == item.peak_memory_mb
        assert len(set(cells)) == len(cells) and item.peak_memory_cell in cells  # the peak's cell raised it
        numbers = [int(cell.split()[1]) for cell in cells if re.fullmatch(r"cell \d+ of \d+", cell)]
        assert numbers == sorted(numbers)  # (papermill's injected parameters cell is "a cell": not in the notebook)

    assert statuses(run(options(lessons, profile))) == {"01_make": "reused", "02_use": "reused"}
    record = {item["name"]: item for item in json.loads((report / "run.json").read_text())["notebooks"]}
    summary = (report / "summary.md").read_text()
    for name, item in ran.items():
        assert record[name]["status"] == "reused" and record[name]["measured_in"] == "earlier run"
        assert (record[name]["wall_seconds"], record[name]["peak_memory_mb"], record[name]["peak_memory_cell"],
                record[name]["memory_rises"]) == (item.wall_seconds, item.peak_memory_mb, item.peak_memory_cell,
                                                  [list(rise) for rise in item.memory_rises])
        assert (f"| {name} | reused | *{item.wall_seconds:.1f}* | *{item.peak_memory_mb:,.0f} ({item.peak_memory_cell})* "
                "| unchanged since") in summary
    assert "peak memory of a notebook" not in summary  # nothing executed in this run

    # A manifest written before peak memory was kept: still reused, its time kept, its memory unknown;
    # a notebook left out of the run (--only) reports what its manifest holds, marked the same way.
    state = report / ".state" / "01_make.json"
    state.write_text(json.dumps({key: value for key, value in json.loads(state.read_text()).items()
                                 if key not in ("peak_memory_mb", "peak_memory_cell")}))
    assert statuses(run(options(lessons, profile))) == {"01_make": "reused", "02_use": "reused"}
    record = {item["name"]: item for item in json.loads((report / "run.json").read_text())["notebooks"]}
    assert record["01_make.ipynb"]["peak_memory_mb"] is None and record["01_make.ipynb"]["peak_memory_cell"] is None
    assert record["01_make.ipynb"]["wall_seconds"] == ran["01_make.ipynb"].wall_seconds
    assert f"| 01_make.ipynb | reused | *{ran['01_make.ipynb'].wall_seconds:.1f}* |  |" in (report / "summary.md").read_text()
    result = run(options(lessons, profile, only=["1"]))
    left_out = result.status("02_use")
    assert (left_out.status, left_out.measured_in, left_out.peak_memory_mb) == (
        "not selected", "earlier run", ran["02_use.ipynb"].peak_memory_mb)


# A stand-in for lesson 6's fit (named like it: the artifact table says whose checkpoints are
# whose): it notes whether a checkpoint was there when it started, saves one, stops once if a
# flag file says so (as an interrupt would), and removes the checkpoint when it completes; it
# writes one of lesson 6's declared outputs, so the run records it complete.
CHECKPOINTING = [
    'artifacts_dir = "../artifacts"\nepochs = 1',
    "import shutil\nfrom pathlib import Path\nfrom toxhelpers import recording\n"
    "from toxhelpers.artifacts import artifact_path, write_json\n"
    "folder = artifact_path(artifacts_dir, 'finetuning_checkpoint')\n"
    "found = (folder / 'latest.json').is_file()\n"
    "write_json({'step': 2}, folder / 'latest.json')\n"
    "stop = Path(artifacts_dir).resolve().parents[1] / 'stop-once'\n"
    "if stop.exists():\n    stop.unlink()\n    raise RuntimeError('stopped mid-fit')\n"
    "shutil.rmtree(folder)",
    "write_json({'resumed': found}, artifact_path(artifacts_dir, 'finetuned_metrics'))\n"
    "recording.Recorder(artifacts_dir, 'finetuning', globals()).metric('resumed', found)",
]


def test_an_interrupted_lessons_checkpoint_survives_only_into_a_rerun_of_the_same_code_and_inputs(
        lessons: Path, profile: Path) -> None:
    """Only lesson 6's stand-in runs (--only 06): six short kernels. Another parameter stands for
    any change of the lesson's key (its source, parameters, code and versions hash together)."""
    from tiny_lessons import write_notebook

    write_notebook(lessons / "06_finetuning.ipynb", CHECKPOINTING)
    flag = lessons.parent / "stop-once"
    checkpoint = lessons.parent / "report" / "artifacts" / ".checkpoints" / "finetuning" / "latest.json"
    only_06 = dict(only=["06"])

    flag.touch()
    assert run(options(lessons, profile, **only_06)).failure.notebook == "06_finetuning.ipynb" and checkpoint.is_file()
    result = run(options(lessons, profile, **only_06))  # the same code, parameters and inputs: resumed
    assert statuses(result)["06_finetuning"] == "ran" and result.metrics["finetuning.resumed"] is True
    manifest = (lessons.parent / "report" / ".state" / "06_finetuning.json").read_text()
    assert ".checkpoints" not in manifest  # neither an input nor an output of the lesson

    flag.touch()
    assert not run(options(lessons, profile, overrides=["epochs=2"], **only_06)).ok and checkpoint.is_file()
    result = run(options(lessons, profile, overrides=["epochs=3"], **only_06))  # another key: not resumed
    assert result.ok and result.metrics["finetuning.resumed"] is False

    flag.touch()  # a key whose checkpoint would be resumed, but for --force
    assert not run(options(lessons, profile, overrides=["epochs=4"], **only_06)).ok and checkpoint.is_file()
    result = run(options(lessons, profile, overrides=["epochs=4"], force=True, **only_06))
    assert result.ok and result.metrics["finetuning.resumed"] is False
