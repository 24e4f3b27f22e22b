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

DEFAULT_PROFILE = "demo"
RUNNER_SET = "artifacts_dir"  # always set by the runner, never by the user
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
    its type and range (:mod:`toxhelpers.run.checks`), or a UsageError says which does not.
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
            values = checks.checked_values(values, declared, typed)
        values = absolutize_paths(values, base or Path.cwd())
        if declared is not None:
            checks.check_folders(values)
            checks.check_encoder_limit(values, declared)
    except checks.ParameterError as error:
        raise UsageError(str(error)) from None
    return Parameters(Path(profile).stem, description, values, str(config) if config else None)


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
