"""``--compare-to`` and ``--tolerance``: metrics compared with another run's."""

from __future__ import annotations

from pathlib import Path

from tiny_lessons import lessons, profile, stable_code  # noqa: F401 (fixtures)
from toxhelpers.run.cli import main
from toxhelpers.run.compare import compare_metrics


def test_compare_metrics_tolerance() -> None:
    left = {"a.acc": 0.9000, "a.rows": 10, "a.hash": "x", "a.only": 1}
    right = {"a.acc": 0.9004, "a.rows": 10, "a.hash": "x"}
    assert compare_metrics(left, right, tolerance=1e-3) == ["a.only: only in this run"]
    assert compare_metrics({"a.acc": 0.9}, {"a.acc": 0.91}, 1e-3) == ["a.acc: 0.9 vs 0.91"]
    assert compare_metrics({"a.rows": 10}, {"a.rows": 11}, 1.0) == ["a.rows: 10 vs 11"]
    timings = {"a.fit_seconds": 1.0, "a.texts_per_s": 5.0, "a.timing.speedup": 2.0, "a.throughput.fast": 3.0}
    assert compare_metrics(timings, {key: value * 2 for key, value in timings.items()}, 0.0) == []


def test_compare_to_reports_match_and_differences(lessons: Path, profile: Path, capsys) -> None:
    argv = ["--profile", str(profile), "--notebooks-dir", str(lessons), "--quiet"]
    first, second = lessons.parent / "first", lessons.parent / "second"
    assert main(argv + ["--out", str(first)]) == 0
    assert main(argv + ["--out", str(second), "--compare-to", str(first)]) == 0
    assert f"metrics match {first} within tolerance 0.001" in capsys.readouterr().err
    assert main(argv + ["--out", str(second), "--dry-run", "--compare-to", str(first)]) == 0
    captured = capsys.readouterr()
    assert "metrics match" not in captured.err and f"then compare with {first} (4 metrics" in captured.out
    assert main(argv + ["--out", str(second), "-p", "scale=3", "--compare-to", str(first)]) == 3
    assert "differs from" in capsys.readouterr().err


def test_latencies_and_load_count_as_timings_not_results() -> None:
    from toxhelpers.run.compare import is_timing

    for key in ("serving.latency.ONNX int8 @ 1.median_ms", "serving.benchmark.load_average_before",
                "finetuning.fit_seconds", "finetuning.train_examples_per_s.bucketed", "training.timing.speedup"):
        assert is_timing(key), key
    for key in ("finetuning.test.at_0.5.roc_auc", "serving.int8.max_abs_difference", "data.split_hash.train"):
        assert not is_timing(key), key
