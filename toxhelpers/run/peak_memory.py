"""Peak memory of each notebook's kernel, for the run's report (run tooling, not a lesson).

The target is a laptop with 8 GB, so what matters is the most memory a lesson holds at once:
its kernel plus anything the kernel starts (lesson 8 exports in a child process). The operating
system's own counters cannot give that per notebook: ``getrusage(RUSAGE_CHILDREN)`` is one
maximum over every kernel the run ever waited for. So :class:`PeakMemory` watches the runner's
child processes while one notebook executes: every ``interval`` seconds it adds up their
resident memory, and it also reads each process's own high-water mark (Linux ``VmHWM``), which
catches a peak that falls between two samples. The larger of the two is reported, with the cell
that was running when the kernel first came within 1% of it (``peak_at``): on an 8 GB laptop the
question after "how much" is "where", and the answer is the cell that took the memory, not a later
one that raised the high-water mark by a few MB more. ``rises`` goes one step further: the level
the memory had reached by the end of each cell that raised it, so a reader sees how much the cell
before the peak already held (at Kaggle's size, was lesson 6 over 3 GB in its fit, or only in the
timing after it?).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import psutil

MB = 1024 * 1024
NEAR_PEAK = 0.99  # a level within 1% of the peak counts as reaching it (later cells often add a few MB)


def high_water_mb(pid: int) -> float:
    """The process's peak resident memory so far (Linux ``VmHWM``), 0 where unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


class PeakMemory:
    """``with PeakMemory() as watch: ...``, then ``watch.peak_mb``: the most resident memory the
    processes started by this one (a notebook's kernel and its children) held at one time.
    ``where``: what is running now (the executor's current cell); ``watch.peak_at`` is what it
    returned when the memory first came within 1% of the peak (a high-water mark that rose between
    two samples is counted to the cell running at the second one)."""

    def __init__(self, interval: float = 0.2, where: Callable[[], str | None] | None = None):
        self.interval = interval
        self.peak_mb = 0.0
        self._rises: list[tuple[float, str | None]] = []  # (new highest MB, where), each time it rose
        self._where = where
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="peak-memory", daemon=True)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        """One look at every descendant process: their summed current memory, and each one's peak."""
        total, highest = 0.0, 0.0
        for process in psutil.Process().children(recursive=True):
            try:
                total += process.memory_info().rss / MB
                highest = max(highest, high_water_mb(process.pid))
            except psutil.Error:  # it ended between the listing and the reading
                continue
        if max(total, highest) > self.peak_mb:
            self.peak_mb = max(total, highest)
            self._rises.append((self.peak_mb, self._where() if self._where is not None else None))

    @property
    def peak_at(self) -> str | None:
        """What was running when the memory first came within 1% of its peak (None before any)."""
        return next((where for mb, where in self._rises if mb >= NEAR_PEAK * self.peak_mb), None)

    @property
    def rises(self) -> dict[str | None, float]:
        """Each ``where`` that raised the peak, in order, with the highest level it reached: the
        running high-water mark at the end of that cell (a cell that raised nothing is left out)."""
        levels: dict[str | None, float] = {}
        for mb, where in self._rises:
            levels[where] = mb  # rises only ever go up, so the last one in a cell is its highest
        return levels

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)
