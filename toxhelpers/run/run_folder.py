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

from toxhelpers.run.errors import UsageError


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


def check_out_folder(out: Path) -> Path:
    """``--out`` must be a folder, new or existing: not a file, nor inside one."""
    for path in (out, *out.parents):
        if path.exists() and not path.is_dir():
            raise UsageError(f"--out {out}: {path} is a file; expected a folder for the report "
                             "(a new one, or an earlier run's to resume)")
    return out
