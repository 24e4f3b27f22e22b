"""``toxhelpers run``: execute the lessons headless, in order, into one report folder.

    python -m toxhelpers run                       # the README walkthrough: profile "demo"
    python -m toxhelpers run --profile smoke       # minutes, tiny, proves the pipeline runs
    python -m toxhelpers run --profile full --data-dir data/jigsaw-toxic-comment-classification-challenge
    python -m toxhelpers run --config my.yaml -p seed=7 -p max_length=64 --out reports/seed7

Parameters
    One parameter set drives the whole run: a named profile (``toxhelpers/profiles/*.yaml``, or a
    path to such a file), then ``--config FILE.yaml`` (same format: ``description`` and a
    ``parameters`` mapping), then ``-p key=value`` (values parsed as YAML), later ones winning.
    Each notebook receives only the keys its ``parameters`` cell declares, plus ``artifacts_dir``
    (always ``<out>/artifacts``, set by the runner). A key that no notebook declares is an error,
    so a typo never silently runs the defaults. Every value is checked before the first notebook
    starts, against the type of the notebooks' default and the range or choices known for it
    (:mod:`toxhelpers.parameter_checks`; ``2e-5`` is a number, ``-p label_rule=no`` the text
    "no"); a bad one stops the run with exit status 2. String values of keys ending in ``_dir``,
    ``_path`` or ``_file`` are made absolute against the directory the command is run from
    (notebooks execute with ``notebooks/`` as their working directory); so is a ``checkpoint`` or
    ``contextual_checkpoint`` that names a folder existing there (anything else is a hub name).

Output folder (``--out``, default ``reports/<profile>``)
    summary.md            one page: headline metrics vs. the majority baseline and the article's
                          published numbers, data files and weights used, wall time per notebook
    metrics.json          every value the notebooks recorded, ``{"<section>.<key>": value}``
    parameters.yaml       the resolved parameter set (reusable as ``--config``)
    run.json              status, per-notebook parameters / status / wall time / rerun reason,
                          package versions, code hash and git commit, data files and pretrained
                          weights with sha256, peak kernel memory, total wall time
    notebooks/NN_*.ipynb  the executed notebooks (a failed one is kept, partially executed)
    html/NN_*.html        nbconvert HTML rendering of each executed notebook
    figures/*.png         the figures the notebooks recorded
    logs/NN_*.log         each notebook's stdout/stderr as it streamed
    artifacts/            what the lessons hand each other (splits, models, per-notebook records)
    .state/, .lock        resume manifests, file ownership, the one-run-at-a-time lock (internal)

Values come from :class:`toxhelpers.report.Recorder` files (``artifacts/metrics/<section>.json``)
that the notebooks write, never from scraping cell output.

Resume
    Rerunning into the same folder skips a notebook when its manifest (``.state/NN_*.json``) says
    it completed with
    (1) the same key: the notebook's cell sources, the parameters it received, the toxhelpers code
        (every module except this runner and its parameter checks), the key package versions, the kernel, and the data
        folder ``data_dir`` resolves to (so a newly downloaded data set is not ignored);
    (2) the same inputs: every artifact file that existed when it ran, except files written by
        itself or by later notebooks, still has the same sha256; and the data files and weights
        its record lists as inputs (``recorder.input``) re-hash the same;
    (3) its outputs intact: every artifact file it created or rewrote, its executed notebook and
        its HTML are present with the recorded sha256.
    Anything else reruns it, and the reason is printed. Inputs are compared by content, so after a
    rerun a later notebook reruns only if what it reads actually changed (a notebook's record holds
    its parameters, so a parameter change always reaches the notebooks after it). ``--force``
    reruns everything.
    Which notebook wrote which file is kept in ``.state/owners.json``, also for a notebook that
    failed or was interrupted, so files a broken run left behind never count as an earlier
    notebook's inputs. A notebook's manifest is deleted before it runs and written only after it
    and its HTML completed; every artifact is written atomically (temp file + rename; leftover
    temp and hidden files are ignored), so an interrupted or failed run never leaves anything a
    resume would trust. Before a rerun, the files the notebook wrote last time are deleted, so no
    stale output survives.
    Not detected: a file appearing that an unchanged notebook would read but did not exist when it
    ran, and a hub checkpoint name resolving to other weights than last time (e.g. the hub became
    reachable after an offline run used the bundled fallback). Use ``--force`` for those.

Reproducibility
    Same parameters and seed give identical splits (``data.split_hash.*``; tests check it) and
    metrics within ``--tolerance``: absolute, default 1e-3 on floats; counts, hashes and texts
    must match exactly; timings (keys with ``seconds``, ``_per_s``, ``speedup``, ``timing.``,
    ``throughput.``) are not compared. Two smoke runs of lessons 1-6 on one machine agreed
    exactly on every other metric; the tolerance leaves room for other CPUs and thread counts.
    ``--compare-to OTHER_RUN`` checks a run against another (exit status 3 when they differ); its
    metrics.json is read, and ``--tolerance`` checked (>= 0), before anything runs.

Exit status: 0 done, 1 a notebook failed (or the run was interrupted: 130), 2 bad command line or
parameters, 3 metrics differ from ``--compare-to``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime as dt
import difflib
import fcntl
import hashlib
import importlib.resources
import json
import logging
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from toxhelpers import parameter_checks
from toxhelpers.artifacts import atomic_path, read_json, sha256_file, write_json
from toxhelpers.peak_memory import PeakMemory

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_NOTEBOOKS_DIR = PACKAGE_DIR.parent / "notebooks"
NOTEBOOK_PATTERN = "[0-9][0-9]_*.ipynb"
DEFAULT_PROFILE = "demo"
KERNEL = "python3"
# The kernel process writes its own log to our stderr; keep only its errors (ipykernel 7 warns
# about unencrypted local TCP on every start and logs the shutdown interrupt as an error: noise
# for a local headless run; the notebook's own errors come back through papermill).
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]
RUNNER_SET = "artifacts_dir"  # always set by the runner, never by the user
PATH_SUFFIXES = ("_dir", "_path", "_file")
CHECKPOINT_SUFFIX = "checkpoint"  # a folder (resolved like the paths) or a hub model name
# How reports are made, and how parameters are checked before a run, does not change results.
CODE_EXCLUDED = {"runner.py", "__main__.py", "parameter_checks.py", "peak_memory.py"}
DEFAULT_TOLERANCE = 1e-3
SUMMARY_VERSIONS = ("python", "tensorflow", "transformers", "toxhelpers")
ARTICLE = {"test accuracy": 0.9218, "test ROC-AUC": 0.969, "majority baseline (full Kaggle test)": 0.9048}


class UsageError(Exception):
    """Bad command line, profile, config file or parameter: reported in one line, exit status 2."""


# ---------------------------------------------------------------------------------- parameters


def profiles_dir() -> Path:
    return Path(str(importlib.resources.files("toxhelpers") / "profiles"))


def available_profiles() -> list[str]:
    return sorted(path.stem for path in profiles_dir().glob("*.yaml"))


def load_profile(name: str) -> tuple[str, dict[str, Any]]:
    """A named profile, or a profile file when ``name`` is a path; returns (description, params)."""
    candidate = Path(name).expanduser()
    if name.endswith((".yaml", ".yml")) or candidate.is_file():
        return load_parameter_file(candidate, "profile")
    path = profiles_dir() / f"{name}.yaml"
    if not path.is_file():
        raise UsageError(f"unknown profile {name!r}; available: {', '.join(available_profiles())} "
                         "(or give a path to a .yaml file)")
    return load_parameter_file(path, "profile")


def load_parameter_file(path: Path, what: str) -> tuple[str, dict[str, Any]]:
    """Read a profile/config file: ``description: text`` and ``parameters: {key: value}``."""
    expected = f"expected a YAML {what} like:\n  description: what this run is for\n  parameters:\n    seed: 42"
    if not path.is_file():
        raise UsageError(f"{what} file {path} does not exist")
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise UsageError(f"{path} is not valid YAML ({error}); {expected}") from None
    unknown = set(content) - {"description", "parameters"} if isinstance(content, dict) else {None}
    if unknown or not isinstance(content.get("parameters", {}), dict):
        raise UsageError(f"{path}: unexpected content; {expected}")
    return str(content.get("description", "")).strip(), dict(content.get("parameters") or {})


def split_override(text: str) -> tuple[str, str]:
    """``key=value`` as (key, the value's text as typed)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise UsageError(f"bad -p {text!r}: expected -p key=value, e.g. -p seed=7 or -p data_dir=/path")
    return key, value


def parse_value(value: str) -> Any:
    """A ``-p`` value parsed as YAML (``7`` int, ``null`` None, ``a,b`` text); the parameter checks
    then fit it to the notebooks' types (``2e-5``, which YAML 1.1 leaves as text, for a float)."""
    try:
        return yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        return value  # not YAML: keep it as the text the user typed


def absolutize_paths(params: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative ``*_dir``/``*_path``/``*_file`` strings, made absolute against ``base``; and
    checkpoints naming a folder there (see :func:`resolve_checkpoint_folder`)."""
    fixed = dict(params)
    for key, value in params.items():
        if not isinstance(value, str) or not value:
            continue
        if key.endswith(PATH_SUFFIXES) and not Path(value).is_absolute():
            fixed[key] = str((base / Path(value).expanduser()).resolve())
        elif key.endswith(CHECKPOINT_SUFFIX):
            fixed[key] = resolve_checkpoint_folder(key, value, base)
    return fixed


def resolve_checkpoint_folder(key: str, value: str, base: Path) -> str:
    """A checkpoint that names an existing folder relative to ``base`` (where the command runs),
    as an absolute path: the notebooks run in ``notebooks/``, where a relative folder would not be
    found and would be taken for a hub name. Anything else stays a hub name, except text that can
    only be a path (``./x``, ``/x``, ``~/x``, ``a/b/c``): a missing folder is an error here."""
    from toxhelpers import pretrained

    if value == pretrained.BUNDLED:
        return value
    folder = (base / Path(value).expanduser()).resolve()
    if folder.is_dir():
        return str(folder)
    if pretrained.looks_like_path(value):
        raise UsageError(f"parameter {key}={value}: {folder} is not a folder; expected an existing "
                         f"folder (relative to {base}) or a Hugging Face hub model name like "
                         f"{pretrained.DEFAULT_CHECKPOINT}")
    return value


@dataclass
class Parameters:
    """The resolved parameter set and where it came from."""

    profile: str
    description: str
    values: dict[str, Any]
    config: str | None = None


def resolve_parameters(profile: str, config: str | os.PathLike | None, overrides: Sequence[str] | dict[str, Any],
                       base: Path | None = None, declared: dict[str, dict[str, str]] | None = None) -> Parameters:
    """profile < config file < overrides (``-p``); relative paths resolved against ``base``.

    Given the notebooks' ``declared`` parameters, every key must be declared and every value fit
    its type and range (:mod:`toxhelpers.parameter_checks`), or a UsageError says which does not.
    """
    description, values = load_profile(profile)
    if config is not None:
        values.update(load_parameter_file(Path(config).expanduser(), "config")[1])
    typed: dict[str, str] = {}
    if isinstance(overrides, dict):
        values.update(overrides)
    else:
        typed = dict(split_override(text) for text in overrides)
        values.update({key: parse_value(text) for key, text in typed.items()})
    if RUNNER_SET in values:
        raise UsageError(f"{RUNNER_SET} is set by the runner (<out>/artifacts); choose the folder with --out")
    try:
        if declared is not None:
            check_known(values, declared)
            values = parameter_checks.checked_values(values, declared, typed)
        values = absolutize_paths(values, base or Path.cwd())
        if declared is not None:
            parameter_checks.check_encoder_limit(values, declared)
    except parameter_checks.ParameterError as error:
        raise UsageError(str(error)) from None
    return Parameters(Path(profile).stem, description, values, str(config) if config else None)


def declared_parameters(notebooks: Sequence[Path]) -> dict[str, dict[str, str]]:
    """Each notebook's ``parameters`` cell: {notebook name: {parameter: default, as source text}}.

    Parsed with ``ast`` rather than papermill's line regex, which drops any line holding a second
    ``=`` (``x = 1  # e.g. y=2``) and would make that parameter impossible to set.
    """
    declared = {}
    for path in notebooks:
        source = parameters_source(path)
        try:
            tree = ast.parse(source)
        except SyntaxError as error:
            raise UsageError(f"{path.name}: its parameters cell is not plain Python ({error.msg}, "
                             f"line {error.lineno})") from None
        params: dict[str, str] = {}
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else [])
            for target in targets:
                if isinstance(target, ast.Name):
                    params[target.id] = ast.get_source_segment(source, node.value) or ""
        if RUNNER_SET not in params:
            raise UsageError(f"{path.name} has no {RUNNER_SET} in its cell tagged 'parameters'; "
                             "every lesson must declare it")
        declared[path.name] = params
    return declared


def parameters_source(path: Path) -> str:
    """The source of the notebook's code cell tagged ``parameters``."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError) as error:
        raise UsageError(f"{path} is not a readable notebook ({error})") from None
    for cell in cells:
        if cell["cell_type"] == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return "".join(cell["source"])
    raise UsageError(f"{path.name} has no code cell tagged 'parameters' (papermill needs one)")


def check_known(values: dict[str, Any], declared: dict[str, dict[str, Any]]) -> None:
    """Fail on keys no notebook declares, suggesting the closest declared names."""
    known = sorted({name for params in declared.values() for name in params} - {RUNNER_SET})
    unknown = sorted(set(values) - set(known))
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=2)
        hints.append(f"{key!r}" + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""))
    raise UsageError(f"no notebook declares parameter {', '.join(hints)}; declared: {', '.join(known)}")


def notebook_parameters(values: dict[str, Any], declared: dict[str, Any], artifacts_dir: Path) -> dict[str, Any]:
    """The subset of the run's parameters this notebook declares, plus its artifacts_dir."""
    passed = {key: value for key, value in values.items() if key in declared}
    passed[RUNNER_SET] = str(artifacts_dir)
    return dict(sorted(passed.items()))


# ---------------------------------------------------------------------------------- notebooks


def discover_notebooks(notebooks_dir: Path) -> list[Path]:
    notebooks = sorted(notebooks_dir.glob(NOTEBOOK_PATTERN))
    if not notebooks:
        raise UsageError(f"no notebooks named like {NOTEBOOK_PATTERN} in {notebooks_dir}; point "
                         "--notebooks-dir at the lessons (the repository's notebooks/ folder)")
    return notebooks


def _matches(path: Path, token: str) -> bool:
    token = token.strip().removesuffix(".ipynb")
    number = path.name[:2]
    return token in (path.stem, number) or (token.isdigit() and int(token) == int(number))


def _find(notebooks: Sequence[Path], token: str, option: str) -> int:
    for index, path in enumerate(notebooks):
        if _matches(path, token):
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


# ---------------------------------------------------------------------------------- hashing


class Hasher:
    """sha256 of files, cached by (path, size, mtime, inode) so one state is hashed once."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int, int], str] = {}

    def __call__(self, path: Path) -> str:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        if key not in self._cache:
            self._cache[key] = sha256_file(path)
        return self._cache[key]


Snapshot = dict[str, dict[str, Any]]  # {relative path: {"sha256", "mtime_ns"}}


def snapshot(folder: Path, hasher: Hasher) -> Snapshot:
    """{relative path: {sha256, mtime_ns}} of the files under ``folder`` (temp/hidden files skipped)."""
    files = {}
    if not folder.is_dir():
        return files
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts) or path.suffix == ".tmp":
            continue
        files[relative.as_posix()] = {"sha256": hasher(path), "mtime_ns": path.stat().st_mtime_ns}
    return files


def code_hash() -> str:
    """Hash of the toxhelpers modules a notebook can import (this runner excluded)."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if path.name in CODE_EXCLUDED or "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def notebook_source_hash(path: Path) -> str:
    """Hash of the cells' types and sources: saved outputs or metadata do not force a rerun."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    text = json.dumps([(cell["cell_type"], "".join(cell["source"])) for cell in cells])
    return hashlib.sha256(text.encode()).hexdigest()


def _stable(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


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


# ---------------------------------------------------------------------------------- run folder


@dataclass(frozen=True)
class RunFolder:
    """Where everything of one run goes (see the module docstring for the layout)."""

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


def write_text(text: str, path: Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------- resume


@dataclass
class Context:
    """What every notebook of one run shares."""

    folder: RunFolder
    notebooks: list[Path]  # all discovered, in order: ownership of files follows this order
    params: Parameters
    declared: dict[str, dict[str, Any]]
    key_common: dict[str, Any]
    data_source: dict[str, str] | None  # where data_dir resolves: {"path", "origin"}
    hasher: Hasher = field(default_factory=Hasher)

    def passed(self, notebook: Path) -> dict[str, Any]:
        artifacts = self.folder.artifacts.resolve()
        return notebook_parameters(self.params.values, self.declared[notebook.name], artifacts)

    def key_parts(self, notebook: Path) -> dict[str, Any]:
        parts = {"notebook": notebook_source_hash(notebook), "parameters": self.passed(notebook),
                 **self.key_common}
        if "data_dir" in self.declared[notebook.name]:
            parts["data_folder"] = (self.data_source or {}).get("path")
        return json.loads(json.dumps(parts, sort_keys=True, default=str))  # as stored in a manifest

    def manifest(self, notebook: Path) -> dict[str, Any] | None:
        path = self.folder.manifest(notebook)
        try:
            return read_json(path) if path.is_file() else None
        except (OSError, ValueError):
            return None

    def owners(self) -> dict[str, str]:
        """{artifact file: notebook that last wrote it}, kept across runs (see :func:`claim`)."""
        path = self.folder.state / "owners.json"
        try:
            return read_json(path) if path.is_file() else {}
        except (OSError, ValueError):
            return {}

    def owned_from(self, notebook: Path, offset: int = 0) -> set[str]:
        """Artifact files written by this notebook (``offset=1``: by a later one) or after it.

        A lesson only reads what earlier lessons wrote, so these never count as its inputs.
        """
        names = [path.name for path in self.notebooks]
        later = set(names[names.index(notebook.name) + offset:])
        owned = {rel for rel, owner in self.owners().items() if owner in later}
        for name in later:
            owned.update((self.manifest(self.notebooks[names.index(name)]) or {}).get("outputs", {}))
        return owned


def changed_files(before: Snapshot, after: Snapshot) -> Snapshot:
    """Files created or rewritten (new content or new mtime) between two snapshots."""
    return {rel: info for rel, info in after.items() if before.get(rel) != info}


def claim(ctx: Context, notebook: Path, files: Sequence[str]) -> None:
    """Note in the ownership ledger that ``notebook`` wrote ``files``.

    Done after success and also after a failure or Ctrl-C, so files a broken run left behind
    are still known to belong to that notebook and are never taken for an earlier one's inputs.
    """
    owners = ctx.owners()
    owners.update({rel: notebook.name for rel in files})
    write_json(owners, ctx.folder.state / "owners.json")


def _describe_change(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Say which part of the key changed, naming changed parameters."""
    if old.get("parameters") != new.get("parameters"):
        before, after = old.get("parameters", {}), new.get("parameters", {})
        shown = lambda params, key: repr(params[key]) if key in params else "(notebook default)"  # noqa: E731
        changed = [f"{key} {shown(before, key)} -> {shown(after, key)}"
                   for key in sorted(set(before) | set(after)) if before.get(key, ...) != after.get(key, ...)]
        return "parameters changed: " + ", ".join(changed)
    names = {"notebook": "notebook source changed", "code": "toxhelpers code changed",
             "versions": "package versions changed", "kernel": "kernel changed",
             "data_folder": "data folder changed"}
    for part, text in names.items():
        if old.get(part) != new.get(part):
            return text
    return "run key changed"


def _first(paths: Sequence[str]) -> str:
    return paths[0] + (f" (+{len(paths) - 1} more)" if len(paths) > 1 else "")


def recorded_input_files(record: dict[str, Any]) -> dict[str, str]:
    """{path: sha256} of the data files and weights a notebook's record lists as its inputs."""
    files = {}
    for description in record.get("inputs", {}).values():
        if not isinstance(description, dict) or not description.get("path"):
            continue
        if description.get("sha256"):
            files[str(description["path"])] = description["sha256"]
        elif description.get("weights_sha256") and description.get("weights_file"):
            files[str(Path(description["path"]) / description["weights_file"])] = description["weights_sha256"]
    return files


def assess(ctx: Context, notebook: Path) -> tuple[bool, str]:
    """(up to date?, why not): the resume decision for one notebook, as documented above."""
    manifest = ctx.manifest(notebook)
    if manifest is None:
        return False, "no completed run in this folder"
    if _stable(manifest.get("key_parts")) != _stable(ctx.key_parts(notebook)):
        return False, _describe_change(manifest.get("key_parts", {}), ctx.key_parts(notebook))
    for relative, sha in manifest.get("run_files", {}).items():
        path = ctx.folder.root / relative
        if not path.is_file() or ctx.hasher(path) != sha:
            return False, f"{relative} missing or changed"
    current = snapshot(ctx.folder.artifacts, ctx.hasher)
    for relative, info in manifest.get("outputs", {}).items():
        if relative not in current or current[relative]["sha256"] != info["sha256"]:
            return False, f"output artifacts/{relative} missing or changed"
    owned = ctx.owned_from(notebook)
    changed = sorted(rel for rel, info in manifest.get("inputs", {}).items()
                     if rel not in owned and current.get(rel, {}).get("sha256") != info["sha256"])
    if changed:
        return False, f"input artifacts changed: {_first(changed)}"
    for path, sha in manifest.get("recorded_inputs", {}).items():
        if not Path(path).is_file() or ctx.hasher(Path(path)) != sha:
            return False, f"input file {path} missing or changed"
    return True, "unchanged"


def clear_previous(ctx: Context, notebook: Path) -> None:
    """Forget a notebook's last run before rerunning it: manifest first, then its outputs."""
    manifest = ctx.manifest(notebook)
    ctx.folder.manifest(notebook).unlink(missing_ok=True)
    for relative in (manifest or {}).get("outputs", {}):
        (ctx.folder.artifacts / relative).unlink(missing_ok=True)


def write_manifest(ctx: Context, notebook: Path, before: Snapshot, wall: float) -> dict[str, Any]:
    """Record what a completed notebook read and wrote (only called after it succeeded)."""
    outputs = changed_files(before, snapshot(ctx.folder.artifacts, ctx.hasher))
    later = ctx.owned_from(notebook, offset=1)
    inputs = {rel: info for rel, info in before.items() if rel not in outputs and rel not in later}
    sections = sorted(Path(rel).stem for rel in outputs if rel.startswith("metrics/") and rel.endswith(".json"))
    recorded: dict[str, str] = {}
    for section in sections:
        recorded.update(recorded_input_files(read_json(ctx.folder.artifacts / "metrics" / f"{section}.json")))
    run_files = {ctx.folder.relative(path): ctx.hasher(path)
                 for path in (ctx.folder.executed(notebook), ctx.folder.html(notebook))}
    manifest = {"notebook": notebook.name, "key_parts": ctx.key_parts(notebook), "inputs": inputs,
                "outputs": outputs, "recorded_inputs": recorded, "run_files": run_files,
                "sections": sections, "wall_seconds": round(wall, 2), "finished_at": _now()}
    claim(ctx, notebook, list(outputs))
    write_json(manifest, ctx.folder.manifest(notebook))
    return manifest


# ---------------------------------------------------------------------------------- execution


class Tee:
    """A stream papermill writes a kernel's output to: the terminal (unless quiet) and a log file."""

    def __init__(self, terminal: TextIO | None, log: TextIO):
        self.terminal, self.log = terminal, log

    def write(self, text: str) -> int:
        for stream in (self.terminal, self.log):
            if stream is not None:
                stream.write(text)
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


def describe_failure(notebook: Path, error: BaseException) -> Failure:
    """Turn papermill's exception into (notebook, cell, error); other errors keep their type."""
    from papermill.exceptions import PapermillExecutionError

    if not isinstance(error, PapermillExecutionError):
        return Failure(notebook.name, "", f"{type(error).__name__}: {error}".strip())
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    source = error.source if isinstance(error.source, str) else "".join(error.source)
    numbers = [index for index, cell in enumerate(cells, 1) if "".join(cell["source"]) == source]
    cell = f"cell {numbers[0]} of {len(cells)}" if numbers else "a cell"
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
    :func:`declared_parameters`), so these would only confuse. Also nbclient's "Kernel died while
    waiting for execute reply", logged through papermill: after Ctrl-C it is the kernel the runner
    shut down, and a kernel that really died is reported as the notebook's failure anyway."""

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


def execute(ctx: Context, notebook: Path, quiet: bool) -> None:
    """Run one notebook through papermill, streaming its output; raises on the first failing cell."""
    import papermill

    for name in ("papermill", "papermill.translators"):  # logger filters don't apply to children
        papermill_log = logging.getLogger(name)
        if not any(isinstance(item, _ParameterNoise) for item in papermill_log.filters):
            papermill_log.addFilter(_ParameterNoise())
    asyncio_log = logging.getLogger("asyncio")
    if not any(isinstance(item, _AbandonedCellNoise) for item in asyncio_log.filters):
        asyncio_log.addFilter(_AbandonedCellNoise())

    output = ctx.folder.executed(notebook)
    output.parent.mkdir(parents=True, exist_ok=True)
    ctx.folder.log(notebook).parent.mkdir(parents=True, exist_ok=True)
    with open(ctx.folder.log(notebook), "w", encoding="utf-8") as log:
        papermill.execute_notebook(
            str(notebook), str(output), parameters=ctx.passed(notebook), kernel_name=KERNEL,
            cwd=str(notebook.parent), progress_bar=False, log_output=False,
            stdout_file=Tee(None if quiet else sys.stdout, log),
            stderr_file=Tee(None if quiet else sys.stderr, log),
            extra_arguments=KERNEL_ARGUMENTS,
        )


def render_html(executed: Path, target: Path) -> None:
    """nbconvert's HTML rendering of an executed notebook (figures are embedded)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    write_text(body, target)


# ---------------------------------------------------------------------------------- reporting


@dataclass
class NotebookStatus:
    """One notebook's outcome in this invocation."""

    name: str
    status: str  # ran | reused | failed | not run | not selected
    reason: str = ""
    wall_seconds: float | None = None
    peak_memory_mb: float | None = None  # its kernel and the kernel's children, at their largest
    parameters: dict[str, Any] = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)
    current: bool = False  # its artifacts are complete and match its inputs
    failure: Failure | None = None


@dataclass
class RunResult:
    """What :func:`run` did; ``exit_code`` is what the command returns."""

    folder: RunFolder
    notebooks: list[NotebookStatus]
    metrics: dict[str, Any]
    failure: Failure | None = None
    interrupted: bool = False
    differences: list[str] = field(default_factory=list)
    compared: bool = False  # metrics were compared with --compare-to

    @property
    def ok(self) -> bool:
        return self.failure is None and not self.interrupted

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
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


def copy_figures(ctx: Context, records: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Copy the recorded PNGs to ``<out>/figures`` (dropping ones no current record lists)."""
    target_dir = ctx.folder.root / "figures"
    names = [name for _, record in records for name in record.get("figures", [])]
    for name in names:
        source = ctx.folder.artifacts / "figures" / name
        if source.is_file():
            with atomic_path(target_dir / name) as tmp:
                shutil.copyfile(source, tmp)
    if target_dir.is_dir():
        for stale in target_dir.glob("*.png"):
            if stale.name not in names:
                stale.unlink()
    return names


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


def summary_markdown(ctx: Context, result: RunResult, records: list[tuple[str, dict[str, Any]]],
                     run_record: dict[str, Any]) -> str:
    """The one-page summary: headline table, inputs, wall times."""
    lines = [f"# toxhelpers run: profile `{ctx.params.profile}`", ""]
    if ctx.params.description:
        lines += [ctx.params.description, ""]
    failure = result.failure
    lines.append(f"- **Status:** {run_record['status']}"
                 + (f" ({failure.notebook}, {failure.cell}: {_md(failure.error)})" if failure else ""))
    memory = max((item.peak_memory_mb or 0 for item in result.notebooks), default=0)
    lines.append(f"- **Finished:** {run_record['finished_at']} · wall time {run_record['wall_seconds']:.0f} s"
                 + (f" · peak memory of a notebook {memory:,.0f} MB" if memory else ""))
    source = run_record.get("data_source") or {}
    if source:
        origin = {"demo": "no Jigsaw data found, so the demo set shipped with the package",
                  "parameter": "the data_dir parameter"}.get(source["origin"], source["origin"])
        lines.append(f"- **Data:** `{source['path']}` ({origin})")
    versions = run_record["versions"]
    shown = ", ".join(f"{name} {versions[name]}" for name in SUMMARY_VERSIONS if versions.get(name))
    lines += [f"- **Versions:** {shown} · code {run_record['code']['git_commit']}", ""]
    if source.get("origin") == "demo":
        lines += ["> **DEMO DATA.** No Jigsaw data was found; these numbers come from the tiny demo set "
                  "written by the toxhelpers authors and mean nothing for toxic-comment detection.", ""]
    lines += ["## Headline metrics", "",
              "| Notebook | Metric | This run | Majority baseline | Article (published, Kaggle test set) |",
              "|---|---|---:|---:|---:|"]
    rows = [(name, row) for name, record in records for row in record.get("headline", [])]
    for name, row in rows:
        lines.append(f"| {Path(name).stem} | {_md(row.get('label'))} | {_fmt(row.get('value'))} | "
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
              "largest together (a reused notebook did not run now).", "",
              "| Notebook | Status | Wall time (s) | Peak memory (MB) | Note |", "|---|---|---:|---:|---|"]
    for item in result.notebooks:
        wall = "" if item.wall_seconds is None else f"{item.wall_seconds:.1f}"
        memory = "" if item.peak_memory_mb is None else f"{item.peak_memory_mb:,.0f}"
        lines.append(f"| {item.name} | {item.status} | {wall} | {memory} | {_md(item.reason)} |")
    lines += ["", "Everything recorded is in `metrics.json`; parameters in `parameters.yaml`; versions, "
              "inputs with full sha256 and timings in `run.json`; executed notebooks in `notebooks/` "
              "and `html/`.", ""]
    return "\n".join(lines)


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory (MB) of the largest finished kernel and of this process (Linux: KB units)."""
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024 / 1024
    return {"kernels": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale,
            "runner": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale}


def finish_report(ctx: Context, result: RunResult, started: float, started_at: str) -> None:
    """Write metrics.json, figures, run.json and summary.md from the current records."""
    records = current_records(ctx, result.notebooks)
    result.metrics = merged_metrics(records)
    write_json(result.metrics, ctx.folder.root / "metrics.json")
    figures = copy_figures(ctx, records)
    from toxhelpers.recording import package_versions

    status = "interrupted" if result.interrupted else "failed" if result.failure else "complete"
    run_record = {
        "status": status, "started_at": started_at, "finished_at": _now(),
        "wall_seconds": round(time.monotonic() - started, 2), "peak_memory_mb": peak_memory_mb(),
        "profile": ctx.params.profile, "description": ctx.params.description, "config": ctx.params.config,
        "parameters": ctx.params.values, "versions": package_versions(),
        "code": {"toxhelpers_sha256": ctx.key_common["code"], "git_commit": git_commit(ctx.notebooks[0].parent)},
        "kernel": KERNEL, "data_source": ctx.data_source or {}, "inputs": collected_inputs(records),
        "notebooks": [asdict(item) for item in result.notebooks],
        "figures": figures, "failure": asdict(result.failure) if result.failure else None,
    }
    write_json(run_record, ctx.folder.root / "run.json")
    write_text(summary_markdown(ctx, result, records, run_record), ctx.folder.root / "summary.md")


def is_timing(key: str) -> bool:
    """Wall-clock measurements (``*_seconds``, ``*_per_s``, ``speedup``, ``timing.*``,
    ``throughput.*``) differ from run to run by nature; reproducibility checks skip them."""
    return re.search(r"(seconds|_per_s\b|speedup|(^|\.)timing\.|(^|\.)throughput\.)", key) is not None


def compare_metrics(left: dict[str, Any], right: dict[str, Any],
                    tolerance: float = DEFAULT_TOLERANCE) -> list[str]:
    """Differences between two metrics.json contents, timings (:func:`is_timing`) aside: floats
    beyond ``tolerance`` (absolute), anything else (counts, hashes, text) not exactly equal, keys
    present in only one run."""
    differences = []
    for key in sorted(set(left) | set(right)):
        if is_timing(key):
            continue
        if key not in left or key not in right:
            differences.append(f"{key}: only in {'this run' if key in left else 'the other run'}")
            continue
        a, b = left[key], right[key]
        if isinstance(a, float) or isinstance(b, float):
            if isinstance(a, (int, float)) and isinstance(b, (int, float)) and (
                    (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tolerance):
                continue
        elif a == b:
            continue
        differences.append(f"{key}: {a!r} vs {b!r}")
    return differences


# ---------------------------------------------------------------------------------- orchestration


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


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
    quiet: bool = False
    dry_run: bool = False
    compare_to: str | os.PathLike | None = None
    tolerance: float = DEFAULT_TOLERANCE


def prepare(options: RunOptions) -> tuple[Context, list[Path]]:
    """Resolve parameters and notebooks, failing with a UsageError before anything runs."""
    notebooks_dir = Path(options.notebooks_dir).expanduser().resolve()
    notebooks = discover_notebooks(notebooks_dir)
    declared = declared_parameters(notebooks)
    params = resolve_parameters(options.profile, options.config, options.overrides, declared=declared)
    selected = select_notebooks(notebooks, options.only, options.start, options.stop)
    out = Path(options.out) if options.out else Path("reports") / params.profile
    folder = RunFolder(check_out_folder(out.expanduser().resolve()))
    data_source = _resolve_data_source(params.values, declared, notebooks_dir)
    from toxhelpers.recording import package_versions

    key_common = {"code": code_hash(), "versions": _stable(package_versions()), "kernel": KERNEL}
    return Context(folder, notebooks, params, declared, key_common, data_source), selected


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


def check_out_folder(out: Path) -> Path:
    """``--out`` must be a folder, new or existing: not a file, nor inside one."""
    for path in (out, *out.parents):
        if path.exists() and not path.is_dir():
            raise UsageError(f"--out {out}: {path} is a file; expected a folder for the report "
                             "(a new one, or an earlier run's to resume)")
    return out


def check_tolerance(tolerance: float) -> float:
    if not math.isfinite(tolerance) or tolerance < 0:
        raise UsageError(f"--tolerance {tolerance}: expected a number >= 0 (absolute difference allowed on floats)")
    return tolerance


def reference_metrics(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``metrics.json`` of the run given to ``--compare-to``, read before anything runs."""
    path = Path(run_dir).expanduser() / "metrics.json"
    expected = "expected the report folder of an earlier toxhelpers run"
    if not path.is_file():
        raise UsageError(f"--compare-to {run_dir}: {path} does not exist; {expected}")
    try:
        metrics = read_json(path)
    except (OSError, ValueError) as error:
        raise UsageError(f"--compare-to {run_dir}: {path} is not readable JSON ({error}); {expected}") from None
    if not isinstance(metrics, dict):
        raise UsageError(f"--compare-to {run_dir}: {path} holds {type(metrics).__name__}, not "
                         f'{{"metric": value}}; {expected}')
    return metrics


def run(options: RunOptions) -> RunResult:
    """Execute the selected notebooks into the run folder, resuming where possible. Everything
    that can be checked without running a notebook is checked first (also for a dry run)."""
    check_tolerance(options.tolerance)
    reference = reference_metrics(options.compare_to) if options.compare_to else None
    ctx, selected = prepare(options)
    if options.dry_run:
        result = dry_run(ctx, selected, options.force)
        if reference is not None:
            print(f"then compare with {options.compare_to} ({len(reference)} metrics, tolerance {options.tolerance})")
        return result
    with locked(ctx.folder.root):
        result = execute_all(ctx, selected, options)
    if result.ok and reference is not None:
        result.differences = compare_metrics(result.metrics, reference, options.tolerance)
        result.compared = True
    return result


def execute_all(ctx: Context, selected: list[Path], options: RunOptions) -> RunResult:
    """Run or reuse each selected notebook in order; stop at the first failure; always report."""
    started, started_at = time.monotonic(), _now()
    ctx.folder.artifacts.mkdir(parents=True, exist_ok=True)
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
        result.interrupted = True
        say(f"Interrupted: partial notebook kept in {ctx.folder.root / 'notebooks'}; rerun to resume.")
    mark_unselected(ctx, statuses)
    finish_report(ctx, result, started, started_at)
    print_footer(result)
    return result


def run_one(ctx: Context, notebook: Path, status: NotebookStatus, counter: str, started: float,
            options: RunOptions) -> bool:
    """Reuse or execute one notebook, updating ``status``; False when it failed."""
    up_to_date, reason = (False, "--force") if options.force else assess(ctx, notebook)
    if up_to_date:
        manifest = ctx.manifest(notebook) or {}
        status.status, status.current = "reused", True
        status.reason = f"unchanged since {manifest.get('finished_at')}"
        status.wall_seconds, status.sections = manifest.get("wall_seconds"), manifest.get("sections", [])
        say(f"{counter} {notebook.name} reused: unchanged since {manifest.get('finished_at')} "
            f"(ran in {status.wall_seconds or 0:.1f}s; --force reruns it)")
        return True
    say(f"{counter} {notebook.name} ... (elapsed {_clock(time.monotonic() - started)}; running because {reason})")
    clear_previous(ctx, notebook)
    before = snapshot(ctx.folder.artifacts, ctx.hasher)
    clock = time.monotonic()
    status.reason = reason
    watch = PeakMemory()
    try:
        with watch:
            execute(ctx, notebook, options.quiet)
        status.peak_memory_mb = round(watch.peak_mb)
        render_html(ctx.folder.executed(notebook), ctx.folder.html(notebook))
    except KeyboardInterrupt:
        status.status, status.wall_seconds = "interrupted", round(time.monotonic() - clock, 2)
        claim(ctx, notebook, list(changed_files(before, snapshot(ctx.folder.artifacts, ctx.hasher))))
        raise
    except Exception as error:  # papermill's cell error, a dead kernel, a missing kernel...
        status.wall_seconds, status.peak_memory_mb = round(time.monotonic() - clock, 2), round(watch.peak_mb)
        claim(ctx, notebook, list(changed_files(before, snapshot(ctx.folder.artifacts, ctx.hasher))))
        status.status, status.failure = "failed", describe_failure(notebook, error)
        _render_quietly(ctx, notebook)
        say(status.failure.message(ctx.folder))
        return False
    wall = time.monotonic() - clock
    manifest = write_manifest(ctx, notebook, before, wall)
    status.status, status.wall_seconds, status.current = "ran", round(wall, 2), True
    status.sections = manifest["sections"]
    say(f"{counter} {notebook.name} done in {wall:.1f}s, peak memory {status.peak_memory_mb:,} MB "
        f"(elapsed {_clock(time.monotonic() - started)})")
    return True


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
        item.wall_seconds = manifest.get("wall_seconds")
        item.reason = ("not selected; results from an earlier run are current" if current
                       else f"not selected; stale: {reason}")


def dry_run(ctx: Context, selected: list[Path], force: bool) -> RunResult:
    """Print what each selected notebook would receive and whether it would run."""
    statuses = []
    for number, notebook in enumerate(selected, 1):
        reused, reason = (False, "--force") if force else assess(ctx, notebook)
        verdict = "would reuse (if earlier notebooks' outputs are unchanged)" if reused else f"would run: {reason}"
        print(f"[{number}/{len(selected)}] {notebook.name}: {verdict}")
        for key, value in ctx.passed(notebook).items():
            print(f"    {key} = {value!r}")
        statuses.append(NotebookStatus(notebook.name, "dry run", verdict, parameters=ctx.passed(notebook)))
    return RunResult(ctx.folder, statuses, {})


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


# ---------------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toxhelpers run",
        description="Run the lesson notebooks in order through papermill with one parameter set, "
                    "into a report folder (executed notebooks, HTML, figures, metrics.json, summary.md). "
                    "Rerunning into the same folder skips notebooks whose parameters and inputs are unchanged.",
        epilog=f"Profiles: {', '.join(available_profiles())}. Precedence: profile < --config < -p. "
               "Exit status: 0 done, 1 a notebook failed, 2 bad arguments, 3 metrics differ from --compare-to.")
    parser.add_argument("--profile", default=DEFAULT_PROFILE, metavar="NAME",
                        help=f"named profile ({', '.join(available_profiles())}) or a profile .yaml file "
                             f"(default: {DEFAULT_PROFILE})")
    parser.add_argument("--config", metavar="FILE.yaml", help="parameters overriding the profile (same format)")
    parser.add_argument("-p", "--param", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="one parameter, value parsed as YAML; repeat for more (wins over profile and config)")
    parser.add_argument("--data-dir", metavar="DIR", help="shortcut for -p data_dir=DIR")
    parser.add_argument("--out", metavar="DIR", help="report folder (default: reports/<profile>)")
    parser.add_argument("--force", action="store_true",
                        help="rerun every selected notebook, ignoring earlier results")
    parser.add_argument("--only", action="append", default=[], metavar="NB",
                        help="run only these notebooks (number or name, comma-separated or repeated)")
    parser.add_argument("--from", dest="start", metavar="NB", help="start at this notebook")
    parser.add_argument("--until", dest="stop", metavar="NB", help="stop after this notebook")
    parser.add_argument("--notebooks-dir", default=str(DEFAULT_NOTEBOOKS_DIR), metavar="DIR",
                        help="where the NN_name.ipynb lessons are (default: the repository's notebooks/)")
    parser.add_argument("--dry-run", action="store_true",
                        help="show each notebook's parameters and whether it would run")
    parser.add_argument("--quiet", action="store_true", help="don't stream notebook output (still saved in logs/)")
    parser.add_argument("--compare-to", metavar="RUN_DIR",
                        help="after the run, compare metrics.json with another run's")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help=f"absolute tolerance on float metrics for --compare-to (default {DEFAULT_TOLERANCE})")
    return parser


def options_from_args(args: argparse.Namespace) -> RunOptions:
    overrides = list(args.overrides)
    if args.data_dir:
        overrides.append(f"data_dir={Path(args.data_dir).expanduser().resolve()}")
    return RunOptions(profile=args.profile, config=args.config, overrides=overrides, out=args.out,
                      notebooks_dir=args.notebooks_dir, only=args.only, start=args.start, stop=args.stop,
                      force=args.force, quiet=args.quiet, dry_run=args.dry_run, compare_to=args.compare_to,
                      tolerance=args.tolerance)


def main(argv: Sequence[str] | None = None) -> int:
    """``toxhelpers run``: returns the exit status (see the module docstring)."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        result = run(options_from_args(args))
    except UsageError as error:
        print(f"toxhelpers run: error: {error}", file=sys.stderr)
        return 2
    for line in result.differences:
        say(f"differs from {args.compare_to}: {line}")
    if result.differences:
        say(f"{len(result.differences)} metric(s) differ beyond tolerance {args.tolerance} (timings not compared)")
    elif result.compared:
        say(f"metrics match {args.compare_to} within tolerance {args.tolerance} (timings not compared)")
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
