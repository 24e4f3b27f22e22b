"""float32 against mixed_bfloat16 on whole lessons (issue 23, point 4): wall time, peak memory,
validation ROC-AUC and the test metrics, back to back on one machine.

Not a test: nothing here passes or fails. The lessons have no precision parameter (float32 is the
default the record supports: benchmarks/results/bf16_lesson6_2026-12-06.md), so this runs a copy
of each lesson whose setup starts by setting Keras' dtype policy, with the run tooling, into a
copy of a finished full run (lessons 1-10 at least), one copy per (lesson, precision):

    .venv/bin/python benchmarks/precision_lessons.py --report reports/full --lessons 05 06 09
    .venv/bin/python benchmarks/precision_lessons.py --from-records A.json B.json   # one record of two runs

Lesson 6 runs whole here too, so its test metrics come with it (lesson 11 runs lesson 6's recipe
under a chosen precision, validation only: ``--only 11 -p scaling_rows=0 -p precision=...``).
Precisions alternate (float32 first for the first lesson, then the other order), so a drift in the
machine's load falls on both. The float32 copy must reproduce the report's own numbers: that is
printed, and the record says so where it did not.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmark_records import machine, save_record

from toxhelpers.recording import is_timing

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = PROJECT_ROOT / "notebooks"
PRECISIONS = ("float32", "mixed_bfloat16")
POLICY_LINE = "from toxhelpers import distribute; distribute.set_precision({precision!r})  # benchmark copy\n"


def notebooks_with_precision(folder: Path, lesson: str, precision: str) -> Path:
    """All lessons copied into ``folder``; in ``lesson``, the first code cell after the parameters
    sets the dtype policy before anything is built."""
    shutil.copytree(NOTEBOOKS, folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    path = next(folder.glob(f"{lesson}_*.ipynb"))
    notebook = json.loads(path.read_text())
    cells = notebook["cells"]
    parameters = next(index for index, cell in enumerate(cells) if "parameters" in cell.get("metadata", {}).get("tags", []))
    setup = next(cell for cell in cells[parameters + 1:] if cell["cell_type"] == "code")
    setup["source"] = [POLICY_LINE.format(precision=precision)] + list(setup["source"])
    path.write_text(json.dumps(notebook, indent=1))
    return path


def run_lesson(report: Path, lesson: str, precision: str, scratch: Path) -> dict:
    """The lesson under ``precision`` in a copy of ``report``: its record, wall time and peak memory."""
    work = scratch / f"{lesson}-{precision}"
    shutil.copytree(report, work / "report", symlinks=True)
    notebooks = work / "notebooks"
    notebooks_with_precision(notebooks, lesson, precision)
    command = [sys.executable, "-m", "toxhelpers", "run", "--profile", "full", "--out", str(work / "report"),
               "--notebooks-dir", str(notebooks), "--only", lesson, "--quiet"]
    subprocess.run(command, cwd=PROJECT_ROOT, check=True)
    run = json.loads((work / "report" / "run.json").read_text())
    status = next(entry for entry in run["notebooks"] if entry["name"].startswith(lesson))
    if status["status"] != "ran":
        raise RuntimeError(f"lesson {lesson} under {precision}: {status['status']} ({status.get('reason')})")
    metrics = {}
    for section in status["sections"]:
        metrics.update(json.loads((work / "report" / "artifacts" / "metrics" / f"{section}.json").read_text())["metrics"])
    shutil.rmtree(work)
    return {"wall_seconds": status["wall_seconds"], "peak_memory_mb": status["peak_memory_mb"], "metrics": metrics}


# Each lesson's quality headline: validation ROC-AUC (the 0.001 bar) and the test ROC-AUC it
# reports (lesson 5 scores no test rows). Lesson 9's are those of its mitigated model.
HEADLINES = {
    "05": ("training.validation.roc_auc", None),
    "06": ("finetuning.validation.at_0.5.roc_auc", "finetuning.test.at_0.5.roc_auc"),
    "09": ("bias.before_after.mitigated.validation ROC-AUC", "bias.before_after.mitigated.test ROC-AUC"),
}
QUALITY_WORDS = ("roc_auc", "pr_auc", "f1", "bias_score", "bpsn", "fpr")


def is_quality(key: str) -> bool:
    """A quality metric, whatever its spelling ("validation ROC-AUC", "validation.roc_auc")."""
    normal = key.lower().replace("-", "_").replace(" ", "_")
    return not is_timing(key) and any(word in normal for word in QUALITY_WORDS)


def auc_cells(metrics: dict[str, dict], key: str | None) -> str:
    """``float32 | bf16 | difference`` for one headline metric, or three empty cells."""
    if key is None or key not in metrics["float32"] or key not in metrics["mixed_bfloat16"]:
        return " | ".join(["", "", ""])
    a, b = metrics["float32"][key], metrics["mixed_bfloat16"][key]
    return f"{a:.5f} | {b:.5f} | {b - a:+.5f}"


def markdown(record: dict) -> list[str]:
    """The readable record: time, memory and the headline metrics per lesson, then every quality
    metric that moved by more than 1e-4."""
    lines = ["# float32 against mixed_bfloat16, whole lessons", "",
             f"Machine: {record['machine']}. Report: {record['report']}. Each lesson ran twice back to back "
             "(a copy of the report each time), precisions alternating.", "",
             "| lesson | float32 wall (s) | bf16 wall (s) | bf16 / float32 | float32 peak (MB) | bf16 peak (MB) | "
             "validation ROC-AUC float32 | bf16 | difference | test ROC-AUC float32 | bf16 | difference |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for lesson, by_precision in record["results"].items():
        f32, b16 = by_precision["float32"], by_precision["mixed_bfloat16"]
        metrics = {name: by_precision[name]["metrics"] for name in PRECISIONS}
        validation, test = HEADLINES.get(lesson, (None, None))
        lines.append(f"| {lesson} | {f32['wall_seconds']:.1f} | {b16['wall_seconds']:.1f} | "
                     f"{b16['wall_seconds'] / f32['wall_seconds']:.2f}x | {f32['peak_memory_mb']:,.0f} | "
                     f"{b16['peak_memory_mb']:,.0f} | {auc_cells(metrics, validation)} | {auc_cells(metrics, test)} |")
    lines += ["", "Quality metrics that differ between the two by more than 1e-4 (timings aside):", ""]
    for lesson, by_precision in record["results"].items():
        f32, b16 = by_precision["float32"]["metrics"], by_precision["mixed_bfloat16"]["metrics"]
        moved = [f"- {key}: float32 {f32[key]:.4f}, bf16 {b16[key]:.4f} ({b16[key] - f32[key]:+.4f})"
                 for key in sorted(set(f32) & set(b16)) if isinstance(f32[key], float) and isinstance(b16[key], float)
                 and is_quality(key) and abs(f32[key] - b16[key]) > 1e-4]
        lines += moved or [f"- lesson {lesson}: none"]
        if by_precision.get("float32_differs_from_report"):
            lines.append(f"- lesson {lesson}: its float32 copy did NOT reproduce the report: "
                         f"{', '.join(by_precision['float32_differs_from_report'][:5])}")
    return lines


def measure(report: Path, lessons: list[str], scratch: Path) -> dict[str, dict]:
    """Each lesson under both precisions, alternating which goes first; and whether the float32
    copy reproduced the report's own numbers."""
    reference = json.loads((report / "metrics.json").read_text())
    results: dict[str, dict] = {}
    for index, lesson in enumerate(lessons):
        results[lesson] = {}
        for precision in PRECISIONS if index % 2 == 0 else PRECISIONS[::-1]:
            results[lesson][precision] = outcome = run_lesson(report, lesson, precision, scratch)
            print(f"lesson {lesson} {precision}: {outcome['wall_seconds']:.1f} s, {outcome['peak_memory_mb']:.0f} MB",
                  flush=True)
        differing = [key for key, value in results[lesson]["float32"]["metrics"].items()
                     if key in reference and isinstance(value, float) and abs(value - reference[key]) > 1e-6
                     and not is_timing(key)]
        print(f"lesson {lesson} float32 vs the report: {len(differing)} non-timing metrics differ beyond 1e-6"
              + (f" ({', '.join(differing[:5])})" if differing else ""), flush=True)
        results[lesson]["float32_differs_from_report"] = differing
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, help="a finished full run (its folder)")
    parser.add_argument("--lessons", nargs="+", default=["05", "06", "09"])
    parser.add_argument("--scratch", type=Path, default=None, help="where the copies go (default: a temp folder)")
    parser.add_argument("--from-records", nargs="+", type=Path, metavar="RECORD.json",
                        help="measure nothing: one record from earlier records' results (same machine and report)")
    parser.add_argument("--date", default=None, help="the record's date (YYYY-MM-DD; default today)")
    args = parser.parse_args(argv)
    if args.from_records:
        earlier = [json.loads(path.read_text()) for path in args.from_records]
        if len({json.dumps([item["machine"], item["report"]]) for item in earlier}) != 1:
            raise SystemExit("--from-records: the records come from different machines or reports; "
                             "expected one machine and one report")
        record = {**earlier[0], "results": {lesson: result for item in earlier for lesson, result in item["results"].items()},
                  "combined_from": [path.name for path in args.from_records]}
    elif args.report is None:
        raise SystemExit("expected --report (a finished full run) or --from-records")
    else:
        scratch = args.scratch or Path(tempfile.mkdtemp(prefix="precision-"))
        record = {"machine": machine(), "report": str(args.report), "results": measure(args.report, args.lessons, scratch)}
    lines = markdown(record)
    print("\n".join(lines))
    stem = save_record("precision_lessons", record, lines, date=args.date)
    print(f"record: {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
