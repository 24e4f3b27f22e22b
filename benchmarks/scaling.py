"""How the whole walkthrough (profile ``full``) grows with the data: each lesson's wall time and
peak memory at 1x, 2x, 4x the shared sample and at Kaggle's full size, on this machine.

Kaggle's full files cannot be downloaded here, so every size above 1x is a data folder in Kaggle's
layout whose extra rows are SYNTHETIC: copies of the sample's own rows, each perturbed by the
project's augmenter (``toxhelpers.augment``, method ``random_swap`` by default: neighbouring words
swapped, so a copy keeps its source's words and length, which is what a cost measurement needs;
on 2,000 rows of the sample, 99.5% of the copies had exactly their source's number of word pieces,
+0.02% over all). Such a folder measures COST only, never quality: its copies leak between the
splits. Each folder says so in its README.md and records how it was made in ``synthetic.json``.
Building streams the rows out (memory: the source rows, plus ~1 GB for TensorFlow, which nlpaug
imports) at about 2,000 synthetic rows/s on the 2-core reference machine: about two minutes for
Kaggle's size.

Class shares differ by size, on purpose. The multiples (2x, 4x) keep the sample's shares (38.5%
toxic in train.csv, 47.7% in the test labels), so 1x-2x-4x measures growth on one pipeline:
lesson 1's undersampling to 20% toxic leaves their training split as it is. ``kaggle`` has
Kaggle's own shares (``toxhelpers.data``'s counts: 9.58% of train.csv, 9.52% of the labelled test
rows), so it costs what the real download costs: lesson 1 undersamples the training split to 20%
toxic (about 65k rows; at the sample's shares lessons 5-6 would train on ~135k). Its rows are the
sample's originals first, then toxic copies of toxic rows and non-toxic copies of non-toxic rows
(six labels kept) until each file has its share; its train_random_ids.csv lists every row (the
whole file is at the natural share, so ``train_rows="natural"`` selects what ``"all"`` does, as on
Kaggle's download). The step 4x -> kaggle thus changes the training split's make-up as well as
its size; the record's size table says which shares each size has.

    .venv/bin/python benchmarks/scaling.py                   # 1x, 2x, 4x, kaggle, one after another
    .venv/bin/python benchmarks/scaling.py --dry-run         # what would be built and run
    .venv/bin/python benchmarks/scaling.py --sizes 1x 2x --only 01,02,03 -p max_length=64
    .venv/bin/python benchmarks/scaling.py --table-only      # the table from the reports already there

Each size runs ``python -m toxhelpers run --profile full --data-dir <folder> --out
<reports>/scale-<size>`` with this interpreter (``--only`` and ``-p`` passed through). Rerunning
resumes: a size whose report finished with the same command is skipped, and ``toxhelpers run``
itself reuses the lessons it finished: run.json gives a reused lesson the wall seconds and peak
memory of the invocation that executed it (``measured_in: "earlier run"``), and the table counts
them. Each invocation (arguments, exit status, seconds, load average before and after, and the
seconds and peak of each lesson it executed) is kept in ``<reports>/scale-<size>.measured.json``,
beside the report: a lesson stopped part-way (Ctrl-C, SIGTERM; lesson 6 then resumes from its
checkpoint) shows what its stopped runs spent beside its final run's cost. The record goes to
``benchmarks/results/scaling_<date>.{json,md}``: per lesson and size the wall seconds, peak MB,
seconds per 1,000 training rows, and the growth exponent between consecutive sizes
(log(time ratio) / log(row ratio): 1 is linear, above it the lesson grows faster than the data).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark_records import machine, save_record  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from toxhelpers import data  # noqa: E402
from toxhelpers.artifacts import read_json, sha256_file, write_json, write_text  # noqa: E402
from toxhelpers.run.notebooks import discover_notebooks, select_notebooks  # noqa: E402
from toxhelpers.run.parameters import declared_parameters  # noqa: E402
from toxhelpers.run.summary import THIS_RUN  # noqa: E402
from toxhelpers.data import ID_COLUMN, LABEL_COLUMNS, RANDOM_IDS_FILE, SYNTHETIC_MANIFEST, TEXT_COLUMN  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
PROFILE = "full"
DEFAULT_SIZES = ("1x", "2x", "4x", "kaggle")
DEFAULT_SOURCE = Path(os.environ.get("TOXHELPERS_SHARED_SAMPLE", REPO_ROOT.parent / "shared" / "data" / "jigsaw-sample"))
DEFAULT_REPORTS = REPO_ROOT / "reports" / "scaling"
# Offline augmenters that need no word vectors, no torch and no download (random_swap: ~2,000 rows/s here).
FAST_METHODS = ("random_swap", "spelling", "keyboard", "random_delete", "sentence_shuffle")
DEFAULT_METHOD = "random_swap"  # keeps every word: a copy costs what its source costs
BUILDER_VERSION = 1  # bump when the same request would build other data files (README, manifest text aside)
MEMORY_FLAG_MB = 3000  # an 8 GB laptop's budget per lesson (the lean walkthrough's goal)
FASTER_THAN_LINEAR = 1.1  # growth exponents above this are flagged (1.0 is linear; timing noise ~0.1)
SYNTHETIC_SUFFIX = "_syn"
MANIFEST = SYNTHETIC_MANIFEST  # lesson 1 and the model card call such a folder synthetic
TRAIN_COLUMNS = (ID_COLUMN, TEXT_COLUMN, *LABEL_COLUMNS)

# (text, source id, copy number) -> the synthetic text; seeded inside, so the same call gives the same text.
Perturbation = Callable[[str, str, int], str]
PerturbationFactory = Callable[[str, float, int], Perturbation]


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- sizes ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    """One data size: its label (``2x``, ``kaggle``), the rows of its train.csv and test.csv, and
    the toxic share (``toxic`` = 1) of train.csv and of test_labels.csv's labelled rows; a share
    left None keeps the source's."""

    label: str
    train_rows: int
    test_rows: int
    train_toxic_share: float | None = None
    test_toxic_share: float | None = None

    @property
    def shares_set(self) -> bool:
        return self.train_toxic_share is not None or self.test_toxic_share is not None


# Kaggle's own class shares, from toxhelpers.data's counts of its files (9.58% and 9.52% toxic).
KAGGLE_TRAIN_TOXIC_SHARE = data.KAGGLE_TRAIN_TOXIC_ROWS / data.KAGGLE_TRAIN_ROWS
KAGGLE_TEST_TOXIC_SHARE = data.KAGGLE_TEST_TOXIC_ROWS_LABELLED / data.KAGGLE_TEST_ROWS_LABELLED


def parse_size(text: str, source_train_rows: int, source_test_rows: int) -> Size:
    """``Nx`` (N >= 1 times the source's rows, at the source's class shares) or ``kaggle``
    (Kaggle's 159,571 training rows and 63,978 labelled test rows, about 11x train and 27x test of
    the shared sample, at Kaggle's own toxic shares: 9.58% and 9.52%)."""
    if text == "kaggle":
        return Size(text, data.KAGGLE_TRAIN_ROWS, data.KAGGLE_TEST_ROWS_LABELLED,
                    KAGGLE_TRAIN_TOXIC_SHARE, KAGGLE_TEST_TOXIC_SHARE)
    try:
        multiple = float(text[:-1]) if text.endswith("x") else math.nan
    except ValueError:
        multiple = math.nan
    if not multiple >= 1:
        raise ValueError(f"a size is 'Nx' with N >= 1 (e.g. 2x) or 'kaggle', got {text!r}")
    label = f"{multiple:g}x"
    return Size(label, round(multiple * source_train_rows), round(multiple * source_test_rows))


# --- which rows are copied ------------------------------------------------------------------------


def stratified_pick(strata: Sequence[Hashable], count: int, seed: int | Sequence[int]) -> np.ndarray:
    """``count`` row indices, sorted, drawn so that every stratum keeps its share (largest
    remainder: each stratum within one row of its exact share). Seeded, so reproducible."""
    codes, uniques = pd.factorize(pd.Series([repr(key) for key in strata], dtype=object))
    sizes = np.bincount(codes, minlength=len(uniques))
    exact = sizes * count / len(strata)
    quota = np.floor(exact).astype(int)
    ties_in_first_seen_order = np.lexsort((np.arange(len(sizes)), -(exact - quota)))
    quota[ties_in_first_seen_order[:count - quota.sum()]] += 1
    rng = np.random.default_rng(seed)
    by_stratum = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)])
    picked = [rng.permutation(by_stratum[starts[g]:starts[g + 1]])[:quota[g]] for g in range(len(sizes))]
    return np.sort(np.concatenate(picked)) if picked else np.array([], dtype=int)


def copy_plan(strata: Sequence[Hashable], target: int,
              seed: int | Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
    """(copy number, source row indices) for the ``target - len(strata)`` extra rows: whole copies
    of every row, then a stratified part of one more copy, so class shares stay the source's."""
    rows = len(strata)
    if target < rows:
        raise ValueError(f"the target of {target:,} rows is below the source's {rows:,}: this only grows data")
    whole, rest = divmod(target - rows, rows) if rows else (0, 0)
    for copy in range(1, whole + 1):
        yield copy, np.arange(rows)
    if rest:
        yield whole + 1, stratified_pick(strata, rest, seed)


def share_plan(classes: Sequence[int], strata: Sequence[Hashable], target: int, share: float,
               seed: int | Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
    """(copy number, source row indices) for the extra rows of a file of ``target`` rows whose
    labelled rows are ``share`` toxic. ``classes``: each source row's ``toxic`` value (1, 0, or -1
    for a test row Kaggle never scored). Every source row is kept; toxic copies come from toxic
    rows, non-toxic copies from non-toxic rows, each class grown by :func:`copy_plan` over
    ``strata`` (so the six-label mix within a class stays the source's); unscored rows are not
    copied. Ends within half a row of the share; refuses a target that would need fewer rows of a
    class than the source has (this only grows data)."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"a toxic share is between 0 and 1, got {share!r}")
    classes = np.asarray(classes, dtype=int)
    members = {1: np.flatnonzero(classes == 1), 0: np.flatnonzero(classes == 0)}
    labelled = target - int((classes == -1).sum())
    wanted = {1: round(share * labelled)}
    wanted[0] = labelled - wanted[1]
    by_copy: dict[int, list[np.ndarray]] = {}
    for value, name in ((1, "toxic"), (0, "non-toxic")):
        rows, want = members[value], wanted[value]
        if want < len(rows) or (want and not len(rows)):
            raise ValueError(f"{target:,} rows at {share:.2%} toxic need {want:,} {name} rows; the source has "
                             f"{len(rows):,}: this only grows data (choose more rows or another share)")
        seeds = (*np.atleast_1d(seed).tolist(), value)
        for copy, picked in copy_plan([strata[i] for i in rows], want, seeds):
            by_copy.setdefault(copy, []).append(rows[picked])
    for copy in sorted(by_copy):
        yield copy, np.sort(np.concatenate(by_copy[copy]))


def toxic_classes(frame: pd.DataFrame) -> list[int]:
    """Each row's ``toxic`` value as an int: 1, 0, or -1 (a test row Kaggle never scored)."""
    return [int(value) for value in pd.to_numeric(frame["toxic"])]


def synthetic_id(source_id: str, copy: int) -> str:
    return f"{source_id}{SYNTHETIC_SUFFIX}{copy}"


def check_ids_can_grow(ids: Sequence[str], what: str) -> None:
    """New ids are ``<id>_syn<k>``; refuse a source where one could equal an existing id (say, a
    folder this tool built), so ids stay unique without holding every new id in memory."""
    existing = set(ids)
    clash = [i for i in ids if SYNTHETIC_SUFFIX in i and i.rsplit(SYNTHETIC_SUFFIX, 1)[0] in existing
             and i.rsplit(SYNTHETIC_SUFFIX, 1)[1].isdigit()]
    if clash:
        raise ValueError(f"{what}: ids such as {clash[:3]} already look like synthetic copies of other rows; "
                         "build from the real sample, not from a folder built by this tool")


# --- the perturbation: the project's augmenter ---------------------------------------------------------


def project_perturbation(method: str, aug_p: float, seed: int) -> Perturbation:
    """The project's augmenter (``make_augmenter`` + ``augment_text``), each text under its own seed
    derived from (seed, source id, copy), so a copy is the same whatever the size or row order.
    Imports TensorFlow and nlpaug (~10 s), hence only here."""
    if method not in FAST_METHODS:
        raise ValueError(f"method must be one of {FAST_METHODS} (offline, no word vectors, no torch), got {method!r}")
    from toxhelpers import augment

    augmenter = augment.make_augmenter(method, aug_p)

    def perturb(text: str, source_id: str, copy: int) -> str:
        return augment.augment_text(augmenter, text, augment.derived_seed(seed, "scaling", source_id, copy))

    return perturb


# --- reading the source ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """The real rows the synthetic ones are made from, in file order."""

    path: Path
    train: pd.DataFrame  # id, comment_text, six labels
    test: pd.DataFrame  # id, comment_text, six labels (-1 kept: Kaggle's unscored rows)
    random_ids: list[str] | None  # train_random_ids.csv, when the folder has one


def read_source(folder: Path) -> Source:
    """The source folder's files, read with ``toxhelpers.data``'s checked reader (UTF-8, unique
    ids, required columns)."""
    train = data.read_csv_checked(data.find_file(folder, "train.csv"), TRAIN_COLUMNS)[list(TRAIN_COLUMNS)]
    texts = data.read_csv_checked(data.find_file(folder, "test.csv"), (ID_COLUMN, TEXT_COLUMN))
    labels = data.read_csv_checked(data.find_file(folder, "test_labels.csv"), (ID_COLUMN, *LABEL_COLUMNS))
    if set(texts[ID_COLUMN]) != set(labels[ID_COLUMN]):
        raise ValueError(f"{folder}: test.csv and test_labels.csv must list the same ids")
    test = texts[[ID_COLUMN, TEXT_COLUMN]].merge(labels[[ID_COLUMN, *LABEL_COLUMNS]], on=ID_COLUMN,
                                                 how="left", validate="one_to_one")
    random_file = data.find_optional_file(folder, RANDOM_IDS_FILE)
    random_ids = None if random_file is None else list(data.read_csv_checked(random_file, (ID_COLUMN,))[ID_COLUMN])
    return Source(folder, train, test, random_ids)


def source_files(folder: Path) -> dict[str, str]:
    """sha256 of each source file: a built folder is reused only for the same source."""
    names = ("train.csv", "test.csv", "test_labels.csv", RANDOM_IDS_FILE)
    found = {name: data.find_optional_file(folder, name) for name in names}
    return {path.name: sha256_file(path) for path in found.values() if path is not None}


def label_pattern(frame: pd.DataFrame) -> list[tuple]:
    return list(frame[list(LABEL_COLUMNS)].astype(str).itertuples(index=False, name=None))


# --- writing a synthetic folder -----------------------------------------------------------------------


@dataclass
class Progress:
    """One line every ``every`` synthetic rows, with the rate and the time left."""

    total: int
    every: int = 10_000
    done: int = 0
    began: float = field(default_factory=time.monotonic)

    def step(self) -> None:
        self.done += 1
        if self.done % self.every == 0 or self.done == self.total:
            rate = self.done / max(time.monotonic() - self.began, 1e-9)
            say(f"  {self.done:,}/{self.total:,} synthetic rows, {rate:,.0f}/s, "
                f"about {(self.total - self.done) / rate:,.0f} s left")


def csv_writer(handle: TextIO) -> Any:
    """Kaggle's style: minimal quoting, ``\\n`` line ends (also inside quoted comments)."""
    return csv.writer(handle, lineterminator="\n")


def write_train(source: Source, folder: Path, size: Size, seed: int, perturb: Perturbation,
                progress: Progress) -> tuple[dict[str, int], int]:
    """train.csv (and train_random_ids.csv) grown to ``size.train_rows`` rows, streamed row by row:
    the originals, then the copies; and how many rows are toxic. At the source's shares, a copy of
    a random-draw row is listed as random too (the list keeps its share of the file and its toxic
    share); at a set share (``kaggle``), the whole file is at that share, so every row is listed:
    ``train_rows="natural"`` then selects what ``"all"`` does, as on Kaggle's own download."""
    train, random_ids = source.train, set(source.random_ids or ())
    records = list(train.itertuples(index=False, name=None))
    listed_originals = list(train[ID_COLUMN]) if size.train_toxic_share is not None else source.random_ids
    if size.train_toxic_share is not None:
        plan = share_plan(toxic_classes(train), label_pattern(train), size.train_rows, size.train_toxic_share,
                          (seed, 1))
        random_ids = set(train[ID_COLUMN])
    else:
        strata = [(row_id in random_ids, *labels) for row_id, labels in zip(train[ID_COLUMN], label_pattern(train))]
        plan = copy_plan(strata, size.train_rows, (seed, 1))
    toxic = sum(value == 1 for value in toxic_classes(train))
    with contextlib.ExitStack() as files:
        rows = csv_writer(files.enter_context(open(folder / "train.csv", "w", newline="", encoding="utf-8")))
        rows.writerow(TRAIN_COLUMNS)
        rows.writerows(records)
        counts = {"train.csv": len(records)}
        listed = None
        if source.random_ids is not None:
            listed = csv_writer(files.enter_context(open(folder / RANDOM_IDS_FILE, "w", newline="", encoding="utf-8")))
            listed.writerow([ID_COLUMN])
            listed.writerows([row_id] for row_id in listed_originals)
            counts[RANDOM_IDS_FILE] = len(listed_originals)
        toxic_column = TRAIN_COLUMNS.index("toxic")
        for copy, indices in plan:
            for index in indices:
                row_id, text, *labels = records[index]
                rows.writerow([synthetic_id(row_id, copy), perturb(str(text), row_id, copy), *labels])
                counts["train.csv"] += 1
                toxic += int(records[index][toxic_column]) == 1
                if listed and row_id in random_ids:
                    listed.writerow([synthetic_id(row_id, copy)])
                    counts[RANDOM_IDS_FILE] += 1
                progress.step()
    return counts, toxic


def write_test(source: Source, folder: Path, size: Size, seed: int, perturb: Perturbation,
               progress: Progress) -> tuple[dict[str, int], dict[int, int]]:
    """test.csv and test_labels.csv grown to ``size.test_rows`` rows, the labels copied from the
    source row, in the same id order in both files; and the rows per ``toxic`` value. At the
    source's shares, -1 rows (never scored) are copied in their share too; at a set share, the
    labelled rows get that toxic share and -1 rows are kept but not copied."""
    test = source.test
    records = list(test.itertuples(index=False, name=None))
    classes = toxic_classes(test)
    if size.test_toxic_share is not None:
        plan = share_plan(classes, label_pattern(test), size.test_rows, size.test_toxic_share, (seed, 2))
    else:
        plan = copy_plan(label_pattern(test), size.test_rows, (seed, 2))
    by_class = {value: classes.count(value) for value in (1, 0, -1)}
    with open(folder / "test.csv", "w", newline="", encoding="utf-8") as text_handle, \
            open(folder / "test_labels.csv", "w", newline="", encoding="utf-8") as label_handle:
        texts, labels = csv_writer(text_handle), csv_writer(label_handle)
        texts.writerow([ID_COLUMN, TEXT_COLUMN])
        labels.writerow([ID_COLUMN, *LABEL_COLUMNS])
        for row_id, text, *values in records:
            texts.writerow([row_id, text])
            labels.writerow([row_id, *values])
        rows = len(records)
        for copy, indices in plan:
            for index in indices:
                row_id, text, *values = records[index]
                texts.writerow([synthetic_id(row_id, copy), perturb(str(text), row_id, copy)])
                labels.writerow([synthetic_id(row_id, copy), *values])
                rows += 1
                by_class[classes[index]] += 1
                progress.step()
    return {"test.csv": rows, "test_labels.csv": rows}, by_class


def build_request(source_dir: Path, size: Size, seed: int, method: str, aug_p: float) -> dict[str, Any]:
    """Everything that decides a folder's content: an existing folder is reused only when its
    manifest holds the same request."""
    request = {"builder_version": BUILDER_VERSION, "source_files": source_files(source_dir), "seed": seed,
               "method": method, "aug_p": aug_p, "train_rows": size.train_rows, "test_rows": size.test_rows}
    shares = {"train_toxic_share": size.train_toxic_share, "test_toxic_share": size.test_toxic_share}
    return request | {key: value for key, value in shares.items() if value is not None}  # absent: the source's


def build_folder(source_dir: Path, folder: Path, size: Size, seed: int = 42, method: str = DEFAULT_METHOD,
                 aug_p: float = 0.1, make_perturbation: PerturbationFactory | None = None) -> dict[str, Any]:
    """Write the synthetic folder for ``size`` (into ``<folder>.partial``, renamed when complete, so
    a killed build never looks finished) and return its manifest. Linear in the rows written;
    memory holds the source rows only, the output is streamed. ``make_perturbation``: the project's
    augmenter unless given (tests pass a cheap stand-in)."""
    if folder.exists():
        raise FileExistsError(f"{folder} exists; remove it to build it again")
    request = build_request(source_dir, size, seed, method, aug_p)
    source = read_source(source_dir)
    check_ids_can_grow(list(source.train[ID_COLUMN]), "train.csv")
    check_ids_can_grow(list(source.test[ID_COLUMN]), "test.csv")
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    began = time.monotonic()
    perturb = (make_perturbation or project_perturbation)(method, aug_p, seed)
    progress = Progress(max(size.train_rows - len(source.train), 0) + max(size.test_rows - len(source.test), 0))
    say(f"building {folder} ({size.label}): {progress.total:,} synthetic rows by {method!r}, seed {seed}")
    train_rows, train_toxic = write_train(source, partial, size, seed, perturb, progress)
    test_rows, test_classes = write_test(source, partial, size, seed, perturb, progress)
    rows = {**train_rows, **test_rows}
    labelled = test_classes[1] + test_classes[0]
    manifest = {"synthetic": True, "purpose": "cost measurement only, never quality", "size": size.label,
                "request": request, "source": str(source_dir), "rows": rows,
                "shares": "set" if size.shares_set else "source",
                "toxic_share": {"train.csv": train_toxic / rows["train.csv"] if rows["train.csv"] else None,
                                "test_labels.csv": test_classes[1] / labelled if labelled else None},
                "source_rows": {"train.csv": len(source.train), "test.csv": len(source.test),
                                "test_labels.csv": len(source.test),
                                **({RANDOM_IDS_FILE: len(source.random_ids)} if source.random_ids is not None else {})},
                "build_seconds": round(time.monotonic() - began, 1)}
    write_json(manifest, partial / MANIFEST)
    write_text(synthetic_readme(manifest), partial / "README.md")
    partial.rename(folder)
    say(f"built {folder} in {manifest['build_seconds']:,.0f} s")
    return manifest


def synthetic_readme(manifest: dict[str, Any]) -> str:
    """The folder's README: SYNTHETIC first, then how it was made and whose text it is."""
    request, rows, source_rows = manifest["request"], manifest["rows"], manifest["source_rows"]
    table = [f"| {name} | {rows[name]:,} | {source_rows[name]:,} |" for name in rows]
    return "\n".join([
        f"# SYNTHETIC Jigsaw-layout data ({manifest['size']}): for COST measurement only",
        "",
        "**This folder is SYNTHETIC. Use it to measure time and memory, NEVER to measure quality.**",
        "Its extra rows are perturbed copies of real rows: copies of one comment land in training,",
        "validation and test alike, so any score measured on it is inflated and meaningless.",
        "",
        *shares_paragraph(manifest),
        "",
        f"Made by `benchmarks/scaling.py` of toxhelpers (builder version {request['builder_version']}) from",
        f"`{manifest['source']}`, in Kaggle's layout and columns:",
        "",
        "| file | rows | of which real (the source's) |",
        "| --- | ---: | ---: |",
        *table,
        "",
        *how_paragraph(request),
        "Training copies come from training rows only, test copies from test rows only.",
        f"Each copy's text is its source's text changed by toxhelpers' augmenter `{request['method']}`",
        f"(`toxhelpers.augment.make_augmenter('{request['method']}', aug_p={request['aug_p']})` and `augment_text`,",
        f"nlpaug underneath), seeded per text by `derived_seed({request['seed']}, 'scaling', source id, copy)`;",
        f"the part-copy rows were drawn with seed {request['seed']}. The same request rebuilds the same bytes.",
        f"Source files (sha256): {', '.join(f'{name} {digest[:12]}' for name, digest in request['source_files'].items())}.",
        "",
        "Licence and attribution: the Jigsaw Toxic Comment Classification data set is released under",
        "CC0; the comment text comes from Wikipedia talk pages under CC BY-SA 3.0. The perturbed texts",
        "here are derived from that text and are shared under CC BY-SA 3.0 too. Keep this attribution",
        "with any copy. Comments contain offensive language.",
        "",
    ])


def share_text(share: float | None) -> str:
    return "the source's" if share is None else f"{share:.2%}"


def shares_paragraph(manifest: dict[str, Any]) -> list[str]:
    """Which class shares the folder has, and why."""
    request, measured = manifest["request"], manifest.get("toxic_share") or {}
    found = ", ".join(f"{name} {value:.2%}" for name, value in measured.items() if value is not None)
    if "train_toxic_share" not in request and "test_toxic_share" not in request:
        return ["Class shares: the source's, kept on purpose (toxic share " + (found or "as in the source") + ";",
                "the shared sample over-represents toxic comments, Kaggle's files are 9.58% and 9.52% toxic), so",
                "the multiples of the sample (2x, 4x) grow the data on one pipeline: lesson 1's undersampling to",
                "20% toxic leaves their training split as it is, at every multiple."]
    return ["Class shares: SET, to cost what Kaggle's own files cost: toxic share of train.csv "
            f"{share_text(request.get('train_toxic_share'))},",
            f"of test_labels.csv's labelled rows {share_text(request.get('test_toxic_share'))} (as written: {found}).",
            "With the sample's own shares (38.5% toxic), lesson 1's undersampling to 20% toxic would do",
            "nothing, and at Kaggle's size lessons 5-6 would train on about twice the rows the real download",
            "gives them.",
            "train_random_ids.csv lists every row: the whole train.csv is at the natural share, so",
            "`train_rows=\"natural\"` selects what `\"all\"` does, as on Kaggle's download."]


def how_paragraph(request: dict[str, Any]) -> list[str]:
    """How the rows were drawn: at the source's shares, or at set shares."""
    common = [f"A copy gets the id `<source id>{SYNTHETIC_SUFFIX}<copy>` and its source row's six labels",
              "(test_labels.csv: the source's labels)."]
    if "train_toxic_share" not in request and "test_toxic_share" not in request:
        return ["How: the source's rows first, unchanged; then whole copies of every row, then a stratified part",
                "of one more copy (strata: the six labels, and for train.csv whether the row is in",
                "train_random_ids.csv), so each file keeps the source's class shares. -1 rows of",
                "test_labels.csv are copied in their share too; a copy of a row listed in train_random_ids.csv",
                "is listed there too.", *common]
    return ["How: the source's rows first, unchanged (all of them); then, per class, copies until the",
            "file holds the set share: toxic copies of the source's toxic rows, non-toxic copies of its",
            "non-toxic rows, each class by whole copies then a stratified part of one more copy (strata:",
            "the six labels), so the label mix within a class stays the source's. A file without a set",
            "share keeps the source's. -1 rows of test_labels.csv (never scored) are kept, not copied.", *common]


def uses_source(size: Size, source_rows: tuple[int, int] | None) -> bool:
    """The size is the source itself: its row counts, its shares."""
    return (size.train_rows, size.test_rows) == source_rows and not size.shares_set


def ensure_data(source_dir: Path, data_root: Path, size: Size, source_rows: tuple[int, int], seed: int,
                method: str, aug_p: float) -> Path:
    """The data folder for ``size``: the source itself at its own size, else the synthetic folder,
    built once and reused while its manifest holds the same request."""
    if uses_source(size, source_rows):
        return source_dir
    folder = data_root / size.label
    if folder.exists():
        check_reusable(folder, build_request(source_dir, size, seed, method, aug_p))
        say(f"reusing {folder}")
        return folder
    build_folder(source_dir, folder, size, seed, method, aug_p)
    return folder


def check_reusable(folder: Path, request: dict[str, Any]) -> None:
    manifest_path = folder / MANIFEST
    found = read_json(manifest_path).get("request") if manifest_path.is_file() else None
    if found != request:
        differ = sorted(key for key in set(request) | set(found or {}) if (found or {}).get(key) != request.get(key))
        raise ValueError(f"{folder} was built for another request (differs in {differ or 'everything'}); "
                         "remove it, or pass another --data-root")


# --- running one size -----------------------------------------------------------------------------


def reads_data_folder(only: Sequence[str]) -> bool:
    """Whether a selected lesson declares ``data_dir`` (lesson 1 does). ``toxhelpers run`` refuses
    a ``--data-dir`` that reaches no selected lesson, so a later lesson alone (``--only 09``) runs
    on the artifacts already in its report folder."""
    selected = select_notebooks(discover_notebooks(REPO_ROOT / "notebooks"), only)
    return any("data_dir" in params for params in declared_parameters(selected).values())


def run_arguments(data_dir: Path, report: Path, only: Sequence[str], params: Sequence[str]) -> list[str]:
    """``toxhelpers run``'s arguments for one size (after ``python -m toxhelpers run``)."""
    data = ["--data-dir", str(data_dir)] if reads_data_folder(only) else []
    return ["--profile", PROFILE, *data, "--out", str(report),
            *[part for item in only for part in ("--only", item)],
            *[part for item in params for part in ("-p", item)]]


def report_folder(reports: Path, size_label: str) -> Path:
    return reports / f"scale-{size_label}"


def measured_path(report: Path) -> Path:
    """Beside the report, not in it: ``toxhelpers run`` owns its folder."""
    return report.with_name(report.name + ".measured.json")


def read_json_or(path: Path, default: Any) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return default


def executed_lessons(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The lessons an invocation executed (not those it reused), with their status, seconds and
    peak. run.json keeps a reused lesson's costs, but the next invocation overwrites what an
    interrupted one spent (a Kaggle-size run may be stopped mid-fit at a session's end and resume)."""
    keys = ("status", "wall_seconds", "peak_memory_mb", "peak_memory_cell", "memory_rises")
    return {item["name"]: {key: item.get(key) for key in keys}
            for item in run.get("notebooks", []) if item.get("measured_in") == THIS_RUN}


def remember(report: Path, invocation: dict[str, Any]) -> dict[str, Any]:
    """Keep this invocation (its load average goes into the record, its executed lessons into the
    lessons' earlier attempts) and, when it completed the report, its arguments: :func:`finished`
    skips the size next time."""
    kept = read_json_or(measured_path(report), {"invocations": []})
    run = read_json_or(report / "run.json", {})
    if not isinstance(run, dict):
        run = {}
    kept.setdefault("invocations", []).append({**invocation, "lessons": executed_lessons(run)})
    if invocation.get("exit_status") == 0 and run.get("status") == "complete":
        kept["completed"] = {"arguments": invocation["arguments"], "finished_at": run.get("finished_at")}
    if report.exists():
        write_json(kept, measured_path(report))
    return kept


def finished(report: Path, arguments: list[str]) -> bool:
    """The report finished with these arguments and nobody ran into it since."""
    completed = read_json_or(measured_path(report), {}).get("completed") or {}
    run = read_json_or(report / "run.json", {})
    return (completed.get("arguments") == arguments and run.get("status") == "complete"
            and run.get("finished_at") == completed.get("finished_at"))


def launch(command: list[str]) -> int:
    """Run ``command`` from the repository root and wait for it, also when this process is stopped:
    Ctrl-C reaches the child too (one process group) and SIGTERM is passed on, so ``toxhelpers run``
    stops its kernel and writes its "interrupted" report before this returns (130 or 143)."""
    child = subprocess.Popen(command, cwd=REPO_ROOT)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signal.SIGTERM))
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue  # the child got the same Ctrl-C: wait for its report
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_size(report: Path, arguments: list[str]) -> int:
    """One ``toxhelpers run`` for one size, unless it already finished; its exit status."""
    if finished(report, arguments):
        say(f"{report.name}: finished earlier with the same command, skipped")
        return 0
    command = [sys.executable, "-m", "toxhelpers", "run", *arguments]
    say(f"{report.name}: {' '.join(command)}")
    started, load_before, began = dt.datetime.now().isoformat(timespec="seconds"), os.getloadavg(), time.monotonic()
    code = launch(command)
    remember(report, {"arguments": arguments, "started": started, "seconds": round(time.monotonic() - began, 1),
                      "exit_status": code, "load_average": {"before": load_before, "after": os.getloadavg()}})
    return code


# --- the table ----------------------------------------------------------------------------------------


@dataclass
class LessonResult:
    status: str
    wall_seconds: float | None = None
    peak_memory_mb: float | None = None
    peak_memory_cell: str | None = None  # "cell 26 of 33": where the run saw the peak (runs since 2026-12-06)
    # [["cell 17 of 31", 2701], ...]: each cell that raised the peak and its level, in order (runs since 2026-12-07)
    memory_rises: list[list[Any]] = field(default_factory=list)
    # Runs of the lesson that were stopped before it ran again to the end: {status, wall_seconds, peak...}
    earlier_attempts: list[dict[str, Any]] = field(default_factory=list)

    def highest_peak(self) -> dict[str, Any]:
        """The run of the lesson, final or stopped, that took the most memory: its peak, cell and rises."""
        final = {"peak_memory_mb": self.peak_memory_mb, "peak_memory_cell": self.peak_memory_cell,
                 "memory_rises": self.memory_rises}
        return max([final, *self.earlier_attempts], key=lambda run: run.get("peak_memory_mb") or 0)


@dataclass
class SizeResult:
    """What one size's report says: its status, rows, and each lesson's cost."""

    label: str
    report: str
    status: str
    train_csv_rows: int | None = None
    test_rows: int | None = None
    training_split_rows: int | None = None
    synthetic: bool | None = None
    toxic_share_train: float | None = None  # of train.csv (lesson 1's count, else the folder's manifest)
    toxic_share_test: float | None = None  # of the labelled test rows
    shares: str | None = None  # "source": the sample's (the real sample, the multiples); "set": e.g. Kaggle's
    data_dir: str | None = None
    finished_at: str | None = None
    git_commit: str | None = None
    kernel_peak_mb: float | None = None
    load_average: list[dict[str, Any]] = field(default_factory=list)
    lessons: dict[str, LessonResult] = field(default_factory=dict)


STOPPED = ("interrupted", "failed")


def lesson_results(run: dict[str, Any], invocations: Sequence[dict[str, Any]] = ()) -> dict[str, LessonResult]:
    """Each lesson's wall time and peak memory as run.json gives them: a reused lesson's are those
    of the invocation that executed it (a report whose lesson manifests predate that has no peak
    for a reused lesson: its cell stays empty). A lesson that ran to the end also gets the runs of
    it that earlier invocations stopped (``invocations``, from the .measured.json beside the report)."""
    results = {}
    for item in run.get("notebooks", []):
        status = item.get("status", "?")
        results[item["name"]] = (LessonResult(status, item.get("wall_seconds"), item.get("peak_memory_mb"),
                                              item.get("peak_memory_cell"), item.get("memory_rises") or [])
                                 if status in ("ran", "reused") else LessonResult(status))
    for invocation in invocations:
        for name, attempt in (invocation.get("lessons") or {}).items():
            if attempt.get("status") in STOPPED and name in results and results[name].status in ("ran", "reused"):
                results[name].earlier_attempts.append(attempt)
    return results


def data_rows(metrics: dict[str, Any], data_dir: str | None) -> dict[str, Any]:
    """Rows of the size: from lesson 1's record, else from the synthetic folder's manifest."""
    train = metrics.get("data.split_counts.train.toxic"), metrics.get("data.split_counts.train.non_toxic")
    rows = {"train_csv_rows": metrics.get("data.train_csv_rows"), "test_rows": metrics.get("data.test_rows_labelled"),
            "training_split_rows": sum(train) if None not in train else None,
            "toxic_share_train": metrics.get("data.class_counts.train_csv.toxic.toxic_share"),
            "toxic_share_test": metrics.get("data.class_counts.test.toxic.toxic_share")}
    manifest = read_json_or(Path(data_dir) / MANIFEST, None) if data_dir else None
    if isinstance(manifest, dict):
        written = manifest.get("toxic_share") or {}
        rows["train_csv_rows"] = rows["train_csv_rows"] or manifest["rows"].get("train.csv")
        rows["test_rows"] = rows["test_rows"] or manifest["rows"].get("test.csv")
        rows["toxic_share_train"] = rows["toxic_share_train"] or written.get("train.csv")
        rows["toxic_share_test"] = rows["toxic_share_test"] or written.get("test_labels.csv")
    rows["synthetic"] = bool(manifest and manifest.get("synthetic")) if data_dir else None
    rows["shares"] = (manifest.get("shares", "source") if isinstance(manifest, dict) else "source") if data_dir else None
    return rows


def lesson_one_record(report: Path) -> dict[str, Any]:
    """Lesson 1's own record in the report's artifacts (its ``data_dir`` and row counts). An
    invocation that runs only later lessons (``--only 09,...``) has neither in its run.json nor,
    when lesson 1's result is no longer current, in metrics.json; without this, its size would be
    described by the package's default data instead of the folder lesson 1 read."""
    record = read_json_or(report / "artifacts" / "metrics" / "data.json", {})
    return record if isinstance(record, dict) else {}


def collect_size(label: str, report: Path) -> SizeResult:
    """One size from its report folder (``not run`` when there is none)."""
    run = read_json_or(report / "run.json", None)
    if not isinstance(run, dict):
        return SizeResult(label, str(report), "not run")
    kept = read_json_or(measured_path(report), {})
    lesson_one = lesson_one_record(report)
    data_dir = ((run.get("parameters") or {}).get("data_dir") or (lesson_one.get("parameters") or {}).get("data_dir")
                or (run.get("data_source") or {}).get("path"))
    rows = data_rows({**(lesson_one.get("metrics") or {}), **read_json_or(report / "metrics.json", {})}, data_dir)
    return SizeResult(label, str(report), run.get("status", "?"), **rows, data_dir=data_dir,
                      finished_at=run.get("finished_at"), git_commit=(run.get("code") or {}).get("git_commit"),
                      kernel_peak_mb=(run.get("peak_memory_mb") or {}).get("kernels"),
                      load_average=[item.get("load_average") for item in kept.get("invocations", [])],
                      lessons=lesson_results(run, kept.get("invocations", [])))


def growth_exponent(seconds: tuple[float | None, float | None], rows: tuple[int | None, int | None]) -> float | None:
    """log(time ratio) / log(row ratio): 1 linear, 2 quadratic, 0 a fixed cost."""
    (t0, t1), (r0, r1) = seconds, rows
    if not (t0 and t1 and r0 and r1) or r0 == r1:
        return None
    return math.log(t1 / t0) / math.log(r1 / r0)


def row_basis(sizes: list[SizeResult]) -> str:
    """Lesson 1's training split when every size has it, else train.csv (one basis for all)."""
    return "training_split_rows" if all(s.training_split_rows for s in sizes) else "train_csv_rows"


def build_table(sizes: list[SizeResult]) -> dict[str, Any]:
    """Per lesson and size: seconds, peak MB, seconds per 1,000 training rows; growth exponents
    between consecutive sizes; and the flags (over 3,000 MB, faster than linear)."""
    measured = sorted((s for s in sizes if s.lessons), key=lambda s: s.train_csv_rows or 0)
    basis = row_basis(measured)
    rows = {s.label: getattr(s, basis) for s in measured}
    names = sorted({name for s in measured for name in s.lessons})
    table: dict[str, Any] = {"row_basis": basis, "rows": rows, "sizes": [s.label for s in measured],
                             "steps": step_ratios(measured, rows), "lessons": {}, "growth": {},
                             "flags": {"over_memory": [], "faster_than_linear": []}}
    for name in names:
        cells = {}
        for s in measured:
            lesson = s.lessons.get(name, LessonResult("absent"))
            per_1000 = lesson.wall_seconds / rows[s.label] * 1000 if lesson.wall_seconds and rows[s.label] else None
            cells[s.label] = {**asdict(lesson), "seconds_per_1000_rows": per_1000}
            highest = lesson.highest_peak()
            if (highest["peak_memory_mb"] or 0) > MEMORY_FLAG_MB:
                table["flags"]["over_memory"].append({"lesson": name, "size": s.label, "peak_memory_mb": highest["peak_memory_mb"],
                                                      "cell": highest.get("peak_memory_cell"),
                                                      "rises": highest.get("memory_rises") or []})
        table["lessons"][name] = cells
        table["growth"][name] = growth_row(name, measured, cells, rows, table["flags"]["faster_than_linear"])
    return table


def step_ratios(measured: list[SizeResult], rows: dict[str, int | None]) -> dict[str, dict[str, float | None]]:
    """How much the training and the test rows grew at each step. They grow alike between
    multiples, not towards Kaggle's size (train x11, test x27 the sample): a lesson that mostly
    scores the test split (7, 8, 10) then looks faster than linear against the training rows."""
    ratio = lambda a, b: b / a if a and b else None  # noqa: E731
    return {f"{before.label}->{after.label}": {"training_rows": ratio(rows[before.label], rows[after.label]),
                                                "test_rows": ratio(before.test_rows, after.test_rows)}
            for before, after in zip(measured, measured[1:])}


def growth_row(name: str, measured: list[SizeResult], cells: dict[str, Any], rows: dict[str, int | None],
               flags: list[dict[str, Any]]) -> dict[str, float | None]:
    growth = {}
    for before, after in zip(measured, measured[1:]):
        step = f"{before.label}->{after.label}"
        growth[step] = growth_exponent((cells[before.label]["wall_seconds"], cells[after.label]["wall_seconds"]),
                                       (rows[before.label], rows[after.label]))
        if growth[step] is not None and growth[step] > FASTER_THAN_LINEAR:
            flags.append({"lesson": name, "step": step, "exponent": round(growth[step], 2)})
    return growth


def number(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def head(columns: Sequence[str]) -> list[str]:
    return ["| lesson | " + " | ".join(columns) + " |", "| --- |" + " ---: |" * len(columns)]


def lesson_markdown(table: dict[str, Any]) -> list[str]:
    """The four tables: seconds, peak MB, seconds per 1,000 rows, growth exponents."""
    sizes, lessons = table["sizes"], table["lessons"]

    def cell(entry: dict[str, Any], key: str, digits: int = 1) -> str:
        if entry["status"] not in ("ran", "reused"):
            return entry["status"]
        text = number(entry[key], digits)
        if key == "peak_memory_mb" and (entry[key] or 0) > MEMORY_FLAG_MB:
            text = f"**{text}** (over {MEMORY_FLAG_MB:,})"
        return text + stopped_runs(entry, key)

    lines = ["## Wall seconds per lesson", "", *head(sizes)]
    lines += [f"| {name} | " + " | ".join(cell(lessons[name][s], "wall_seconds") for s in sizes) + " |" for name in lessons]
    lines += ["", "## Peak memory per lesson (MB; its kernel and the kernel's children)", "", *head(sizes)]
    lines += [f"| {name} | " + " | ".join(cell(lessons[name][s], "peak_memory_mb", 0) for s in sizes) + " |" for name in lessons]
    basis = "lesson 1's training split" if table["row_basis"] == "training_split_rows" else "train.csv"
    lines += ["", f"## Seconds per 1,000 training rows ({basis})", "", *head(sizes)]
    lines += [f"| {name} | " + " | ".join(cell(lessons[name][s], "seconds_per_1000_rows", 2) for s in sizes) + " |" for name in lessons]
    return lines + ["", *growth_markdown(table)]


def stopped_runs(entry: dict[str, Any], key: str) -> str:
    """`` (+1,234.5 s in 1 stopped run)`` after a lesson's seconds, `` (a stopped run: 3,050)`` after
    its peak when a stopped run went higher; nothing for a lesson that ran once."""
    attempts = entry.get("earlier_attempts") or []
    if not attempts:
        return ""
    if key == "wall_seconds":
        spent = sum(a.get("wall_seconds") or 0 for a in attempts)
        return f" (+{spent:,.1f} s in {len(attempts)} stopped run{'s' if len(attempts) > 1 else ''})"
    peak = max(a.get("peak_memory_mb") or 0 for a in attempts)
    return f" (a stopped run: {peak:,.0f})" if key == "peak_memory_mb" and peak > (entry[key] or 0) else ""


def ratio_text(value: float | None) -> str:
    return "?" if value is None else f"x{value:.2f}"


def growth_markdown(table: dict[str, Any]) -> list[str]:
    """The growth exponents, after how much the training and the test rows grew at each step."""
    lines = ["## Growth exponent between consecutive sizes", "",
             f"log(time ratio) / log(row ratio): 1 linear, 0 a fixed cost; **bold** above {FASTER_THAN_LINEAR} "
             "(faster than the data).", ""]
    steps = table["steps"]
    if not steps:
        return lines + ["(one size measured: no growth yet)"]
    lines += ["Rows grew " + "; ".join(f"{step}: training {ratio_text(r['training_rows'])}, test "
                                       f"{ratio_text(r['test_rows'])}" for step, r in steps.items())
              + ". Lessons that mostly score the test split grow with the test rows.", "", *head(list(steps))]
    for name, growth in table["growth"].items():
        shown = [("" if value is None else f"**{value:.2f}**" if value > FASTER_THAN_LINEAR else f"{value:.2f}")
                 for value in growth.values()]
        lines.append(f"| {name} | " + " | ".join(shown) + " |")
    return lines


def sizes_markdown(sizes: list[dict[str, Any]]) -> list[str]:
    """One line per size: its rows, its class shares, whether its data is real, its total time and
    memory, the load; then which shares each size has, and why."""
    lines = ["| size | status | train.csv rows | training split rows | test rows | toxic share train.csv / test | "
             "data | lessons' seconds | kernel peak MB | load average before (1 min) |",
             "| --- | --- | ---: | ---: | ---: | --- | --- | ---: | ---: | --- |"]
    for s in sizes:
        walls = [item["wall_seconds"] or 0 for item in s["lessons"].values() if item["status"] in ("ran", "reused")]
        load = ", ".join(f"{item['before'][0]:.2f}" for item in s["load_average"] if item)
        data_kind = {None: "", True: "SYNTHETIC", False: "real"}[s["synthetic"]]
        lines.append(f"| {s['label']} | {s['status']} | {number(s['train_csv_rows'], 0)} | "
                     f"{number(s['training_split_rows'], 0)} | {number(s['test_rows'], 0)} | {shares_cell(s)} | "
                     f"{data_kind} | {number(sum(walls) if walls else None, 0)} | {number(s['kernel_peak_mb'], 0)} | {load} |")
    return lines + ["", SHARES_NOTE]


SHARES_NOTE = (
    "Class shares: the real sample and its multiples (1x, 2x, 4x) keep the sample's shares (toxic comments "
    "over-represented: 38.5% of train.csv), so the 1x-2x-4x series measures growth on one pipeline (lesson 1's "
    "undersampling to 20% toxic leaves their training split as it is). `kaggle` has Kaggle's own shares "
    f"({KAGGLE_TRAIN_TOXIC_SHARE:.2%} of train.csv, {KAGGLE_TEST_TOXIC_SHARE:.2%} of the labelled test rows), so "
    "it costs what the real download costs: lesson 1 undersamples its training split to 20% toxic, and lessons "
    "5-6 train on about half the rows the sample's shares would give. The step into `kaggle` therefore changes "
    "the training split's make-up as well as the size (lesson 1's training split is counted after the "
    "undersampling).")


def shares_cell(size: dict[str, Any]) -> str:
    """``38.48% / 47.69% (the source's)`` or ``9.58% / 9.52% (set: Kaggle's)``."""
    train, test = size.get("toxic_share_train"), size.get("toxic_share_test")
    if train is None and test is None:
        return ""
    shown = " / ".join("?" if value is None else f"{value:.2%}" for value in (train, test))
    kaggle = (train is not None and abs(train - KAGGLE_TRAIN_TOXIC_SHARE) < 5e-4
              and test is not None and abs(test - KAGGLE_TEST_TOXIC_SHARE) < 5e-4)
    chosen = {"source": "the source's", "set": "set: Kaggle's" if kaggle else "set"}.get(size.get("shares"), "")
    return f"{shown} ({chosen})" if chosen else shown


def rises_markdown(rises: Sequence[Sequence[Any]], last: int = 4) -> str:
    """' (the high-water mark reached 2,883 MB in cell 17 of 31, 2,948 MB in cell 19 of 31)': the
    last few cells that raised the memory and the level each left, so a reader sees whether the
    cell before the peak was already over (runs before 2026-12-07 kept no rises: nothing is said)."""
    if not rises:
        return ""
    climbed = ", ".join(f"{mb:,} MB in {cell}" for cell, mb in list(rises)[-last:])
    return f" (the high-water mark reached {climbed})"


def markdown(record: dict[str, Any]) -> list[str]:
    table, computer = record["table"], record["machine"]
    lines = [f"# Scaling: the full walkthrough at growing data sizes, {record['date']}", "",
             f"{computer['cpus']} CPUs, {computer['platform']}, {computer['memory_gb']} GB; profile `{PROFILE}`; "
             f"sizes from {record['source']} (1x: the real rows; above: SYNTHETIC rows, cost only: "
             f"`{record['method']}` copies, seed {record['seed']}); only {record['only'] or 'all lessons'}; "
             f"-p {record['params'] or 'none'}" + (f"; {record['note']}" if record["note"] else ""), "",
             *sizes_markdown(record["sizes"]), "",
             *lesson_markdown(table), ""]
    flags = table["flags"]
    lines += ["## Flags", ""]
    lines += [f"- {f['lesson']} at {f['size']}: peak {f['peak_memory_mb']:,.0f} MB, over {MEMORY_FLAG_MB:,} MB"
              + (f", in {f['cell']}" if f.get("cell") else "") + rises_markdown(f.get("rises") or [])
              for f in flags["over_memory"]]
    lines += [f"- {f['lesson']} {f['step']}: growth exponent {f['exponent']:.2f}, faster than linear"
              for f in flags["faster_than_linear"]]
    if not (flags["over_memory"] or flags["faster_than_linear"]):
        lines.append("- none")
    lines += ["", "Reused lessons count with the time and memory of the run that executed them; seconds of a size "
              "resumed across invocations were not all measured back to back. A lesson stopped and run again "
              "shows its last run's seconds (the size's total counts only those) and, after them, what its stopped "
              "runs spent: an uninterrupted run takes between the two (the rerun repeats the cells before the "
              "point it resumes from). Its growth exponent and seconds per 1,000 rows use the last run's seconds, "
              "so they understate it. Timings on a loaded machine (load average above the CPU count) are not comparable."]
    return lines


def write_table(reports: Path, labels: Sequence[str], settings: dict[str, Any], date: str | None = None) -> Path:
    """Rebuild the record from the report folders (``--table-only`` does only this)."""
    from toxhelpers.recording import package_versions

    sizes = [collect_size(label, report_folder(reports, label)) for label in labels]
    record = {"date": date or dt.date.today().isoformat(), "machine": machine(), "versions": package_versions(),
              "profile": PROFILE, "reports": str(reports), **settings,
              "sizes": [asdict(s) for s in sizes], "table": build_table(sizes)}
    stem = save_record("scaling", record, markdown(record), date=date)
    say(f"record: {stem}.md and .json")
    return stem


# --- the command line -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="The full walkthrough at growing data sizes (1x, 2x, 4x the "
                                                 "sample, Kaggle's size): wall seconds and peak memory per lesson.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help="the real sample in Kaggle's layout (default: the shared sample, $TOXHELPERS_SHARED_SAMPLE)")
    parser.add_argument("--sizes", nargs="+", default=list(DEFAULT_SIZES), help="Nx or kaggle, in order (default: %(default)s)")
    parser.add_argument("--reports", type=Path, default=DEFAULT_REPORTS, help="where the scale-<size> reports go")
    parser.add_argument("--data-root", type=Path, help="where the synthetic folders go (default: <reports>/data)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--method", choices=FAST_METHODS, default=DEFAULT_METHOD, help="the augmenter making the copies")
    parser.add_argument("--aug-p", type=float, default=0.1, help="share of each copy's words changed")
    parser.add_argument("--only", action="append", default=[], metavar="NB", help="passed to toxhelpers run")
    parser.add_argument("-p", "--param", dest="params", action="append", default=[], metavar="KEY=VALUE",
                        help="passed to toxhelpers run (not data_dir: each size sets it)")
    parser.add_argument("--note", default="", help="one line for the record, e.g. 'quiet machine'")
    parser.add_argument("--date", help="the record's date (YYYY-MM-DD, default today)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--table-only", action="store_true", help="only rebuild the record from the reports there")
    mode.add_argument("--dry-run", action="store_true", help="print what would be built and run")
    return parser


def plan_line(size: Size, source_dir: Path, data_root: Path, source_rows: tuple[int, int], request: dict[str, Any],
              report: Path, arguments: list[str]) -> str:
    """What ``--dry-run`` says about one size."""
    if uses_source(size, source_rows):
        data_note = f"the real rows in {source_dir}"
    elif (data_root / size.label).exists():
        data_note = f"reuse {data_root / size.label}"
    else:
        data_note = (f"build {data_root / size.label}: +{size.train_rows - source_rows[0]:,} train and "
                     f"+{size.test_rows - source_rows[1]:,} test synthetic rows ({request['method']!r}, seed {request['seed']})")
    shares = (f"toxic share: train {share_text(size.train_toxic_share)}, test {share_text(size.test_toxic_share)}"
              if size.shares_set else "toxic share: the source's")
    verdict = "skip (finished with this command)" if finished(report, arguments) else "run (lessons finished before are reused)"
    return (f"{size.label}: {size.train_rows:,} train.csv rows, {size.test_rows:,} test rows; {shares}; data: {data_note}\n"
            f"    {verdict}: {sys.executable} -m toxhelpers run {' '.join(arguments)}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if any(item.split("=", 1)[0].strip() == "data_dir" for item in args.params):
        raise SystemExit("scaling.py: -p data_dir is set per size; leave it out")
    reports, source_dir = args.reports.resolve(), args.source.resolve()
    data_root = (args.data_root or reports / "data").resolve()
    settings = {"source": str(source_dir), "seed": args.seed, "method": args.method, "aug_p": args.aug_p,
                "only": args.only, "params": args.params, "note": args.note}
    if args.table_only:
        source_counts = None
    else:
        source = read_source(source_dir)
        source_counts = (len(source.train), len(source.test))
    sizes = [parse_size(text, *(source_counts or (1, 1))) for text in args.sizes]
    if args.table_only:
        write_table(reports, [s.label for s in sizes], settings, args.date)
        return 0
    code = 0
    for size in sizes:
        report = report_folder(reports, size.label)
        data_dir = source_dir if uses_source(size, source_counts) else data_root / size.label
        arguments = run_arguments(data_dir, report, args.only, args.params)
        if args.dry_run:
            request = build_request(source_dir, size, args.seed, args.method, args.aug_p)
            print(plan_line(size, source_dir, data_root, source_counts, request, report, arguments))
            continue
        ensure_data(source_dir, data_root, size, source_counts, args.seed, args.method, args.aug_p)
        code = run_size(report, arguments)
        if code != 0:
            say(f"{report.name}: toxhelpers run ended with exit status {code}; stopping (rerun to resume)")
            break
    if not args.dry_run:
        write_table(reports, [s.label for s in sizes], settings, args.date)
    return code


if __name__ == "__main__":
    sys.exit(main())
