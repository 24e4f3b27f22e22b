"""``--compare-to`` and ``--tolerance``: is this run's ``metrics.json`` the same as another's?

Floats may differ by the tolerance (other CPUs and thread counts round differently); counts,
hashes and texts must match exactly; timings are never compared. Both options are checked before
anything runs, so a typo does not cost a whole run.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from toxhelpers.artifacts import read_json
from toxhelpers.recording import is_timing
from toxhelpers.run.errors import UsageError

DEFAULT_TOLERANCE = 1e-3


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


def check_tolerance(tolerance: float) -> float:
    """The tolerance, or a UsageError: NaN or a negative one would make every comparison meaningless."""
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
