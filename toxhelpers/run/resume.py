"""Resume: whether a notebook's results in the report folder can be reused, and the records
(manifests, file ownership) that decision rests on. The rules are documented for users in
:mod:`toxhelpers.run.cli` ("Resume").

A notebook is reused when its key (cell sources, parameters received, the toxhelpers code it
imports, package versions, kernel, data folder) is unchanged, its inputs re-hash the same and its
outputs are intact. The code hash (:mod:`toxhelpers.run.package_code`) leaves out this ``run``
package and ``__main__.py``: how notebooks are run and reported never changes their results, so
changing it never forces a rerun.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toxhelpers.artifacts import read_json, sha256_file, write_json
from toxhelpers.recording import reproducible_part
from toxhelpers.run.package_code import code_hash
from toxhelpers.run.parameters import RUNNER_SET, Parameters, notebook_parameters
from toxhelpers.run.run_folder import RunFolder

FOLDER_SUFFIX = "_dir"  # a parameter naming a folder of inputs (its files are part of the resume key)
UNHASHED_FOLDERS = {"artifacts_dir", "data_dir"}  # the run's own folder; the data files lesson 1 records


def utc_now() -> str:
    """Now, as stamped in manifests and run.json (UTC, to the second)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class Hasher:
    """sha256 of files, cached by (path, size, mtime, inode) so one state is hashed once."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, int, int, int], str] = {}

    def __call__(self, path: Path) -> str:
        return self._cached(path, "file", sha256_file)

    def record_content(self, path: Path) -> str:
        """Hash of a lesson's record without its per-execution measurements
        (:func:`toxhelpers.recording.reproducible_part`); the file's own hash if it is unreadable."""
        def digest(record_path: Path) -> str:
            try:
                return stable_hash(reproducible_part(read_json(record_path)))
            except (OSError, ValueError):
                return sha256_file(record_path)
        return self._cached(path, "record", digest)

    def _cached(self, path: Path, kind: str, compute: Any) -> str:
        stat = path.stat()
        key = (kind, str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        if key not in self._cache:
            self._cache[key] = compute(path)
        return self._cache[key]


Snapshot = dict[str, dict[str, Any]]  # {relative path: {"sha256", "mtime_ns"[, "content"]}}
RECORDS_FOLDER = "metrics"  # artifacts/metrics/<section>.json: the lessons' records


def snapshot(folder: Path, hasher: Hasher) -> Snapshot:
    """{relative path: {sha256, mtime_ns}} of the files under ``folder`` (temp/hidden files skipped).
    A lesson's record also gets ``content``: its hash without peak memory and timings, what a later
    lesson's resume compares (see :func:`input_digest`)."""
    files = {}
    if not folder.is_dir():
        return files
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts) or path.suffix == ".tmp":
            continue
        files[relative.as_posix()] = info = {"sha256": hasher(path), "mtime_ns": path.stat().st_mtime_ns}
        if relative.parts[0] == RECORDS_FOLDER and path.suffix == ".json":
            info["content"] = hasher.record_content(path)
    return files


def input_digest(info: dict[str, Any]) -> str | None:
    """What counts as an input file's content for resume. For a record, its reproducible part: a
    rerun lesson that computed the same results but measured another time or peak memory leaves
    the lessons after it reused (they used to rerun in a cascade). Other files: their sha256."""
    return info.get("content", info.get("sha256"))


def folder_hash(folder: Path, hasher: Hasher) -> str | None:
    """One hash of a folder's files (names and contents), None when it is not a folder."""
    if not folder.is_dir():
        return None
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    return stable_hash([(path.relative_to(folder).as_posix(), hasher(path)) for path in files])


def notebook_source_hash(path: Path) -> str:
    """Hash of the cells' types and sources: saved outputs or metadata do not force a rerun."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    text = json.dumps([(cell["cell_type"], "".join(cell["source"])) for cell in cells])
    return hashlib.sha256(text.encode()).hexdigest()


def stable_hash(value: Any) -> str:
    """A hash of any JSON-able value, independent of key order (for comparing resume keys)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Context:
    """What every notebook of one run shares."""

    folder: RunFolder
    notebooks: list[Path]  # all discovered, in order: ownership of files follows this order
    params: Parameters
    declared: dict[str, dict[str, Any]]
    key_common: dict[str, Any]  # the package versions and the kernel (the code is each notebook's own)
    data_source: dict[str, str] | None  # where data_dir resolves: {"path", "origin"}
    package_code: str  # code_hash() of the whole package: the report's toxhelpers_sha256
    hasher: Hasher = field(default_factory=Hasher)
    code_hashes: dict[Path, str] = field(default_factory=dict)  # code_hash(notebook), once per run

    def passed(self, notebook: Path) -> dict[str, Any]:
        artifacts = self.folder.artifacts.resolve()
        return notebook_parameters(self.params.values, self.declared[notebook.name], artifacts, notebook.name)

    def key_parts(self, notebook: Path) -> dict[str, Any]:
        """What a notebook's results depend on. Paths inside the report folder are kept relative
        to it (``artifacts_dir`` is ``artifacts``), so a moved or copied report resumes."""
        passed = self.passed(notebook)
        parameters = {**passed, RUNNER_SET: self.folder.relative(Path(passed[RUNNER_SET]))}
        parts = {"notebook": notebook_source_hash(notebook), "parameters": parameters, **self.key_common,
                 "code": self.code_hash(notebook)}
        if "data_dir" in self.declared[notebook.name]:
            parts["data_folder"] = (self.data_source or {}).get("path")
        folders = {key: folder_hash(Path(value), self.hasher) for key, value in parts["parameters"].items()
                   if key.endswith(FOLDER_SUFFIX) and key not in UNHASHED_FOLDERS and isinstance(value, str)}
        if folders:
            parts["folders"] = folders
        return json.loads(json.dumps(parts, sort_keys=True, default=str))  # as stored in a manifest

    def code_hash(self, notebook: Path) -> str:
        """:func:`code_hash` of ``notebook``, computed once per run (as the whole package's was)."""
        if notebook not in self.code_hashes:
            self.code_hashes[notebook] = code_hash(notebook)
        return self.code_hashes[notebook]

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
    for key in sorted(set(old.get("folders", {})) | set(new.get("folders", {}))):
        if old.get("folders", {}).get(key) != new.get("folders", {}).get(key):
            return f"files in {key} changed"
    names = {"notebook": "notebook source changed", "code": "toxhelpers code or its data changed",
             "versions": "package versions changed", "kernel": "kernel changed",
             "data_folder": "data folder changed"}
    for part, text in names.items():
        if old.get(part) != new.get(part):
            return text
    return "run key changed"


def _first(paths: Sequence[str]) -> str:
    return paths[0] + (f" (+{len(paths) - 1} more)" if len(paths) > 1 else "")


def foreign_files(ctx: Context, notebook: Path, manifest: dict[str, Any], current: Snapshot) -> list[str]:
    """Files no lesson wrote, in a folder that holds only this notebook's outputs (a weight file
    planted in ``finetuned/model/encoder/`` would be loaded by the next lesson; the loader refuses
    it, and the notebook is not counted up to date while it is there). Shared folders such as
    ``metrics/`` are left out: their files belong to several notebooks."""
    owners = ctx.owners()
    mine = set(manifest.get("outputs", {}))
    folders = {Path(rel).parent for rel in mine} - {Path(".")}
    shared = {Path(rel).parent for rel, owner in owners.items() if owner != notebook.name}
    own_folders = folders - shared
    return sorted(rel for rel in current
                  if Path(rel).parent in own_folders and rel not in mine and rel not in owners)


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
    if stable_hash(manifest.get("key_parts")) != stable_hash(ctx.key_parts(notebook)):
        return False, _describe_change(manifest.get("key_parts", {}), ctx.key_parts(notebook))
    for relative, sha in manifest.get("run_files", {}).items():
        path = ctx.folder.root / relative
        if not path.is_file() or ctx.hasher(path) != sha:
            return False, f"{relative} missing or changed"
    current = snapshot(ctx.folder.artifacts, ctx.hasher)
    for relative, info in manifest.get("outputs", {}).items():
        if relative not in current or current[relative]["sha256"] != info["sha256"]:
            return False, f"output artifacts/{relative} missing or changed"
    planted = foreign_files(ctx, notebook, manifest, current)
    if planted:
        return False, f"artifacts/{_first(planted)} appeared among its outputs, written by no lesson"
    owned = ctx.owned_from(notebook)
    changed = sorted(rel for rel, info in manifest.get("inputs", {}).items()
                     if rel not in owned and input_digest(current.get(rel, {})) != input_digest(info))
    if changed:
        return False, f"input artifacts changed: {_first(changed)}"
    for path, sha in manifest.get("recorded_inputs", {}).items():
        if not Path(path).is_file() or ctx.hasher(Path(path)) != sha:
            return False, f"input file {path} missing or changed"
    for relative, sha in manifest.get("recorded_inputs_in_report", {}).items():
        path = ctx.folder.root / relative
        if not path.is_file() or ctx.hasher(path) != sha:
            return False, f"input file {relative} missing or changed"
    return True, "unchanged"


def declared_outputs_missing(notebook: Path, outputs: Snapshot) -> list[str]:
    """The outputs a notebook should have written when it wrote none of them (else []): the
    artifacts :data:`toxhelpers.artifacts.ARTIFACTS` says it produces, or, for a notebook the table
    does not list, at least one file. A notebook that wrote nothing (e.g. a process that took
    itself for another worker and wrote to a scratch folder) is never recorded complete."""
    import re

    from toxhelpers.artifacts import ARTIFACTS

    declared = sorted(item.path for item in ARTIFACTS.values()
                      if item.produced_by == notebook.name and not item.is_checkpoint)
    if not declared:
        return [] if outputs else ["any file"]
    patterns = [re.compile(re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(path)) + "(/.*)?$") for path in declared]
    return [] if any(pattern.match(rel) for rel in outputs for pattern in patterns) else declared


def check_earlier_outputs(ctx: Context, selected: Sequence[Path]) -> None:
    """Before anything runs: what a selected notebook reads from an earlier notebook that this run
    does not execute (``--only``, ``--from``) must be exactly what that notebook wrote. Every file
    such a notebook recorded as its output (and still owns) must hash as recorded, and a notebook
    that never completed must have left nothing behind; otherwise one error names the file and the
    notebook to rerun. (Without it, a tampered or half-written earlier result was read as is.)"""
    from toxhelpers.run.errors import UsageError

    names = [path.name for path in ctx.notebooks]
    chosen = {path.name for path in selected}
    last = max((names.index(name) for name in chosen), default=-1)
    earlier = [path for path in ctx.notebooks[:last] if path.name not in chosen]
    if not earlier:
        return
    current, owners = snapshot(ctx.folder.artifacts, ctx.hasher), ctx.owners()
    for notebook in earlier:
        manifest = ctx.manifest(notebook)
        rerun = f"rerun {notebook.name} first (e.g. --from {notebook.name[:2]})"
        if manifest is None:
            left = sorted(rel for rel, owner in owners.items() if owner == notebook.name and rel in current)
            if left:
                raise UsageError(f"artifacts/{_first(left)} was left by {notebook.name}, which did not complete; "
                                 f"{rerun}")
            continue
        for relative, info in sorted(manifest.get("outputs", {}).items()):
            if owners.get(relative, notebook.name) != notebook.name:
                continue  # a later notebook rewrote it; that one is checked in turn
            if current.get(relative, {}).get("sha256") != info["sha256"]:
                state = "is missing" if relative not in current else "changed"
                raise UsageError(f"artifacts/{relative} {state} since {notebook.name} wrote it, and this run "
                                 f"does not run {notebook.name}; {rerun}")


def clear_previous(ctx: Context, notebook: Path) -> None:
    """Forget a notebook's last run before rerunning it: manifest first, then its outputs."""
    manifest = ctx.manifest(notebook)
    ctx.folder.manifest(notebook).unlink(missing_ok=True)
    for relative in (manifest or {}).get("outputs", {}):
        (ctx.folder.artifacts / relative).unlink(missing_ok=True)


def keep_checkpoints_of_same_attempt(ctx: Context, notebook: Path, before: Snapshot, force: bool = False) -> None:
    """A lesson's training checkpoints (``artifacts/.checkpoints/...``, see
    :class:`toxhelpers.checkpointing.TrainingCheckpoint`) are saved by an execution that may not finish.
    Kept for the next execution only if it has the same key (notebook source, parameters, code,
    versions, kernel, data folder) and the same inputs, so a fit resumes only state that its own
    code and data saved; removed otherwise, and with ``--force``. Called just before the notebook
    runs, with the artifacts as they are then (``before``); the hidden folder is neither an input
    nor an output of the notebook, so nothing else deletes it or depends on it."""
    from toxhelpers.artifacts import checkpoint_folders

    owned = ctx.owned_from(notebook)
    attempt = {"key": stable_hash(ctx.key_parts(notebook)),
               "inputs": stable_hash({rel: input_digest(info) for rel, info in before.items() if rel not in owned})}
    path = ctx.folder.attempt(notebook)
    try:
        previous = read_json(path) if path.is_file() else None
    except (OSError, ValueError):
        previous = None
    if force or previous != attempt:
        for folder in checkpoint_folders(ctx.folder.artifacts, notebook.name):
            shutil.rmtree(folder, ignore_errors=True)
    write_json(attempt, path)


def write_manifest(ctx: Context, notebook: Path, before: Snapshot, wall: float,
                   peak_memory_mb: float | None = None, peak_memory_cell: str | None = None,
                   memory_rises: list[tuple[str, int]] | None = None) -> dict[str, Any]:
    """Record what a completed notebook read and wrote (only called after it succeeded), and what
    its execution cost: wall seconds and peak memory (MB, and the cell it was seen in), which a
    later run that reuses the notebook reports as measured in this earlier run. Manifests written
    before these were kept have no ``peak_memory_mb``, ``peak_memory_cell`` or ``memory_rises`` (the
    level at the end of each cell that raised the peak); readers take them as unknown."""
    outputs = changed_files(before, snapshot(ctx.folder.artifacts, ctx.hasher))
    later = ctx.owned_from(notebook, offset=1)
    inputs = {rel: info for rel, info in before.items() if rel not in outputs and rel not in later}
    sections = sorted(Path(rel).stem for rel in outputs if rel.startswith("metrics/") and rel.endswith(".json"))
    recorded: dict[str, str] = {}
    for section in sections:
        recorded.update(recorded_input_files(read_json(ctx.folder.artifacts / "metrics" / f"{section}.json")))
    run_files = {ctx.folder.relative(path): ctx.hasher(path)
                 for path in (ctx.folder.executed(notebook), ctx.folder.html(notebook))}
    root = ctx.folder.root.resolve()
    in_report = {Path(path).resolve().relative_to(root).as_posix(): sha for path, sha in recorded.items()
                 if Path(path).is_absolute() and Path(path).resolve().is_relative_to(root)}
    recorded = {path: sha for path, sha in recorded.items()
                if not (Path(path).is_absolute() and Path(path).resolve().is_relative_to(root))}
    manifest = {"notebook": notebook.name, "key_parts": ctx.key_parts(notebook), "inputs": inputs,
                "outputs": outputs, "recorded_inputs": recorded, "recorded_inputs_in_report": in_report,
                "run_files": run_files,
                "sections": sections, "wall_seconds": round(wall, 2), "peak_memory_mb": peak_memory_mb,
                "peak_memory_cell": peak_memory_cell, "memory_rises": memory_rises or [],
                "finished_at": utc_now()}
    claim(ctx, notebook, list(outputs))
    write_json(manifest, ctx.folder.manifest(notebook))
    return manifest
