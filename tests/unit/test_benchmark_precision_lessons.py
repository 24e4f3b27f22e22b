"""benchmarks/precision_lessons.py: the record it writes from measured results (nothing here runs
a lesson), and the combining of two runs' records into one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
import benchmark_records  # noqa: E402
import precision_lessons  # noqa: E402

MACHINE = {"cpus": 2, "cpu": {"model": "AMD EPYC", "bf16": True}}


def outcome(wall: float, peak: float, **metrics: float) -> dict:
    return {"wall_seconds": wall, "peak_memory_mb": peak, "metrics": metrics}


def nine() -> dict:
    """Lesson 9's results as measured: its headline keys are spelled "validation ROC-AUC"."""
    validation, test = precision_lessons.HEADLINES["09"]
    return {"float32": outcome(126.9, 3139, **{validation: 0.97754, test: 0.96205, "bias.mitigation.fit_seconds": 64.3}),
            "mixed_bfloat16": outcome(120.9, 2873, **{validation: 0.97732, test: 0.96209, "bias.mitigation.fit_seconds": 60.5}),
            "float32_differs_from_report": []}


def test_quality_metrics_are_found_whatever_their_spelling():
    assert precision_lessons.is_quality("bias.before_after.mitigated.validation ROC-AUC")
    assert precision_lessons.is_quality("training.validation.roc_auc")
    assert not precision_lessons.is_quality("bias.mitigation.fit_seconds")
    assert not precision_lessons.is_quality("bias.mitigation.runs")


def test_the_record_gives_each_lessons_ratio_and_its_validation_and_test_cost():
    lines = precision_lessons.markdown({"machine": MACHINE, "report": "reports/full", "results": {"09": nine()}})
    row = next(line for line in lines if line.startswith("| 09 |"))
    assert row == ("| 09 | 126.9 | 120.9 | 0.95x | 3,139 | 2,873 | 0.97754 | 0.97732 | -0.00022 | "
                   "0.96205 | 0.96209 | +0.00004 |")
    moved = [line for line in lines if line.startswith("- ")]
    assert moved == ["- bias.before_after.mitigated.validation ROC-AUC: float32 0.9775, bf16 0.9773 (-0.0002)"]


def test_two_runs_records_combine_into_one_and_refuse_another_machine(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setattr(benchmark_records, "RESULTS_DIR", tmp_path / "results")
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"machine": MACHINE, "report": "r", "results": {"09": nine()}}))
    five = {"float32": outcome(94.7, 1785, **{"training.validation.roc_auc": 0.92390}),
            "mixed_bfloat16": outcome(92.8, 1710, **{"training.validation.roc_auc": 0.92390}),
            "float32_differs_from_report": ["training.grid_seconds_x"]}
    second.write_text(json.dumps({"machine": MACHINE, "report": "r", "results": {"05": five}}))
    assert precision_lessons.main(["--from-records", str(first), str(second), "--date", "2026-12-07"]) == 0
    record = json.loads((tmp_path / "results" / "precision_lessons_2026-12-07.json").read_text())
    assert list(record["results"]) == ["09", "05"] and record["combined_from"] == ["a.json", "b.json"]
    text = (tmp_path / "results" / "precision_lessons_2026-12-07.md").read_text()
    assert "| 05 | 94.7 | 92.8 | 0.98x | 1,785 | 1,710 | 0.92390 | 0.92390 | +0.00000 |  |  |  |" in text
    assert "- lesson 05: none" in text and "did NOT reproduce the report: training.grid_seconds_x" in text
    second.write_text(json.dumps({"machine": {**MACHINE, "cpus": 4}, "report": "r", "results": {"05": five}}))
    with pytest.raises(SystemExit, match="different machines or reports"):
        precision_lessons.main(["--from-records", str(first), str(second)])
