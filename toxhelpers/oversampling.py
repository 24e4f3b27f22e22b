"""Oversampling the toxic class of the TRAINING split with augmented copies (lesson 2).

How many new rows the target share needs, which toxic comments get how many variants, the
augmenting itself (each text under its own derived seed, see :mod:`toxhelpers.augment`), and the
guards the lesson relies on: only the training frame given is augmented, every new row keeps its
``source_id``, and the validation and test files are byte-for-byte untouched.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toxhelpers.artifacts import LESSONS, frame_hash, sha256_file, write_parquet
from toxhelpers.augment import augment_text, derived_seed, one_blas_thread, same_words
from toxhelpers.data import ID_COLUMN, LABEL_COLUMNS, SPLITS, TARGET_COLUMN, TEXT_COLUMN, load_split, split_path


def target_share(target: str | float) -> float:
    """The toxic share to reach: ``"balanced"`` is 0.5; a number in (0, 1) is taken as is."""
    if target == "balanced":
        return 0.5
    if isinstance(target, (int, float)) and not isinstance(target, bool) and 0.0 < target < 1.0:
        return float(target)
    raise ValueError(f"target must be 'balanced' or a toxic share in (0, 1), got {target!r}")


def rows_needed(train: pd.DataFrame, target: str | float = "balanced") -> int:
    """How many toxic rows to add so toxic rows make up the target share (0 if already there)."""
    share = target_share(target)
    check_training_frame(train)
    toxic = int((train[TARGET_COLUMN] == 1).sum())
    clean = int((train[TARGET_COLUMN] == 0).sum())
    return max(0, math.ceil(share / (1.0 - share) * clean - 1e-9) - toxic)


def plan_variants(train: pd.DataFrame, needed: int, variants_per_row: int | None = None,
                  max_augmented_rows: int | None = None, seed: int = 42) -> pd.DataFrame:
    """Which toxic rows to augment and with which variant number: ``source_id``, ``variant``.

    Variants are spread evenly: every toxic row (in a seeded random order) gets its first
    variant before any row gets a second. ``variants_per_row=None`` uses as many as the target
    needs; a smaller number, or ``max_augmented_rows``, stops earlier (with a notice).
    """
    check_training_frame(train)
    toxic_ids = train.loc[train[TARGET_COLUMN] == 1, ID_COLUMN].to_numpy()
    if needed > 0 and len(toxic_ids) == 0:
        raise ValueError("the training split has no toxic rows to augment")
    if variants_per_row is None:
        variants_per_row = max(1, math.ceil(needed / max(len(toxic_ids), 1)))
    if isinstance(variants_per_row, bool) or not isinstance(variants_per_row, (int, np.integer)) or variants_per_row < 1:
        raise ValueError(f"variants_per_row must be a whole number >= 1 (or None), got {variants_per_row!r}")
    if max_augmented_rows is not None and (not isinstance(max_augmented_rows, (int, np.integer))
                                           or isinstance(max_augmented_rows, bool) or max_augmented_rows < 0):
        raise ValueError(f"max_augmented_rows must be a whole number >= 0 (or None), got {max_augmented_rows!r}")
    order = toxic_ids[np.random.default_rng(seed).permutation(len(toxic_ids))]
    planned = min(needed, len(order) * int(variants_per_row))
    if planned < needed:
        print(f"NOTICE: {variants_per_row} variant(s) per toxic row give {planned:,} of the {needed:,} "
              "rows the target needs; raise variants_per_row to reach it.")
    if max_augmented_rows is not None and max_augmented_rows < planned:
        print(f"NOTICE: max_augmented_rows={max_augmented_rows:,} caps the {planned:,} planned rows: "
              "the result is not balanced (a quick run).")
        planned = int(max_augmented_rows)
    variant = np.arange(planned) // max(len(order), 1) + 1
    source = order[np.arange(planned) % max(len(order), 1)] if planned else order[:0]
    return pd.DataFrame({"source_id": pd.array(source, dtype="string"), "variant": variant.astype("int64")})


def check_training_frame(train: pd.DataFrame) -> None:
    """One clear error when the frame is not a split written by lesson 1."""
    required = [ID_COLUMN, TEXT_COLUMN, *LABEL_COLUMNS, TARGET_COLUMN]
    missing = [column for column in required if column not in train.columns]
    if missing:
        raise ValueError(f"expected a training split with columns {required} (as written by "
                         f"{LESSONS['data']}); missing {missing}")
    if train[ID_COLUMN].duplicated().any():
        raise ValueError("the training split's ids must be unique")


@dataclass
class AugmentationRun:
    """What one oversampling run produced and how fast."""

    method: str
    rows_added: int
    unchanged: int
    retried: int
    seconds: float

    @property
    def texts_per_s(self) -> float:
        return self.rows_added / self.seconds if self.seconds > 0 else float("nan")

    def summary(self) -> dict[str, Any]:
        return {"method": self.method, "rows_added": self.rows_added, "unchanged": self.unchanged,
                "retried": self.retried, "seconds": round(self.seconds, 3),
                "texts_per_s": round(self.texts_per_s, 1)}


def progress_bar(total: int, description: str, enabled: bool = True) -> Any:
    """A tqdm bar: a widget in Jupyter when ipywidgets is installed, plain text otherwise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tqdm.auto warns when it falls back to text (no ipywidgets)
        from tqdm.auto import tqdm
    return tqdm(total=total, desc=description, unit="text", disable=not enabled, mininterval=1.0)


def augment_rows(train: pd.DataFrame, plan: pd.DataFrame, augmenter: Any, method: str, seed: int = 42,
                 attempts: int = 3, progress: bool = True) -> tuple[pd.DataFrame, AugmentationRun]:
    """The new rows of ``plan``, built from lists in one go, and how the run went.

    Each new row copies its source's labels, keeps ``source_id`` and gets the id
    ``<source_id>-aug<variant>``. When a text comes back unchanged (nothing the method can
    change, e.g. swapping words in a one-word comment), it is tried again with another seed, up
    to ``attempts`` times; if it is still unchanged it is KEPT as a copy of its source (plain
    oversampling for that row) with ``text_changed=False``, and counted.
    """
    check_training_frame(train)
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts!r}")
    sources = train.set_index(ID_COLUMN)
    unknown = ~plan["source_id"].isin(sources.index)
    if unknown.any():
        raise ValueError(f"the plan names ids that are not training rows, e.g. {plan.loc[unknown, 'source_id'].head(3).tolist()}")
    source_texts = sources.loc[plan["source_id"], TEXT_COLUMN].tolist()
    texts, changed, retried = [], [], 0
    start = time.perf_counter()
    with progress_bar(len(plan), f"augment ({method})", progress) as bar, one_blas_thread():
        for source_id, variant, text in zip(plan["source_id"], plan["variant"], source_texts):
            new, attempt = text, 0
            for attempt in range(attempts):
                new = augment_text(augmenter, text, derived_seed(seed, source_id, int(variant), attempt))
                if not same_words(new, text):
                    break
            retried += attempt > 0
            texts.append(new)
            changed.append(not same_words(new, text))
            bar.update(1)
    run = AugmentationRun(method, len(plan), changed.count(False), retried, time.perf_counter() - start)
    labels = sources.loc[plan["source_id"], [*LABEL_COLUMNS, TARGET_COLUMN]].reset_index(drop=True)
    new_rows = pd.DataFrame({
        ID_COLUMN: pd.array([f"{s}-aug{v}" for s, v in zip(plan["source_id"], plan["variant"])], dtype="string"),
        TEXT_COLUMN: pd.array(texts, dtype="string"),
        **{column: labels[column].to_numpy() for column in labels.columns},
        "source_id": pd.array(plan["source_id"], dtype="string"),
        "augmented": np.ones(len(plan), dtype=bool),
        "method": pd.array([method] * len(plan), dtype="string"),
        "text_changed": np.array(changed, dtype=bool),
    })
    print(f"{method}: {run.rows_added:,} texts in {run.seconds:.1f} s = {run.texts_per_s:,.0f} texts/s; "
          f"{run.retried:,} needed a retry, {run.unchanged:,} still unchanged after {attempts} attempts "
          "(kept as copies of their source)")
    return new_rows, run


def with_provenance(train: pd.DataFrame) -> pd.DataFrame:
    """The original training rows with the provenance columns of augmented rows."""
    return train.assign(source_id=train[ID_COLUMN].astype("string"), augmented=False,
                        method=pd.array(["original"] * len(train), dtype="string"), text_changed=False)


def oversample_toxic(train: pd.DataFrame, augmenter: Any, method: str, target: str | float = "balanced",
                     variants_per_row: int | None = None, max_augmented_rows: int | None = None,
                     seed: int = 42, progress: bool = True) -> tuple[pd.DataFrame, AugmentationRun]:
    """The training split plus augmented toxic rows up to ``target`` (all original rows kept)."""
    plan = plan_variants(train, rows_needed(train, target), variants_per_row, max_augmented_rows, seed)
    new_rows, run = augment_rows(train, plan, augmenter, method, seed=seed, progress=progress)
    balanced = pd.concat([with_provenance(train), new_rows], ignore_index=True)
    return balanced, run


# --- guards: no leakage, untouched splits --------------------------------------------------------


def check_no_leakage(balanced: pd.DataFrame, train: pd.DataFrame,
                     held_out: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Fail loudly unless every augmented row comes from a training row and held-out rows are
    nowhere in the balanced set. Returns the counts checked."""

    originals = balanced.loc[~balanced["augmented"], train.columns].reset_index(drop=True)
    if frame_hash(originals) != frame_hash(train.reset_index(drop=True)):
        raise AssertionError("the original rows of the balanced set differ from the training split")
    augmented = balanced[balanced["augmented"]]
    train_ids = set(train[ID_COLUMN])
    foreign = set(augmented["source_id"]) - train_ids
    if foreign:
        raise AssertionError(f"augmented rows derived from non-training rows, e.g. {sorted(foreign)[:3]}")
    for name, frame in held_out.items():
        overlap = (set(balanced["source_id"]) | set(balanced[ID_COLUMN])) & set(frame[ID_COLUMN])
        if overlap:
            raise AssertionError(f"{name} rows in the balanced training set, e.g. {sorted(overlap)[:3]}")
    if balanced[ID_COLUMN].duplicated().any():
        raise AssertionError("ids in the balanced set are not unique")
    source_labels = train.set_index(ID_COLUMN).loc[augmented["source_id"], [*LABEL_COLUMNS, TARGET_COLUMN]]
    if not (source_labels.to_numpy() == augmented[[*LABEL_COLUMNS, TARGET_COLUMN]].to_numpy()).all():
        raise AssertionError("an augmented row's labels differ from its source row's")
    return {"augmented_rows": len(augmented), "source_rows": augmented["source_id"].nunique(),
            **{f"{name}_rows_checked": len(frame) for name, frame in held_out.items()}}


def split_file_hashes(artifacts_dir: str | os.PathLike) -> dict[str, str]:
    """sha256 of each split file lesson 1 wrote: compared before and after augmenting."""
    return {split: sha256_file(split_path(artifacts_dir, split)) for split in SPLITS}


def write_balanced(balanced: pd.DataFrame, artifacts_dir: str | os.PathLike) -> Path:
    """Write the balanced training set where ``data.load_split(..., variant="balanced")`` reads it,
    then read it back: the file must hold exactly the frame written (one clear error otherwise)."""
    path = write_parquet(balanced, split_path(artifacts_dir, "train", variant="balanced"))
    if frame_hash(load_split(artifacts_dir, "train", variant="balanced")) != frame_hash(balanced):
        raise ValueError(f"{path} does not read back as the balanced training set that was written to it")
    return path
