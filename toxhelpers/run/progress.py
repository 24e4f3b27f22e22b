"""What the terminal shows while notebooks run (the full cell output always goes to ``logs/``).

Three levels, chosen on the command line:

- ``compact`` (default): a line per notebook as it starts and finishes, and while it runs its
  cells executing: on a terminal one line redrawn in place (a bar, the running cell's first
  source line and how long it has run, so a long cell shows as a long step, followed by the last
  line the cell printed: a training progress bar's steps done and its estimate of the time left);
  elsewhere (CI, a redirected log) one plain line per code cell as it starts, never carriage returns;
- ``verbose``: the notebooks' full cell output streamed as it comes, as in a notebook;
- ``quiet``: only the per-notebook lines and the final table.

Everything goes to stderr, like the runner's own messages, so stdout stays free for ``--dry-run``.
"""

from __future__ import annotations

import re
import shutil
import sys
import threading
import time
from types import TracebackType
from typing import TextIO

COMPACT, VERBOSE, QUIET = "compact", "verbose", "quiet"
BAR_WIDTH = 20
LINE_INDENT = "    "
SOURCE_WIDTH = 100  # a cell's first line is cut here: it names the cell, the code is in the notebook
SOURCE_WIDTH_WITH_OUTPUT = 40  # ... and here when the cell's latest output line follows it


def say(text: str) -> None:
    """One line of the runner's own report, on stderr (unbuffered: it interleaves with the kernel's)."""
    print(text, file=sys.stderr, flush=True)


def clock(seconds: float) -> str:
    """``h:mm:ss``: elapsed time in the per-notebook lines and the progress view."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def first_line(source: str) -> str:
    """What names a cell in one line: its first non-blank source line, cut to ``SOURCE_WIDTH``."""
    line = next((line.strip() for line in source.splitlines() if line.strip()), "(empty cell)")
    return line if len(line) <= SOURCE_WIDTH else line[:SOURCE_WIDTH - 3] + "..."


class RunningCell:
    """Which cell of a notebook is running (papermill's numbering, its injected parameters cell
    included): kept in every output mode, so a kernel that dies can be reported with its cell."""

    def __init__(self) -> None:
        self.total = self.number = 0
        self.source = ""

    def __enter__(self) -> RunningCell:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def begin(self, total: int) -> None:
        self.total = total

    def cell_started(self, number: int, source: str, is_code: bool) -> None:
        if is_code:
            self.number, self.source = number, source

    def cell_finished(self) -> None:
        self.number = 0  # the source stays: the last cell started


class CellProgress:
    """``with CellProgress() as progress:`` around one notebook; the executor reports each cell
    through :meth:`cell_started` and :meth:`cell_finished`.

    On a terminal a background thread redraws the line every ``tick`` seconds, so the running
    cell's clock moves even while the kernel is busy for minutes.
    """

    def __init__(self, stream: TextIO | None = None, interactive: bool | None = None, tick: float = 1.0):
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.tick = tick
        self.done = self.total = self.number = 0
        self.current = self.source = self.latest_output = ""
        self.started = self.cell_started_at = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._redraw_until_stopped, name="cell-progress", daemon=True)

    def __enter__(self) -> CellProgress:
        if self.interactive:
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.interactive:
            self._write("\r\x1b[K")  # leave the line to the notebook's "done" or failure message

    def begin(self, total: int) -> None:
        """The notebook (with papermill's injected parameters cell) has ``total`` cells."""
        self.total = total

    def cell_started(self, number: int, source: str, is_code: bool) -> None:
        """Cell ``number`` (1-based) starts; markdown cells only move the bar."""
        if not is_code:
            return
        self.number, self.current, self.cell_started_at = number, first_line(source), time.monotonic()
        self.source, self.latest_output = source, ""
        if self.interactive:
            self._draw()
        else:
            self._write(f"{LINE_INDENT}{clock(self.cell_started_at - self.started)}  "
                        f"cell {number}/{self.total}  {self.current}\n")

    def cell_finished(self) -> None:
        """The running cell is done: its clock stops (papermill may still save and shut down)."""
        self.done += 1
        self.number = 0
        if self.interactive:
            self._draw()

    def output(self, text: str) -> None:
        """Text the running cell printed (stdout or stderr, as it streams): its last non-blank line
        is shown after the cell's source line. A tqdm bar redraws itself with a carriage return, so
        this is its latest state: steps done, rate, and the time left."""
        latest = next((part.strip() for part in reversed(re.split(r"[\r\n]", text)) if part.strip()), "")
        if latest:
            self.latest_output = latest

    def status_line(self, width: int) -> str:
        """The in-place line: bar, cells done, elapsed, and the running cell (if any) and its time so far."""
        now = time.monotonic()
        filled = round(BAR_WIDTH * self.done / self.total) if self.total else 0
        line = (f"{LINE_INDENT}[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.done}/{self.total} cells "
                f"{clock(now - self.started)}")
        if self.number:
            line += f"  cell {self.number} ({now - self.cell_started_at:.0f}s): "
            if self.latest_output:
                source = self.current if len(self.current) <= SOURCE_WIDTH_WITH_OUTPUT else \
                    self.current[:SOURCE_WIDTH_WITH_OUTPUT - 3] + "..."
                line += f"{source}  | {self.latest_output}"
            else:
                line += self.current
        return line[:max(width - 1, 0)]

    def _draw(self) -> None:
        self._write("\r" + self.status_line(shutil.get_terminal_size().columns) + "\x1b[K")

    def _write(self, text: str) -> None:
        with self._lock:
            self.stream.write(text)
            self.stream.flush()

    def _redraw_until_stopped(self) -> None:
        while not self._stop.wait(self.tick):
            self._draw()
