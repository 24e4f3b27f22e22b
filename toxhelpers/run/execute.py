"""One notebook through papermill: its output to the terminal and ``logs/``, its cells to the
progress view, a failure turned into one short message, and the HTML rendering."""

from __future__ import annotations

import functools
import json
import logging
import os
import platform
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from toxhelpers.artifacts import write_text
from toxhelpers.run.progress import COMPACT, VERBOSE, CellProgress, RunningCell
from toxhelpers.run.resume import Context
from toxhelpers.run.run_folder import RunFolder

KERNEL = "python3"  # the kernel name notebooks carry; the kernel started is always this interpreter's
# The kernel process writes its own log to our stderr; keep only its errors (ipykernel 7 warns
# about unencrypted local TCP on every start and logs the shutdown interrupt as an error: noise
# for a local headless run; the notebook's own errors come back through papermill).
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]
ENGINE = "toxhelpers-progress"  # papermill's nbclient engine, reporting each cell to a CellProgress


def kernel_description() -> dict[str, Any]:
    """The kernel every notebook runs on, for run.json: this interpreter's ipykernel, and the CPUs
    it may use. The CPU count belongs with the results: lesson 7's TF-IDF + LR fit differed in the
    fifth decimal between one CPU (``taskset -c 1``) and two on the same machine and code, so
    ``--compare-to`` at 1e-6 holds only between runs that saw as many CPUs. The CPU's model and
    whether it computes bfloat16 natively belong there too: they decide what lower precision buys."""
    from toxhelpers.distribute import cpu_description

    return {"name": KERNEL, "python": sys.executable, "python_version": platform.python_version(),
            "started_as": f"{sys.executable} -m ipykernel_launcher", "cpus_usable": usable_cpus(),
            "cpu": cpu_description()}


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, e.g. under ``taskset``), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@functools.cache
def own_kernel_manager() -> type:
    """A kernel manager that starts this interpreter's ipykernel, whatever kernelspec named
    ``python3`` Jupyter would find first (``JUPYTER_PATH``, another environment's, a user's
    ``~/.local/share/jupyter``): a lesson must run on the packages this run checked and records."""
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager

    class OwnInterpreterKernelManager(AsyncKernelManager):
        @property
        def kernel_spec(self) -> KernelSpec:
            if self._kernel_spec is None:
                self._kernel_spec = KernelSpec(
                    argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    display_name=f"Python {platform.python_version()} ({sys.executable})", language="python")
            return self._kernel_spec

    return OwnInterpreterKernelManager


def kernel_arguments() -> dict[str, Any]:
    """What papermill needs to run a notebook on this interpreter's kernel (shared with
    ``toxhelpers finetune``)."""
    return {"kernel_name": KERNEL, "language": "python", "kernel_manager_class": own_kernel_manager(),
            "extra_arguments": KERNEL_ARGUMENTS}


class Tee:
    """A stream papermill writes a kernel's output to: the terminal (when verbose) and a log file,
    and, in the compact view, the progress line (``listener``)."""

    def __init__(self, terminal: TextIO | None, log: TextIO, listener: Callable[[str], None] | None = None):
        self.terminal, self.log, self.listener = terminal, log, listener

    def write(self, text: str) -> int:
        for stream in (self.terminal, self.log):
            if stream is not None:
                stream.write(text)
        if self.listener is not None:
            self.listener(text)
        return len(text)

    def flush(self) -> None:
        for stream in (self.terminal, self.log):
            if stream is not None:
                stream.flush()


@dataclass
class Failure:
    """Why a notebook stopped: shown as one short message and kept in run.json."""

    notebook: str
    cell: str
    error: str
    source_line: str = ""
    traceback: str = ""

    def message(self, folder: RunFolder) -> str:
        where = f" in {self.cell}" if self.cell else ""
        code = f"\n    {self.source_line}" if self.source_line else ""
        return (f"FAILED: {self.notebook}{where}:{code}\n  {self.error}\n"
                f"  partial notebook kept: {folder.executed(Path(self.notebook))} "
                f"(output log: {folder.log(Path(self.notebook))})")


class CellWatch:
    """Where the executor records the cell it runs (whatever the output mode), for the report of
    a kernel that dies in it."""

    def __init__(self) -> None:
        self.cells: RunningCell | CellProgress | None = None

    def follow(self, cells: RunningCell | CellProgress) -> None:
        self.cells = cells

    @property
    def source(self) -> str | None:
        """The last code cell started (papermill marks a cell complete also when its kernel died)."""
        return (self.cells.source or None) if self.cells is not None else None


def cell_position(notebook: Path, source: str) -> str:
    """'cell 4 of 12': where a cell's source sits in the notebook as written (papermill's copy
    has an extra parameters cell, so its numbers are off by one)."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    numbers = [index for index, cell in enumerate(cells, 1) if "".join(cell["source"]) == source]
    return f"cell {numbers[0]} of {len(cells)}" if numbers else "a cell"


def describe_failure(notebook: Path, error: BaseException, running: str | None = None,
                     peak_mb: float | None = None) -> Failure:
    """Turn papermill's exception into (notebook, cell, error); other errors keep their type. A
    kernel that died (the OOM killer, kill -9) is reported with ``running``, the source of the
    cell it was running, and the notebook's peak memory, memory being the likely cause."""
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    if isinstance(error, DeadKernelError):
        memory = f"; peak memory of the notebook {peak_mb:,.0f} MB" if peak_mb else ""
        return Failure(notebook.name, cell_position(notebook, running) if running is not None else "",
                       f"the kernel died (DeadKernelError) while this cell ran{memory}: most likely it ran out of "
                       "memory (the system's OOM killer ends the largest process), or it was killed from outside; "
                       "try a smaller profile or fewer rows, or close other programs",
                       failing_line(running or "", ""))
    if not isinstance(error, PapermillExecutionError):
        return Failure(notebook.name, "", f"{type(error).__name__}: {error}".strip())
    source = error.source if isinstance(error.source, str) else "".join(error.source)
    cell = cell_position(notebook, source)
    cell += f" (In [{error.exec_count}])" if error.exec_count else ""
    traceback = _strip_ansi("\n".join(error.traceback))
    evalue = str(error.evalue)
    evalue = evalue if len(evalue) <= 600 else evalue[:600] + " ..."
    return Failure(notebook.name, cell, f"{error.ename}: {evalue}", failing_line(source, traceback), traceback)


def failing_line(source: str, traceback: str) -> str:
    """The cell's line IPython's traceback points at (``Cell In[7], line 3``), else its first code line."""
    lines = source.splitlines()
    found = re.search(r"Cell In\[\d*\], line (\d+)", traceback)
    if found and 0 < int(found.group(1)) <= len(lines):
        number = int(found.group(1))
        return f"line {number}: {lines[number - 1].strip()[:160]}"
    return next((text.strip()[:160] for text in lines if text.strip() and not text.strip().startswith("#")), "")


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


class _ParameterNoise(logging.Filter):
    """Papermill's parameter-parsing warnings: the runner checks parameters itself (see
    :func:`toxhelpers.run.parameters.declared_parameters`), so these would only confuse. Also
    nbclient's "Kernel died while waiting for execute reply", logged through papermill: after
    Ctrl-C it is the kernel the runner shut down, and a kernel that really died is reported as the
    notebook's failure anyway."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(("Unable to parse line", "Passed unknown parameter",
                                                   "Kernel died while waiting for execute reply"))


class _AbandonedCellNoise(logging.Filter):
    """After Ctrl-C, nbclient shuts the kernel down under the cell still waiting for its reply;
    asyncio then prints that abandoned task's DeadKernelError with a traceback at exit, after the
    runner's own "Interrupted" report. Nothing is lost by dropping it."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (record.getMessage().startswith("Task exception was never retrieved")
                    and type(error).__name__ == "DeadKernelError")


def _filter_log_noise() -> None:
    """Install the noise filters above, once each (logger filters don't apply to child loggers)."""
    for name, noise in (("papermill", _ParameterNoise), ("papermill.translators", _ParameterNoise),
                        ("asyncio", _AbandonedCellNoise)):
        log = logging.getLogger(name)
        if not any(isinstance(item, noise) for item in log.filters):
            log.addFilter(noise())


@functools.cache
def progress_engine() -> str:
    """Register (once) papermill's nbclient engine with a hook reporting each cell to the
    progress view: papermill's own bar is tqdm over all cells, without the running cell's code."""
    from papermill.engines import NBClientEngine, papermill_engines

    class ProgressEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str,
                                     cell_progress: CellProgress | None = None, **kwargs: Any) -> Any:
            if cell_progress is not None:
                follow_cells(nb_man, cell_progress)
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register(ENGINE, ProgressEngine)
    return ENGINE


def follow_cells(manager: Any, progress: CellProgress) -> None:
    """Wrap papermill's execution manager, which is told when each cell starts and completes."""
    start, complete = manager.cell_start, manager.cell_complete
    progress.begin(len(manager.nb.cells))

    def cell_start(cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        start(cell, cell_index, **kwargs)
        progress.cell_started((cell_index or 0) + 1, "".join(cell.source), cell.cell_type == "code")

    def cell_complete(cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        complete(cell, cell_index, **kwargs)
        progress.cell_finished()

    manager.cell_start, manager.cell_complete = cell_start, cell_complete


def execute(ctx: Context, notebook: Path, output: str = COMPACT, running: "CellWatch | None" = None) -> None:
    """Run one notebook through papermill, its output to ``logs/`` (and the terminal when
    ``output`` is verbose, its cells to the progress view when compact); raises on the first
    failing cell."""
    import papermill

    _filter_log_noise()
    executed, log_path = ctx.folder.executed(notebook), ctx.folder.log(notebook)
    executed.parent.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    terminal = output == VERBOSE
    progress = CellProgress() if output == COMPACT else RunningCell()
    with open(log_path, "w", encoding="utf-8") as log, progress as cells:
        if running is not None:
            running.follow(cells)
        listener = cells.output if isinstance(cells, CellProgress) and cells.interactive else None
        papermill.execute_notebook(
            str(notebook), str(executed), parameters=ctx.passed(notebook), cwd=str(notebook.parent),
            progress_bar=False, log_output=False,
            stdout_file=Tee(sys.stdout if terminal else None, log, listener),
            stderr_file=Tee(sys.stderr if terminal else None, log, listener),
            engine_name=progress_engine(), cell_progress=cells, **kernel_arguments(),
        )


def render_html(executed: Path, target: Path) -> None:
    """nbconvert's HTML rendering of an executed notebook (figures are embedded)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    write_text(body, target)
