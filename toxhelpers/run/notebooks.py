"""Which lessons exist (``NN_name.ipynb``), which of them a run executes (``--only``,
``--from``, ``--until``: by number or name, always in lesson order), and which this Python
cannot run (a lesson's ``requires_python``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from toxhelpers.run.errors import UsageError

DEFAULT_NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOK_PATTERN = "[0-9][0-9]_*.ipynb"


def discover_notebooks(notebooks_dir: Path) -> list[Path]:
    notebooks = sorted(notebooks_dir.glob(NOTEBOOK_PATTERN))
    if not notebooks:
        raise UsageError(f"no notebooks named like {NOTEBOOK_PATTERN} in {notebooks_dir}; point "
                         "--notebooks-dir at the lessons (the repository's notebooks/ folder)")
    return notebooks


def matches(path: Path, token: str) -> bool:
    """Whether ``token`` names the notebook: its number (``6``, ``06``) or its name (``06_finetuning``)."""
    token = token.strip().removesuffix(".ipynb")
    number = path.name[:2]
    return token in (path.stem, number) or (token.isdigit() and int(token) == int(number))


def _find(notebooks: Sequence[Path], token: str, option: str) -> int:
    for index, path in enumerate(notebooks):
        if matches(path, token):
            return index
    names = ", ".join(path.stem for path in notebooks)
    raise UsageError(f"{option} {token!r} matches no notebook; have: {names} (use the number, e.g. 03)")


def select_notebooks(notebooks: Sequence[Path], only: Sequence[str] = (), start: str | None = None,
                     stop: str | None = None) -> list[Path]:
    """``only`` (numbers or names) or the ``start``..``stop`` range, inclusive, in order."""
    if only:
        chosen = {_find(notebooks, token, "--only") for text in only for token in text.split(",") if token.strip()}
        return [path for index, path in enumerate(notebooks) if index in chosen]
    first = _find(notebooks, start, "--from") if start else 0
    last = _find(notebooks, stop, "--until") if stop else len(notebooks) - 1
    if first > last:
        raise UsageError(f"--from {start} comes after --until {stop}")
    return list(notebooks[first:last + 1])


def unmet_requirement(notebook: Path, python: tuple[int, ...] | None = None) -> str | None:
    """Why this Python (or ``python``, a version tuple) cannot run ``notebook``, or None when it can.

    A lesson that needs a newer Python than the rest says so in its notebook metadata,
    ``{"toxhelpers": {"requires_python": "3.11", "requires_why": "keras-hub 0.32.0 needs it"}}``
    (lessons 12-13: keras-hub); the run skips it with this one line instead of failing on an import.
    """
    try:
        metadata = json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {}).get("toxhelpers", {})
    except (OSError, ValueError) as error:
        raise UsageError(f"{notebook} is not a readable notebook ({error})") from None
    wanted = metadata.get("requires_python")
    if not wanted:
        return None
    try:
        needed = tuple(int(part) for part in str(wanted).split("."))
    except ValueError:
        raise UsageError(f"{notebook.name}: metadata toxhelpers.requires_python must be a version like "
                         f"'3.11', got {wanted!r}") from None
    python = tuple(python or sys.version_info[:2])
    if python >= needed:
        return None
    why = metadata.get("requires_why")
    return (f"needs Python {wanted} or newer ({why})" if why else f"needs Python {wanted} or newer") + \
        f"; this is Python {'.'.join(map(str, python))}"
