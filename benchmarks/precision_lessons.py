"""float32 against mixed_bfloat16 on whole lessons (issue 23, point 4): wall time, peak memory,
validation ROC-AUC and the test metrics, back to back on one machine.

Not a test: nothing here passes or fails. The lessons have no precision parameter (float32 is the
default the record supports: benchmarks/results/bf16_lesson6_2026-12-06.md), so this runs a copy
of each lesson whose setup starts by setting Keras' dtype policy, with the run tooling, into a
copy of a finished full run (lessons 1-10 at least), one copy per (lesson, precision):

    .venv/bin/python benchmarks/precision_lessons.py --report reports/full --lessons 05 09

Lesson 6 is measured through lesson 11, which runs lesson 6's recipe under a chosen precision
(``--only 11 -p scaling_rows=0 -p precision=...``; the record above). Precisions alternate
(float32 first for the first lesson, then the other order), so a drift in the machine's load
falls on both. The float32 copy must reproduce the report's own numbers: that is printed.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, required=True, help="a finished full run (its folder)")
    parser.add_argument("--lessons", nargs="+", default=["05", "09"])
    parser.add_argument("--scratch", type=Path, default=None, help="where the copies go (default: a temp folder)")
    args = parser.parse_args(argv)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="precision-"))
    reference = json.loads((args.report / "metrics.json").read_text())
    results: dict[str, dict[str, dict]] = {}
    for index, lesson in enumerate(args.lessons):
        results[lesson] = {}
        for precision in PRECISIONS if index % 2 == 0 else PRECISIONS[::-1]:
            results[lesson][precision] = outcome = run_lesson(args.report, lesson, precision, scratch)
            print(f"lesson {lesson} {precision}: {outcome['wall_seconds']:.1f} s, {outcome['peak_memory_mb']:.0f} MB",
                  flush=True)
        differing = [key for key, value in results[lesson]["float32"]["metrics"].items()
                if key in reference and isinstance(value, float) and abs(value - reference[key]) > 1e-6
                and not is_timing(key)]
        print(f"lesson {lesson} float32 vs the report: {len(differing)} non-timing metrics differ beyond 1e-6"
              + (f" ({', '.join(differing[:5])})" if differing else ""), flush=True)
        results[lesson]["float32_differs_from_report"] = differing
    lines = ["# float32 against mixed_bfloat16, whole lessons", "",
             f"Machine: {machine()}. Report: {args.report}. Each lesson ran twice back to back "
             "(a copy of the report each time), precisions alternating.", "",
             "| lesson | float32 wall (s) | bf16 wall (s) | bf16 / float32 | float32 peak (MB) | bf16 peak (MB) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for lesson, by_precision in results.items():
        f32, b16 = by_precision["float32"], by_precision["mixed_bfloat16"]
        lines.append(f"| {lesson} | {f32['wall_seconds']:.1f} | {b16['wall_seconds']:.1f} | "
                     f"{b16['wall_seconds'] / f32['wall_seconds']:.2f}x | {f32['peak_memory_mb']:.0f} | {b16['peak_memory_mb']:.0f} |")
    lines += ["", "Quality metrics that differ between the two (|difference| > 1e-4, timings aside):", ""]
    for lesson, by_precision in results.items():
        f32, b16 = by_precision["float32"]["metrics"], by_precision["mixed_bfloat16"]["metrics"]
        for key in sorted(set(f32) & set(b16)):
            a, b = f32[key], b16[key]
            if isinstance(a, float) and isinstance(b, float) and abs(a - b) > 1e-4 and not is_timing(key) \
                    and ("roc_auc" in key or "pr_auc" in key or "f1" in key):
                lines.append(f"- {key}: float32 {a:.4f}, bf16 {b:.4f} ({b - a:+.4f})")
    print("\n".join(lines))
    stem = save_record("precision_lessons", {"machine": machine(), "report": str(args.report), "results": results}, lines)
    print(f"record: {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
