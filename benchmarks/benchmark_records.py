"""Where every benchmark keeps its record: ``benchmarks/results/<name>_<date>.json`` (everything
measured, with the machine and versions) and ``.md`` (the readable tables), side by side."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def save_record(name: str, record: dict, markdown: str | Sequence[str], date: str | None = None) -> Path:
    """Write both files (``date``: YYYY-MM-DD, default today) and return their common stem."""
    RESULTS_DIR.mkdir(exist_ok=True)
    stem = RESULTS_DIR / f"{name}_{date or dt.date.today().isoformat()}"
    Path(f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
    Path(f"{stem}.md").write_text(markdown if isinstance(markdown, str) else "\n".join(markdown) + "\n")
    return stem


def machine() -> dict:
    """What a record was measured on: speeds only compare between records of the same machine."""
    from toxhelpers.distribute import cpu_description

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor(),
            "cpu": cpu_description(), "memory_gb": round(memory / 1024 ** 3, 1) if memory else None}
