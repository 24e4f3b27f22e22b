"""Where every benchmark keeps its record: ``benchmarks/results/<name>_<date>.json`` (everything
measured, with the machine and versions) and ``.md`` (the readable tables), side by side."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


_WRITTEN: dict[Path, Path] = {}  # results/name_date -> the stem this process writes it to


def save_record(name: str, record: dict, markdown: str | Sequence[str], date: str | None = None) -> Path:
    """Write both files (``date``: YYYY-MM-DD, default today) and return their common stem. A
    process rewrites its own record (a benchmark that saves after each step), but never one that
    was there before it started: two runs on one day, or a run on the day of a committed record,
    would otherwise lose the earlier one. This one then takes the next free ``_2``, ``_3``..."""
    RESULTS_DIR.mkdir(exist_ok=True)
    base = RESULTS_DIR / f"{name}_{date or dt.date.today().isoformat()}"
    if base not in _WRITTEN:
        candidates = (base, *(base.with_name(f"{base.name}_{n}") for n in range(2, 10_000)))
        _WRITTEN[base] = next(stem for stem in candidates
                              if not Path(f"{stem}.json").exists() and not Path(f"{stem}.md").exists())
    stem = _WRITTEN[base]
    Path(f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
    Path(f"{stem}.md").write_text(markdown if isinstance(markdown, str) else "\n".join(markdown) + "\n")
    return stem


def machine() -> dict:
    """What a record was measured on: speeds only compare between records of the same machine."""
    from toxhelpers.distribute import cpu_description

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor(),
            "cpu": cpu_description(), "memory_gb": round(memory / 1024 ** 3, 1) if memory else None}


def bundled_classifier(precision: str = "float32") -> Any:
    """Lesson 6's classifier on the bundled encoder, trainable and compiled, seeded: what the
    per-step benchmarks (precision_shapes, step_memory) train, built one way for both."""
    from toxhelpers import distribute, model, pretrained, training

    distribute.set_precision(precision)
    training.seed_everything(0)
    checkpoint = pretrained.resolve_checkpoint(pretrained.BUNDLED, announce=False)
    encoder = pretrained.load_encoder(checkpoint, pretrained.encoder_config(checkpoint))
    classifier = model.build_classifier(encoder, model.build_head(encoder.config.hidden_size, [64], dropout=0.1, seed=0),
                                        "cls")
    model.set_encoder_trainable(encoder, True)
    model.compile_model(classifier, learning_rate=1e-5)
    return classifier


def random_batch(rng: Any, rows: int, width: int) -> tuple[dict, Any]:
    """One batch of ``rows`` x ``width`` random token ids, every position real, and random labels."""
    import numpy as np

    inputs = {"input_ids": rng.integers(1000, 30000, (rows, width)).astype("int32"),
              "attention_mask": np.ones((rows, width), dtype="int32")}
    return inputs, rng.integers(0, 2, (rows, 1)).astype("float32")
