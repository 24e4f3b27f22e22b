"""The report folder of one run: where each file goes, and one run at a time writing to it.

The layout is documented for users in :mod:`toxhelpers.run.cli`; every other module asks
:class:`RunFolder` for a path instead of spelling one, so the layout lives in one place.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from toxhelpers.artifacts import read_json, write_json
from toxhelpers.run.errors import UsageError

MARKER = ".toxhelpers-report"  # what makes a folder a report this tool may write into


@dataclass(frozen=True)
class RunFolder:
    """Where everything of one run goes (the layout is documented in :mod:`toxhelpers.run.cli`)."""

    root: Path

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def state(self) -> Path:
        return self.root / ".state"

    def executed(self, notebook: Path) -> Path:
        return self.root / "notebooks" / notebook.name

    def html(self, notebook: Path) -> Path:
        return self.root / "html" / f"{notebook.stem}.html"

    def log(self, notebook: Path) -> Path:
        return self.root / "logs" / f"{notebook.stem}.log"

    def manifest(self, notebook: Path) -> Path:
        return self.state / f"{notebook.stem}.json"

    def attempt(self, notebook: Path) -> Path:
        """The key and inputs of the notebook's latest execution, finished or not (see
        :func:`toxhelpers.run.resume.keep_checkpoints_of_same_attempt`)."""
        return self.state / f"{notebook.stem}.attempt.json"

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    @property
    def marker(self) -> Path:
        return self.root / MARKER

    @property
    def _ledger(self) -> Path:
        return self.state / "report_files.json"

    def written(self) -> set[str]:
        """Report files outside ``artifacts/`` that runs copied in (figures, the model card): the
        only ones a run may delete again when they go stale; a file someone else put there stays."""
        try:
            return set(read_json(self._ledger)) if self._ledger.is_file() else set()
        except (OSError, ValueError):
            return set()

    def note_written(self, relatives: list[str]) -> None:
        write_json(sorted(self.written() | set(relatives)), self._ledger)

    def remove_written(self, relative: str) -> None:
        """Delete a report file a run wrote (never one it did not)."""
        written = self.written()
        if relative in written:
            (self.root / relative).unlink(missing_ok=True)
            write_json(sorted(written - {relative}), self._ledger)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """One run per output folder at a time (the lock dies with the process)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another toxhelpers run is writing to {folder}; "
                             "wait for it or use another --out") from None
        yield


def lock_is_free(folder: Path) -> bool:
    """Whether no run holds ``folder``'s lock now (checked without creating anything)."""
    path = folder / ".lock"
    if not path.is_file():
        return True
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
    return True


def check_not_below_a_file(folder: Path, option: str, given: Path | None = None) -> None:
    """No part of ``folder``'s path may be a file (creating it would fail with FileExistsError)."""
    for path in (folder, *folder.parents):
        if path.exists() and not path.is_dir():
            raise UsageError(f"{option} {given or folder}: {path} is a file; expected a folder there")


def check_out_folder(out: Path) -> Path:
    """``--out`` must be a folder, new or existing: not a file, nor inside one; and an existing
    folder must be empty or a report (its :data:`MARKER`, or the ``.state`` and ``run.json`` of a
    report from before the marker): a run writes summary.md, figures/, notebooks/... there, and
    used to overwrite or delete whatever another folder (a repository, your notes) held."""
    check_not_below_a_file(out.parent, "--out", out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: {out} is a file; expected a folder for the report "
                         "(a new one, or an earlier run's to resume)")
    if not out.is_dir() or is_report(out):
        return out
    held = sorted(path.name for path in out.iterdir() if path.name != ".lock")
    if held:
        shown = ", ".join(held[:3]) + (f" (+{len(held) - 3} more)" if len(held) > 3 else "")
        raise UsageError(f"--out {out}: the folder holds files that are not a toxhelpers report ({shown}); "
                         "expected a new or empty folder, or an earlier run's report folder")
    return out


def is_report(folder: Path) -> bool:
    """A folder a run made (see :func:`check_out_folder`)."""
    return (folder / MARKER).is_file() or ((folder / ".state").is_dir() and (folder / "run.json").is_file())
