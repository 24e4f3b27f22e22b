"""The report of a run: what happened to each notebook, and the files that say it.

``metrics.json``, ``run.json`` and ``summary.md`` are rebuilt after every run from the records
(``artifacts/metrics/<section>.json``) of the notebooks whose results are current, never from
scraping cell output; the final table on the terminal says the same in brief.
"""

from __future__ import annotations

import math
import resource
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toxhelpers.artifacts import atomic_path, read_json, write_json, write_text
from toxhelpers.run.execute import Failure, kernel_description
from toxhelpers.run.progress import say
from toxhelpers.run.resume import Context, utc_now
from toxhelpers.run.run_folder import RunFolder

SUMMARY_VERSIONS = ("python", "tensorflow", "transformers", "toxhelpers")
THIS_RUN, EARLIER_RUN = "this run", "earlier run"  # NotebookStatus.measured_in
ARTICLE = {"test accuracy": 0.9218, "test ROC-AUC": 0.969, "majority baseline (full Kaggle test)": 0.9048}


@dataclass
class NotebookStatus:
    """One notebook's outcome in this invocation."""

    name: str
    status: str  # ran | reused | skipped (this Python cannot run it) | failed | not run | not selected
    reason: str = ""
    wall_seconds: float | None = None
    peak_memory_mb: float | None = None  # its kernel and the kernel's children, at their largest
    peak_memory_cell: str | None = None  # "cell 26 of 33": the code cell running when the kernel first came within 1% of that peak
    # [["cell 17 of 31", 2701], ["cell 19 of 31", 2755]]: in the order they ran, each cell that raised the
    # high-water mark and the level (MB) it left it at (a list: run.json's keys are sorted)
    memory_rises: list[tuple[str, int]] = field(default_factory=list)
    # Where wall_seconds and peak_memory_mb were measured: "this run" (it executed now), "earlier run"
    # (reused, or not selected: the execution its manifest records), None (no execution to report).
    measured_in: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)
    current: bool = False  # its artifacts are complete and match its inputs
    failure: Failure | None = None


@dataclass
class RunResult:
    """What :func:`toxhelpers.run.orchestrate.run` did; ``exit_code`` is what the command returns."""

    folder: RunFolder
    notebooks: list[NotebookStatus]
    metrics: dict[str, Any]
    failure: Failure | None = None
    interrupted: bool = False
    stop_signal: int = 2  # with interrupted: SIGINT (Ctrl-C) or SIGTERM; the exit status is 128 + it
    differences: list[str] = field(default_factory=list)
    compared: bool = False  # metrics were compared with --compare-to

    @property
    def ok(self) -> bool:
        return self.failure is None and not self.interrupted

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 128 + self.stop_signal  # 130 after Ctrl-C, 143 after SIGTERM, as a shell reports them
        if self.failure:
            return 1
        return 3 if self.differences else 0

    def status(self, name: str) -> NotebookStatus:
        return next(item for item in self.notebooks if item.name == name or Path(item.name).stem == name)


def current_records(ctx: Context, statuses: list[NotebookStatus]) -> list[tuple[str, dict[str, Any]]]:
    """(notebook, record) of every up-to-date notebook, in notebook order."""
    records = []
    for item in statuses:
        if not item.current:
            continue
        for section in item.sections:
            path = ctx.folder.artifacts / "metrics" / f"{section}.json"
            if path.is_file():
                records.append((item.name, read_json(path)))
    return records


def merged_metrics(records: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for _, record in records:
        metrics.update(record.get("metrics", {}))
    return metrics


def copy_atomically(source: Path, target: Path) -> None:
    """A report file copied whole or not at all (a resume never trusts a half-written one)."""
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def copy_figures(ctx: Context, records: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Copy the recorded PNGs to ``<out>/figures``, removing ones an earlier run copied there
    that no current record lists (a figure someone else put there stays)."""
    names = [name for _, record in records for name in record.get("figures", [])]
    copied = []
    for name in names:
        source = ctx.folder.artifacts / "figures" / name
        if source.is_file():
            copy_atomically(source, ctx.folder.root / "figures" / name)
            copied.append(f"figures/{name}")
    ctx.folder.note_written(copied)
    for stale in sorted(ctx.folder.written() - set(copied)):
        if stale.startswith("figures/"):
            ctx.folder.remove_written(stale)
    return names


MODEL_CARD = "model_card.md"


def copy_model_card(ctx: Context, records: list[tuple[str, dict[str, Any]]]) -> str | None:
    """Put the model card lesson 10 wrote at the run folder's top (dropping a stale one when that
    lesson is not current): the card a reader of summary.md should open next."""
    from toxhelpers.artifacts import ARTIFACTS, artifact_path

    target = ctx.folder.root / MODEL_CARD
    written = artifact_path(ctx.folder.artifacts, "model_card")
    producer = ARTIFACTS["model_card"].lesson
    if any(record.get("section") == producer for _, record in records) and written.is_file():
        copy_atomically(written, target)
        ctx.folder.note_written([MODEL_CARD])
        return MODEL_CARD
    ctx.folder.remove_written(MODEL_CARD)
    return None


def headline_value(row: dict[str, Any]) -> str:
    """The value, with its 95% interval when the lesson measured one."""
    interval = row.get("interval")
    value = _fmt(row.get("value"))
    return f"{value} [{_fmt(interval[0])}, {_fmt(interval[1])}]" if interval else value


def collected_inputs(records: list[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Data files and weights, keyed ``<section>.<name>``, as the notebooks recorded them."""
    return {f"{record.get('section')}.{name}": description
            for _, record in records for name, description in record.get("inputs", {}).items()}


def input_rows(inputs: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(what, recorded by, path, sha256), one row per distinct file: weights that four notebooks
    load show once, named by model and by where they came from (hub, cache, bundled fallback)."""
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for key, description in inputs.items():
        section, _, name = key.partition(".")
        sha = str(description.get("sha256") or description.get("weights_sha256") or "")
        path = str(description.get("path", ""))
        if description.get("weights_file"):
            path = f"{path}/{description['weights_file']}"
        what = name
        if description.get("model_id"):
            what = f"{name}: {description['model_id']} ({description.get('source', '?')})"
        grouped.setdefault((what, path, sha), []).append(section)
    return [(what, ", ".join(sections), path, sha) for (what, path, sha), sections in grouped.items()]


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return "nan" if math.isnan(value) else f"{value:.4f}"


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _measured(item: NotebookStatus, text: str | None) -> str:
    """A notebook's wall time or memory for the summary: empty when unknown, in italics when it was
    measured in an earlier run (a reused notebook did not spend it now)."""
    if text is None:
        return ""
    return f"*{text}*" if item.measured_in == EARLIER_RUN else text


def summary_markdown(ctx: Context, result: RunResult, records: list[tuple[str, dict[str, Any]]],
                     run_record: dict[str, Any]) -> str:
    """The one-page summary: headline table, inputs, wall times."""
    lines = [f"# toxhelpers run: profile `{ctx.params.profile}`", ""]
    if ctx.params.description:
        lines += [ctx.params.description, ""]
    failure = result.failure
    lines.append(f"- **Status:** {run_record['status']}"
                 + (f" by {run_record['stopped_by']}" if run_record.get("stopped_by") else "")
                 + (f" ({', '.join(filter(None, (failure.notebook, failure.cell)))}: {_md(failure.error)})"
                    if failure else ""))
    memory = max((item.peak_memory_mb or 0 for item in result.notebooks if item.measured_in == THIS_RUN),
                 default=0)  # what this run's executions took, not a reused notebook's earlier peak
    lines.append(f"- **Finished:** {run_record['finished_at']} · wall time {run_record['wall_seconds']:.0f} s"
                 + (f" · peak memory of a notebook {memory:,.0f} MB" if memory else ""))
    source = run_record.get("data_source") or {}
    if source:
        from toxhelpers.data import describe_data

        metrics = merged_metrics(records)
        lines.append("- **Data:** " + _md(describe_data(source["origin"], f"`{source['path']}`",
                                                         metrics.get("data.train_csv_rows"),
                                                         metrics.get("data.test_rows_labelled"))))
    versions = run_record["versions"]
    shown = ", ".join(f"{name} {versions[name]}" for name in SUMMARY_VERSIONS if versions.get(name))
    lines.append(f"- **Versions:** {shown} · code {run_record['code']['git_commit']}")
    if run_record.get("model_card"):
        lines.append(f"- **Model card:** [{run_record['model_card']}]({run_record['model_card']}): what the "
                     "model is, its data, metrics with intervals, calibration and limitations")
    lines.append("")
    lines += ["## Headline metrics", "",
              "| Notebook | Metric | This run [95% interval, where measured] | Majority baseline "
              "| Article (published, Kaggle test set) |",
              "|---|---|---:|---:|---:|"]
    rows = [(name, row) for name, record in records for row in record.get("headline", [])]
    for name, row in rows:
        lines.append(f"| {Path(name).stem} | {_md(row.get('label'))} | {headline_value(row)} | "
                     f"{_fmt(row.get('baseline'))} | {_fmt(row.get('article'))} |")
    if not rows:
        lines.append("| – | no headline metrics recorded | | | |")
    lines += ["", "*Article (published)*: the numbers the article reports on Kaggle's full test set "
              f"(test accuracy {ARTICLE['test accuracy']:.2%}, test ROC-AUC {ARTICLE['test ROC-AUC']:.3f}; its "
              f"majority-class baseline there is {ARTICLE['majority baseline (full Kaggle test)']:.2%}). They are "
              "for reference, not measured by this run. The majority baseline is measured by this run, on the "
              "same rows as the metric (accuracy of always answering the most frequent class).",
              "", "## Data files and pretrained weights", "",
              "| Input | Recorded by | Path | sha256 (first 16) |", "|---|---|---|---|"]
    for what, sections, path, sha in input_rows(run_record["inputs"]):
        lines.append(f"| {_md(what)} | {_md(sections)} | `{_md(path)}` | `{sha[:16]}` |")
    lines += ["", "## Notebooks", "", "Peak memory: the notebook's kernel and any process it started, at their "
              "largest together, and the cell that was running then. *In italics*: measured in the earlier run that executed a reused (or not "
              "selected) notebook, not spent in this run.", "",
              "| Notebook | Status | Wall time (s) | Peak memory (MB) | Note |", "|---|---|---:|---:|---|"]
    for item in result.notebooks:
        wall = _measured(item, None if item.wall_seconds is None else f"{item.wall_seconds:.1f}")
        memory = _measured(item, None if item.peak_memory_mb is None else f"{item.peak_memory_mb:,.0f}"
                           + (f" ({item.peak_memory_cell})" if item.peak_memory_cell else ""))
        lines.append(f"| {item.name} | {item.status} | {wall} | {memory} | {_md(item.reason)} |")
    lines += ["", "Everything recorded is in `metrics.json`; parameters in `parameters.yaml`; versions, "
              "inputs with full sha256 and timings in `run.json`; executed notebooks in `notebooks/` "
              "and `html/`.", ""]
    return "\n".join(lines)


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory (MB) of the largest finished kernel and of this process."""
    from toxhelpers.recording import peak_memory_mb as high_water

    return {"kernels": high_water(resource.RUSAGE_CHILDREN), "runner": high_water()}


def git_commit(folder: Path) -> str | None:
    """``HEAD`` of the repository holding the notebooks, with ``+dirty`` for local changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")



def start_report(ctx: Context, started_at: str) -> None:
    """Say in run.json and summary.md, before the first notebook starts, that a run is going on:
    a run killed outright (SIGKILL, the OOM killer) then leaves "running", never the previous
    run's "complete" beside outputs it already deleted. The next run (or --dry-run) reports it."""
    import os

    write_json({"status": "running", "started_at": started_at, "pid": os.getpid(), "profile": ctx.params.profile,
                "parameters": ctx.params.values}, ctx.folder.root / "run.json")
    write_text(f"# toxhelpers run: profile `{ctx.params.profile}`\n\n- **Status:** running since {started_at} "
               f"(process {os.getpid()}). If no run is going on, it was killed before it could finish: rerun the "
               "same command to resume.\n", ctx.folder.root / "summary.md")


def unfinished_run(folder: RunFolder) -> str | None:
    """A note when the last run into ``folder`` never finished (run.json still says running, and
    no run holds the folder's lock): it was killed, and its last notebook reruns."""
    from toxhelpers.run.run_folder import lock_is_free

    try:
        record = read_json(folder.root / "run.json")
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("status") != "running" or not lock_is_free(folder.root):
        return None
    return (f"the previous run into this folder (started {record.get('started_at')}, process {record.get('pid')}) "
            "did not finish: it was killed (SIGKILL, out of memory, a crash?); the notebook it was running "
            "has no completed record and runs again")


def finish_report(ctx: Context, result: RunResult, started: float, started_at: str) -> None:
    """Write metrics.json, figures, run.json and summary.md from the current records."""
    records = current_records(ctx, result.notebooks)
    result.metrics = merged_metrics(records)
    write_json(result.metrics, ctx.folder.root / "metrics.json")
    figures = copy_figures(ctx, records)
    from toxhelpers.recording import package_versions

    status = "interrupted" if result.interrupted else "failed" if result.failure else "complete"
    run_record = {
        "status": status, "started_at": started_at, "finished_at": utc_now(),
        "wall_seconds": round(time.monotonic() - started, 2), "peak_memory_mb": peak_memory_mb(),
        "profile": ctx.params.profile, "description": ctx.params.description, "config": ctx.params.config,
        "parameters": ctx.params.values, "versions": package_versions(),
        "code": {"toxhelpers_sha256": ctx.package_code, "git_commit": git_commit(ctx.notebooks[0].parent)},
        "kernel": kernel_description(), "data_source": ctx.data_source or {}, "inputs": collected_inputs(records),
        "notebooks": [asdict(item) for item in result.notebooks],
        "figures": figures, "model_card": copy_model_card(ctx, records),
        "failure": asdict(result.failure) if result.failure else None,
        "stopped_by": signal.Signals(result.stop_signal).name if result.interrupted else None,
    }
    write_json(run_record, ctx.folder.root / "run.json")
    write_text(summary_markdown(ctx, result, records, run_record), ctx.folder.root / "summary.md")


def print_footer(result: RunResult) -> None:
    """Per-notebook wall times and where the report is."""
    width = max(len(item.name) for item in result.notebooks)
    say("")
    for item in result.notebooks:
        wall = "" if item.wall_seconds is None else f"{item.wall_seconds:8.1f}s"
        memory = "" if item.peak_memory_mb is None else f"{item.peak_memory_mb:8,.0f} MB"
        say(f"  {item.name:<{width}}  {item.status:<12} {wall} {memory}")
    outcome = "done" if result.ok else "STOPPED"
    say(f"{outcome}: report in {result.folder.root} (summary.md, metrics.json, run.json)")
