"""A run from start to end: check everything that can be checked, then run or reuse each
selected notebook in order, stop at the first failure, and always write the report.

:func:`run` is the entry point for code (tests, benchmarks, the lead's scripts) as
:func:`toxhelpers.run.cli.main` is for the command line; both take the same :class:`RunOptions`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from toxhelpers.artifacts import write_text
from toxhelpers.run import checks, resume
from toxhelpers.run.compare import DEFAULT_TOLERANCE, check_tolerance, compare_metrics, reference_metrics
from toxhelpers.run.errors import UsageError
from toxhelpers.run.execute import KERNEL, CellWatch, Failure, cell_position, describe_failure, execute, render_html
from toxhelpers.run.notebooks import (DEFAULT_NOTEBOOKS_DIR, discover_notebooks, select_notebooks,
                                      unmet_requirement)
from toxhelpers.run.parameters import (DEFAULT_PROFILE, check_reaches_selected, check_unambiguous,
                                       declared_parameters, resolve_parameters)
from toxhelpers.run.peak_memory import PeakMemory
from toxhelpers.run.progress import COMPACT, QUIET, VERBOSE, clock, say
from toxhelpers.run.resume import (Context, assess, changed_files, check_earlier_outputs, claim, clear_previous,
                                   declared_outputs_missing, keep_checkpoints_of_same_attempt, snapshot, utc_now,
                                   write_manifest)
from toxhelpers.run.run_folder import RunFolder, check_out_folder, locked
from toxhelpers.run.summary import (EARLIER_RUN, THIS_RUN, NotebookStatus, RunResult, finish_report, print_footer,
                                   start_report, unfinished_run)


@dataclass
class RunOptions:
    """Everything ``toxhelpers run`` accepts; tests and the lead's scripts call :func:`run` with it."""

    profile: str = DEFAULT_PROFILE
    config: str | os.PathLike | None = None
    overrides: Sequence[str] | dict[str, Any] = ()
    out: str | os.PathLike | None = None
    notebooks_dir: str | os.PathLike = DEFAULT_NOTEBOOKS_DIR
    only: Sequence[str] = ()
    start: str | None = None
    stop: str | None = None
    force: bool = False
    quiet: bool = False  # terminal: only the per-notebook lines and the final table
    verbose: bool = False  # terminal: every cell's output as it streams (default: compact progress)
    dry_run: bool = False
    compare_to: str | os.PathLike | None = None
    tolerance: float = DEFAULT_TOLERANCE

    @property
    def output(self) -> str:
        """What the terminal shows while a notebook runs (see :mod:`toxhelpers.run.progress`)."""
        if self.quiet and self.verbose:
            raise UsageError("--quiet and --verbose: expected at most one of them")
        return QUIET if self.quiet else VERBOSE if self.verbose else COMPACT


def prepare(options: RunOptions) -> tuple[Context, list[Path]]:
    """Resolve parameters and notebooks, failing with a UsageError before anything runs."""
    notebooks_dir = Path(options.notebooks_dir).expanduser().resolve()
    notebooks = discover_notebooks(notebooks_dir)
    declared = declared_parameters(notebooks)
    params = resolve_parameters(options.profile, options.config, options.overrides, declared=declared)
    selected = select_notebooks(notebooks, options.only, options.start, options.stop)
    check_unambiguous(params.values, declared, selected)
    check_reaches_selected(options.overrides, declared, selected)
    out = Path(options.out) if options.out else Path("reports") / params.profile
    folder = RunFolder(check_out_folder(out.expanduser().resolve()))
    data_source = _resolve_data_source(params.values, declared, notebooks_dir)
    from toxhelpers.recording import package_versions

    key_common = {"versions": resume.stable_hash(package_versions()), "kernel": KERNEL}
    return Context(folder, notebooks, params, declared, key_common, data_source, resume.code_hash()), selected


def _resolve_data_source(values: dict[str, Any], declared: dict[str, dict[str, Any]],
                         notebooks_dir: Path) -> dict[str, str] | None:
    """Where ``data_dir`` resolves from the notebooks' working directory (None when no notebook
    reads data). Part of the resume key, so data downloaded after a demo run is not ignored; a
    ``data_dir`` that is not a folder fails here, before anything runs."""
    if not any("data_dir" in params for params in declared.values()):
        return None
    from toxhelpers.data import locate_data

    try:
        source = locate_data(values.get("data_dir"), search_from=notebooks_dir)
    except FileNotFoundError as error:
        raise UsageError(str(error)) from None
    return {"path": str(source.path.resolve()), "origin": source.origin}


def run(options: RunOptions) -> RunResult:
    """Execute the selected notebooks into the run folder, resuming where possible. Everything
    that can be checked without running a notebook is checked first (also for a dry run)."""
    check_tolerance(options.tolerance)
    _ = options.output  # --quiet with --verbose fails here, before anything runs
    reference = reference_metrics(options.compare_to) if options.compare_to else None
    ctx, selected = prepare(options)
    check_earlier_outputs(ctx, selected)
    if options.dry_run:
        unfinished = unfinished_run(ctx.folder)
        if unfinished:
            print(f"note: {unfinished}")
        result = dry_run(ctx, selected, options.force)
        if reference is not None:
            print(f"then compare with {options.compare_to} ({len(reference)} metrics, tolerance {options.tolerance})")
        return result
    unfinished = unfinished_run(ctx.folder)  # looked at before this run takes the lock
    with locked(ctx.folder.root), without_ignored_tf_config(ctx, selected), sigterm_as_interrupt() as stopped:
        if unfinished:
            say(f"note: {unfinished}")
        result = execute_all(ctx, selected, options, stopped)
    if result.ok and reference is not None:
        result.differences = compare_metrics(result.metrics, reference, options.tolerance)
        result.compared = True
    return result


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[dict[str, int]]:
    """SIGTERM (``kill``, a job scheduler, a container stopping) handled like Ctrl-C: the running
    notebook's kernel is shut down, the report says "interrupted", and the exit status is 143.
    It used to end the runner on the spot, leaving the previous run's "complete" in the report.
    Yields {"signal": number} of the signal that stopped the run (SIGINT unless SIGTERM came)."""
    stopped = {"signal": int(signal.SIGINT)}
    if threading.current_thread() is not threading.main_thread():
        yield stopped  # signal handlers can only be set from the main thread (tests calling run())
        return

    def terminate(signum: int, frame: Any) -> None:
        if stopped["signal"] == signal.SIGTERM:
            return  # already stopping: let the report be written
        stopped["signal"] = signum
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield stopped
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def without_ignored_tf_config(ctx: Context, selected: list[Path]) -> Iterator[None]:
    """An inherited ``TF_CONFIG`` reaches the kernels only when a selected notebook joins the
    cluster (strategy ``multi_worker``); otherwise the run says once that it is ignored and starts
    the kernels without it (a lesson taking itself for worker 1 wrote its outputs to a scratch
    folder that was deleted)."""
    from toxhelpers import distribute

    strategies = {str(ctx.passed(notebook).get("strategy", "default")) for notebook in selected}
    single = sorted(strategies - {distribute.CLUSTER_STRATEGY})
    notice = distribute.ignored_tf_config(single[0]) if single and len(single) == len(strategies) else None
    if notice is None:
        yield
        return
    say(f"note: {notice}")
    inherited = os.environ.pop("TF_CONFIG")
    try:
        yield
    finally:
        os.environ["TF_CONFIG"] = inherited


def execute_all(ctx: Context, selected: list[Path], options: RunOptions,
                stopped: dict[str, int] | None = None) -> RunResult:
    """Run or reuse each selected notebook in order; stop at the first failure; always report."""
    started, started_at = time.monotonic(), utc_now()
    ctx.folder.artifacts.mkdir(parents=True, exist_ok=True)
    start_report(ctx, started_at)
    write_text("A toxhelpers run report: `toxhelpers run --out` may write here.\n", ctx.folder.marker)
    write_text(yaml.safe_dump(ctx.params.values, sort_keys=True, allow_unicode=True),
               ctx.folder.root / "parameters.yaml")
    statuses = {path.name: NotebookStatus(path.name, "not selected", "not selected") for path in ctx.notebooks}
    for path in selected:
        statuses[path.name] = NotebookStatus(path.name, "not run", "an earlier notebook stopped the run")
    result = RunResult(ctx.folder, list(statuses.values()), {})
    say(f"toxhelpers run: profile {ctx.params.profile!r}, {len(selected)} notebook(s) -> {ctx.folder.root}")
    try:
        for number, notebook in enumerate(selected, 1):
            status = statuses[notebook.name]
            status.parameters = ctx.passed(notebook)
            if not run_one(ctx, notebook, status, f"[{number}/{len(selected)}]", started, options):
                result.failure = status.failure
                break
    except KeyboardInterrupt:
        result.interrupted, result.stop_signal = True, (stopped or {}).get("signal", int(signal.SIGINT))
        say(f"Interrupted: partial notebook kept in {ctx.folder.root / 'notebooks'}; rerun to resume.")
    mark_unselected(ctx, statuses)
    finish_report(ctx, result, started, started_at)
    print_footer(result)
    return result


def run_one(ctx: Context, notebook: Path, status: NotebookStatus, counter: str, started: float,
            options: RunOptions) -> bool:
    """Reuse, execute or skip one notebook, updating ``status``; False when it failed."""
    unmet = unmet_requirement(notebook)
    if unmet:  # one line, and the run goes on (a later lesson needing its files would name it)
        status.status, status.reason = "skipped", unmet
        say(f"{counter} {notebook.name} skipped: {unmet}")
        return True
    up_to_date, reason = (False, "--force") if options.force else assess(ctx, notebook)
    if up_to_date:
        reuse(ctx, notebook, status, counter)
        return True
    say(f"{counter} {notebook.name} ... (elapsed {clock(time.monotonic() - started)}; running because {reason})")
    status.reason = reason
    if not execute_one(ctx, notebook, status, options.output, options.force):
        say(status.failure.message(ctx.folder))
        return False
    where = f" in {status.peak_memory_cell}" if status.peak_memory_cell else ""
    say(f"{counter} {notebook.name} done in {status.wall_seconds:.1f}s, peak memory {status.peak_memory_mb:,} MB"
        f"{where} (elapsed {clock(time.monotonic() - started)})")
    return True


def reuse(ctx: Context, notebook: Path, status: NotebookStatus, counter: str) -> None:
    """Count an up-to-date notebook's earlier results as this run's; its wall time and peak memory
    are those its manifest kept from the run that executed it (``measured_in`` says so)."""
    manifest = ctx.manifest(notebook) or {}
    status.status, status.current = "reused", True
    status.reason = f"unchanged since {manifest.get('finished_at')}"
    status.sections = manifest.get("sections", [])
    take_earlier_costs(status, manifest)
    memory = "" if status.peak_memory_mb is None else f", peak memory {status.peak_memory_mb:,.0f} MB"
    say(f"{counter} {notebook.name} reused: unchanged since {manifest.get('finished_at')} "
        f"(ran in {status.wall_seconds or 0:.1f}s{memory}; --force reruns it)")


def take_earlier_costs(status: NotebookStatus, manifest: dict) -> None:
    """A notebook not executed now reports the wall time and peak memory its manifest kept from
    the run that executed it, marked as measured then (None where an old manifest has none)."""
    status.wall_seconds, status.peak_memory_mb = manifest.get("wall_seconds"), manifest.get("peak_memory_mb")
    status.peak_memory_cell = manifest.get("peak_memory_cell")
    status.memory_rises = manifest.get("memory_rises", [])
    status.measured_in = EARLIER_RUN


def execute_one(ctx: Context, notebook: Path, status: NotebookStatus, output: str, force: bool = False) -> bool:
    """Execute one notebook and render its HTML, recording its files, memory and time in
    ``status``; False when it failed. What it wrote is claimed even on failure or Ctrl-C."""
    clear_previous(ctx, notebook)
    before = snapshot(ctx.folder.artifacts, ctx.hasher)
    keep_checkpoints_of_same_attempt(ctx, notebook, before, force)
    began = time.monotonic()
    running = CellWatch()
    watch = PeakMemory(where=lambda: running.source)
    status.measured_in = THIS_RUN
    try:
        with watch:
            execute(ctx, notebook, output, running)
        take_peak(status, notebook, watch)
        render_html(ctx.folder.executed(notebook), ctx.folder.html(notebook))
    except KeyboardInterrupt:  # its time and peak so far: a lesson resumed later has cost this much more
        status.status, status.wall_seconds = "interrupted", round(time.monotonic() - began, 2)
        take_peak(status, notebook, watch)
        claim(ctx, notebook, list(changed_files(before, snapshot(ctx.folder.artifacts, ctx.hasher))))
        raise
    except Exception as error:  # papermill's cell error, a dead kernel, a missing kernel...
        status.wall_seconds = round(time.monotonic() - began, 2)
        take_peak(status, notebook, watch)
        claim(ctx, notebook, list(changed_files(before, snapshot(ctx.folder.artifacts, ctx.hasher))))
        status.status, status.failure = "failed", describe_failure(notebook, error, running.source,
                                                                   status.peak_memory_mb)
        _render_quietly(ctx, notebook)
        return False
    wall = time.monotonic() - began
    outputs = changed_files(before, snapshot(ctx.folder.artifacts, ctx.hasher))
    missing = declared_outputs_missing(notebook, outputs)
    if missing:
        claim(ctx, notebook, list(outputs))
        status.status, status.wall_seconds = "failed", round(wall, 2)
        expected = ", ".join(f"artifacts/{path}" for path in missing) if missing != ["any file"] else "a file in artifacts/"
        status.failure = Failure(notebook.name, "", f"it ran to the end but wrote none of its outputs (expected "
                                 f"{expected}), so it is not recorded as complete; did it write them elsewhere "
                                 "(e.g. a TF_CONFIG for another worker)?")
        return False
    manifest = write_manifest(ctx, notebook, before, wall, status.peak_memory_mb, status.peak_memory_cell,
                              status.memory_rises)
    status.status, status.wall_seconds, status.current = "ran", round(wall, 2), True
    status.sections = manifest["sections"]
    return True


KERNEL_START = "the kernel's start"  # no cell ever held more than the kernel did before its first cell


def take_peak(status: NotebookStatus, notebook: Path, watch: PeakMemory) -> None:
    """The notebook's peak memory, the code cell running when the kernel first came within 1% of
    it ('cell 26 of 33'; None when nothing was measured), and the level reached by the end of each
    cell that raised it, from the watch into ``status``."""
    status.peak_memory_mb = round(watch.peak_mb)
    status.memory_rises = [(where_in(notebook, where), round(mb)) for where, mb in watch.rises.items()]
    if not watch.peak_mb:
        status.peak_memory_cell = None
    else:
        status.peak_memory_cell = where_in(notebook, watch.peak_at)


def where_in(notebook: Path, source: str | None) -> str:
    """'cell 26 of 33' for a cell's source; before the first cell, the kernel's start."""
    return cell_position(notebook, source) if source is not None else KERNEL_START


def _render_quietly(ctx: Context, notebook: Path) -> None:
    """HTML of a failed notebook helps reading the error; failing to render it must not hide the error."""
    try:
        render_html(ctx.folder.executed(notebook), ctx.folder.html(notebook))
    except Exception:  # noqa: BLE001 - best effort only
        pass


def mark_unselected(ctx: Context, statuses: dict[str, NotebookStatus]) -> None:
    """Notebooks not run this time count in the report only when their results are still current."""
    for notebook in ctx.notebooks:
        item = statuses[notebook.name]
        if item.status != "not selected" or ctx.manifest(notebook) is None:
            continue
        current, reason = assess(ctx, notebook)
        manifest = ctx.manifest(notebook) or {}
        item.current, item.sections = current, manifest.get("sections", [])
        take_earlier_costs(item, manifest)
        item.reason = ("not selected; results from an earlier run are current" if current
                       else f"not selected; stale: {reason}")


def dry_run(ctx: Context, selected: list[Path], force: bool) -> RunResult:
    """Print what each selected notebook would receive and whether it would run."""
    statuses = []
    for number, notebook in enumerate(selected, 1):
        unmet = unmet_requirement(notebook)
        if unmet:
            verdict = f"would skip: {unmet}"
        else:
            reused, reason = (False, "--force") if force else assess(ctx, notebook)
            verdict = "would reuse (if earlier notebooks' outputs are unchanged)" if reused else f"would run: {reason}"
        print(f"[{number}/{len(selected)}] {notebook.name}: {verdict}")
        for key, value in ctx.passed(notebook).items():
            print(f"    {key} = {value!r}")
        statuses.append(NotebookStatus(notebook.name, "dry run", verdict, parameters=ctx.passed(notebook)))
    return RunResult(ctx.folder, statuses, {})
