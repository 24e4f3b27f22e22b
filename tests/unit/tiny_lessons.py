"""Tiny throwaway lessons for the run tooling's tests (no TensorFlow, a few seconds each).

Two lessons stand in for the walkthrough: ``01_make`` reads a data file, writes an artifact, a
figure and a record (through the real toxhelpers Recorder); ``02_use`` reads that artifact and
can be told to fail. Together they exercise parameter filtering, precedence, the report folder,
failure reporting and every resume decision. Test modules import the fixtures they use.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import yaml

from toxhelpers.run import resume
from toxhelpers.run.orchestrate import RunOptions
from toxhelpers.run.summary import RunResult

KERNELSPEC = {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"},
              "language_info": {"name": "python"}}

MAKE = [
    'artifacts_dir = "../artifacts"\ndata_file = None\nsize = 3\nseed = 0',
    "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
    "from toxhelpers import recording\nfrom toxhelpers.artifacts import sha256_file, write_json\n"
    "recorder = recording.Recorder(artifacts_dir, 'make', globals())",
    "recorder.input('numbers', {'path': data_file, 'sha256': sha256_file(data_file)})\n"
    "numbers = [int(line) for line in open(data_file).read().split()][:size]\n"
    "write_json(numbers, f'{artifacts_dir}/data/numbers.json')\n"
    "print('made', numbers)",
    "recorder.metric('count', len(numbers))\n"
    "recorder.headline('total', float(sum(numbers)), key='total', baseline=1.5, article=0.9218)\n"
    "fig, ax = plt.subplots(figsize=(2, 2))\nax.plot(numbers)\nrecorder.figure(fig, 'numbers')",
]
USE = [
    'artifacts_dir = "../artifacts"\nscale = 2\n'
    "fail = False  # e.g. fail=True: papermill's own parser skips this line",
    "import json\nfrom toxhelpers import recording\n"
    "recorder = recording.Recorder(artifacts_dir, 'use', globals())",
    "numbers = json.load(open(f'{artifacts_dir}/data/numbers.json'))\nif fail:\n"
    "    raise ValueError('scale must be positive')\nrecorder.metric('scaled', [n * scale for n in numbers])\n"
    "recorder.headline('scaled total', float(sum(numbers) * scale), key='scaled_total')",
]


@pytest.fixture(autouse=True)
def stable_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other people edit toxhelpers modules while these tests run; the code hash is tested apart.
    Autouse: every test module importing it gets it."""
    monkeypatch.setattr(resume, "code_hash", lambda notebook=None: "code")


def write_notebook(path: Path, cells: list[str]) -> Path:
    notebook = nbformat.v4.new_notebook(metadata=KERNELSPEC)
    notebook.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}")]
    notebook.cells += [nbformat.v4.new_code_cell(cells[0], metadata={"tags": ["parameters"]})]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in cells[1:]]
    nbformat.write(notebook, path)
    return path


@pytest.fixture()
def lessons(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write_notebook(folder / "01_make.ipynb", MAKE)
    write_notebook(folder / "02_use.ipynb", USE)
    (tmp_path / "numbers.txt").write_text("1\n2\n3\n4\n")
    return folder


@pytest.fixture()
def profile(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({"description": "tiny test profile",
                                    "parameters": {"data_file": str(tmp_path / "numbers.txt"), "size": 2}}))
    return path


def options(lessons: Path, profile: Path, **changes) -> RunOptions:
    base = dict(profile=str(profile), notebooks_dir=lessons, out=lessons.parent / "report", quiet=True)
    return RunOptions(**(base | changes))


def command_line(lessons: Path, profile: Path, *extra: str) -> list[str]:
    """``toxhelpers run``'s arguments for the tiny lessons into ``<tmp>/report``, quietly."""
    return ["--profile", str(profile), "--notebooks-dir", str(lessons), "--out", str(lessons.parent / "report"),
            "--quiet", *extra]


def statuses(result: RunResult) -> dict[str, str]:
    return {Path(item.name).stem: item.status for item in result.notebooks}
