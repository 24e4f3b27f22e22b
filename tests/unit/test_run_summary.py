"""The report folder a run writes: notebooks, HTML, logs, figures, metrics, run.json, summary.md."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tiny_lessons import lessons, options, profile, stable_code  # noqa: F401 (fixtures)
from toxhelpers.artifacts import sha256_file
from toxhelpers.run.orchestrate import run


def test_run_writes_the_whole_report(lessons: Path, profile: Path) -> None:
    result = run(options(lessons, profile))
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
    assert record["inputs"]["make.numbers"]["sha256"] == sha256_file(lessons.parent / "numbers.txt")
    assert record["peak_memory_mb"]["kernels"] > 0
    by_name = {item["name"]: item for item in record["notebooks"]}
    assert by_name["02_use.ipynb"]["wall_seconds"] > 0
    assert by_name["02_use.ipynb"]["parameters"] == {"artifacts_dir": str(out / "artifacts")}

    summary = (out / "summary.md").read_text()
    assert "| 01_make | total | 3.0000 | 1.5000 | 0.9218 |" in summary
    assert "| 02_use | scaled total | 6.0000 | – | – |" in summary
    assert "Article (published, Kaggle test set)" in summary


def test_a_headline_with_an_interval_shows_it_beside_the_value() -> None:
    from toxhelpers.run.summary import headline_value

    assert headline_value({"value": 0.96634, "interval": [0.96, 0.973]}) == "0.9663 [0.9600, 0.9730]"
    assert headline_value({"value": 0.96634}) == "0.9663"


def test_the_model_card_is_copied_only_while_its_lesson_is_current(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from toxhelpers.artifacts import artifact_path
    from toxhelpers.run.run_folder import RunFolder
    from toxhelpers.run.summary import MODEL_CARD, copy_model_card

    folder = RunFolder(tmp_path / "report")
    ctx = SimpleNamespace(folder=folder)
    card = artifact_path(folder.artifacts, "model_card")
    card.parent.mkdir(parents=True)
    card.write_text("# Model card\n")
    assert copy_model_card(ctx, [("10_confidence.ipynb", {"section": "confidence"})]) == MODEL_CARD
    assert (folder.root / MODEL_CARD).read_text() == "# Model card\n"
    assert copy_model_card(ctx, [("01_data.ipynb", {"section": "data"})]) is None
    assert not (folder.root / MODEL_CARD).exists()  # a stale card is not left beside a new summary


def test_out_never_clobbers_a_folder_that_is_not_a_report(lessons: Path, profile: Path, capsys) -> None:
    """Issue 22 row 5: --out on a folder of one's own deleted its figures and model card and
    overwrote summary.md; at the repository root it overwrote a lesson. Now a non-empty folder
    that is not a report is refused (also with --dry-run), and in a report only files a run
    wrote are ever deleted."""
    from toxhelpers.run.cli import main

    base = ["--profile", str(profile), "--notebooks-dir", str(lessons), "--quiet"]
    mine = lessons.parent / "U"
    (mine / "figures").mkdir(parents=True)
    (mine / "figures" / "mine.png").write_bytes(b"png")
    (mine / "summary.md").write_text("notes")
    for extra in ([], ["--dry-run"]):
        assert main(base + ["--only", "01", "--out", str(mine), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "the folder holds files that are not a toxhelpers report (figures, " \
            "summary.md); expected a new or empty folder, or an earlier run's report folder" in err, err
    assert main(base + ["--out", str(lessons.parent)]) == 2  # a project folder: notebooks/ and more
    assert sorted(path.name for path in mine.rglob("*")) == ["figures", "mine.png", "summary.md"]
    assert (mine / "summary.md").read_text() == "notes"

    report = lessons.parent / "report"
    assert main(base + ["--out", str(report)]) == 0
    (report / "figures" / "mine.png").write_bytes(b"png")
    assert (report / "figures" / "make_numbers.png").is_file()
    settings = yaml.safe_load(profile.read_text())
    settings["parameters"]["size"] = 3  # a profile value may cover a lesson the run leaves out (-p may not)
    profile.write_text(yaml.safe_dump(settings))
    assert main(base + ["--out", str(report), "--only", "02"]) == 0  # 01 is stale now
    assert not (report / "figures" / "make_numbers.png").exists()  # the run's own stale figure goes
    assert (report / "figures" / "mine.png").read_bytes() == b"png"  # someone else's stays
