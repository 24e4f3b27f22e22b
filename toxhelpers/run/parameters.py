"""One parameter set for the whole run, and which of it each notebook receives.

Precedence: a named profile (``toxhelpers/profiles/*.yaml``, or a path to such a file), then
``--config FILE.yaml``, then ``-p key=value`` (values parsed as YAML), later ones winning. What
each notebook declares comes from its cell tagged ``parameters``; a key no notebook declares is an
error, so a typo never silently runs the defaults. Values are checked by :mod:`.checks`.
"""

from __future__ import annotations

import difflib
import importlib.resources
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from toxhelpers.run import checks
from toxhelpers.run.errors import UsageError
from toxhelpers.run.notebooks import matches

DEFAULT_PROFILE = "demo"
RUNNER_SET = "artifacts_dir"  # always set by the runner, never by the user
SCOPE = "."  # -p 06.epochs=2 (or 06_finetuning.epochs=2): a value for that notebook only
PATH_SUFFIXES = checks.PATH_SUFFIXES
CHECKPOINT_SUFFIX = "checkpoint"  # a folder (resolved like the paths) or a hub model name


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
    scope, _, name = key.rpartition(SCOPE)
    if not sep or not name.isidentifier() or (SCOPE in key and not scope.replace("_", "").isalnum()):
        raise UsageError(f"bad -p {text!r}: expected -p key=value, e.g. -p seed=7 or -p data_dir=/path "
                         "(or -p 06.epochs=2 for one notebook)")
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
    its type and range (:mod:`toxhelpers.run.checks`), or a UsageError says which does not.
    """
    values: dict[str, Any] = {}
    typed: dict[str, str] = {}
    description, profile_values = load_profile(profile)
    sources = [profile_values]
    if config is not None:
        sources.append(load_parameter_file(Path(config).expanduser(), "config")[1])
    if isinstance(overrides, dict):
        sources.append(dict(overrides))
    else:
        texts = [split_override(text) for text in overrides]
        sources.append({key: parse_value(text) for key, text in texts})
        typed = {scoped_name(key, declared): text for key, text in texts}
    for source in sources:
        merge_source(values, source, declared)
    if any(key.rpartition(SCOPE)[2] == RUNNER_SET for key in values):
        raise UsageError(f"{RUNNER_SET} is set by the runner (<out>/artifacts); choose the folder with --out")
    try:
        if declared is not None:
            check_known(values, declared)
            values = checks.checked_values(values, declared, typed)
        values = absolutize_paths(values, base or Path.cwd())
        if declared is not None:
            checks.check_folders(values)
            checks.check_encoder_limit(values, declared)
    except checks.ParameterError as error:
        raise UsageError(str(error)) from None
    return Parameters(Path(profile).stem, description, values, str(config) if config else None)


def scoped_name(key: str, declared: dict[str, dict[str, str]] | None) -> str:
    """``06.epochs`` or ``06_finetuning.epochs`` as ``06_finetuning.epochs`` (a plain key, or any
    key when the notebooks are not known, unchanged); a scope naming no notebook, or a notebook
    not declaring the key, is an error."""
    scope, dot, name = key.rpartition(SCOPE)
    if not dot or declared is None:
        return key
    found = [notebook for notebook in declared if matches(Path(notebook), scope)]
    if not found:
        have = ", ".join(Path(notebook).stem for notebook in declared)
        raise UsageError(f"parameter {key}: {scope!r} names no notebook; expected NN.{name} or NN_name.{name} "
                         f"with a notebook of {have}")
    if name not in declared[found[0]]:
        raise UsageError(f"parameter {key}: {found[0]} declares no {name!r}; it has "
                         f"{', '.join(sorted(set(declared[found[0]]) - {RUNNER_SET}))}")
    return f"{Path(found[0]).stem}{SCOPE}{name}"


def merge_source(values: dict[str, Any], source: dict[str, Any], declared: dict[str, dict[str, str]] | None) -> None:
    """Add one source's values (profile, then config, then -p), later ones winning: a plain key
    also replaces the scoped values of that key that earlier sources set; within one source a
    scoped value (``06.epochs``) is more specific than the plain one, whatever their order."""
    named = [(scoped_name(str(key), declared), value) for key, value in source.items()]
    for key, value in sorted(named, key=lambda item: SCOPE in item[0]):
        if SCOPE not in key:
            for earlier in [old for old in values if SCOPE in old and old.rpartition(SCOPE)[2] == key]:
                del values[earlier]
        values[key] = value


def check_unambiguous(values: dict[str, Any], declared: dict[str, dict[str, str]], selected: Sequence[Path]) -> None:
    """A plain key must mean one thing: when the selected notebooks it reaches declare it with
    different defaults (lesson 5's epochs=6, lesson 6's epochs=1), one value for all is a knob
    that turns two things, so it is refused with the scoped forms to use instead. Keys declared
    alike everywhere (seed, max_length, ...) stay plain."""
    import ast

    for key in sorted(key for key in values if SCOPE not in key):
        reached = [path for path in selected if key in declared.get(path.name, {})
                   and f"{path.stem}{SCOPE}{key}" not in values]
        defaults = {path.name: declared[path.name][key] for path in reached}
        meanings = set()
        for source in defaults.values():
            try:
                meanings.add(repr(ast.literal_eval(source)))
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                meanings.add(source)
        if len(meanings) > 1:
            shown = ", ".join(f"{name} (default {source})" for name, source in defaults.items())
            scoped = " ".join(f"-p {Path(name).stem[:2]}{SCOPE}{key}=..." for name in defaults)
            raise UsageError(f"parameter {key} is ambiguous: {shown} declare it with different defaults; "
                             f"set it for one notebook: {scoped}")


def declared_parameters(notebooks: Sequence[Path]) -> dict[str, dict[str, str]]:
    """Each notebook's ``parameters`` cell: {notebook name: {parameter: default, as source text}},
    read the way the lessons' Recorder reads it (:func:`toxhelpers.recording.declared_parameters`)."""
    from toxhelpers import recording

    declared = {}
    for path in notebooks:
        try:
            params = recording.declared_parameters(recording.parameters_cell(path), f"{path.name}: its parameters cell")
        except ValueError as error:
            raise UsageError(str(error)) from None
        if RUNNER_SET not in params:
            raise UsageError(f"{path.name} has no {RUNNER_SET} in its cell tagged 'parameters'; "
                             "every lesson must declare it")
        declared[path.name] = params
    return declared


def check_reaches_selected(overrides: Sequence[str] | dict[str, Any], declared: dict[str, dict[str, str]],
                           selected: Sequence[Path]) -> None:
    """A value given on the command line (``-p``) must reach a notebook the run executes: ``-p
    strategy=mirrored --from 05 --until 06`` would otherwise be silently unused (lesson 11 alone
    declares it). Profile and config values may cover lessons a run leaves out."""
    keys = list(overrides) if isinstance(overrides, dict) else [split_override(text)[0] for text in overrides]
    for key in keys:
        scoped = scoped_name(key, declared)
        scope, dot, name = scoped.rpartition(SCOPE)
        reached = [path for path in selected if name in declared.get(path.name, {})
                   and (not dot or path.stem == scope)]
        if not reached:
            owners = [Path(notebook).stem for notebook, params in declared.items() if name in params
                      and (not dot or Path(notebook).stem == scope)]
            chosen = ", ".join(path.stem for path in selected)
            raise UsageError(f"parameter {key} reaches none of the selected notebooks ({chosen}); "
                             f"{' and '.join(owners)} declare{'s' if len(owners) == 1 else ''} it: select "
                             f"{'it' if len(owners) == 1 else 'one of them'} (--only, --from, --until) or drop -p {key}")


def check_known(values: dict[str, Any], declared: dict[str, dict[str, Any]]) -> None:
    """Fail on keys no notebook declares, suggesting the closest declared names (a scoped key,
    ``06.epochs``, must name a notebook that declares it)."""
    for key in values:
        scoped_name(key, declared)
    known = sorted({name for params in declared.values() for name in params} - {RUNNER_SET})
    unknown = sorted(key for key in values if SCOPE not in key and key not in known)
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=2)
        hints.append(f"{key!r}" + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""))
    raise UsageError(f"no notebook declares parameter {', '.join(hints)}; declared: {', '.join(known)}")


def notebook_parameters(values: dict[str, Any], declared: dict[str, Any], artifacts_dir: Path,
                        notebook: str = "") -> dict[str, Any]:
    """The subset of the run's parameters this notebook declares (its scoped values,
    ``<stem>.key``, over the plain ones), plus its artifacts_dir."""
    passed = {key: value for key, value in values.items() if key in declared}
    prefix = f"{Path(notebook).stem}{SCOPE}"
    passed.update({key[len(prefix):]: value for key, value in values.items() if notebook and key.startswith(prefix)})
    passed[RUNNER_SET] = str(artifacts_dir)
    return dict(sorted(passed.items()))
