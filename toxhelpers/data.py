"""Reading the Jigsaw Toxic Comment data and making leak-free splits.

The data comes in Kaggle's own layout: ``train.csv`` (id, comment_text and six 0/1 labels),
``test.csv`` (id, comment_text) and ``test_labels.csv`` (id and the six labels, with -1 for rows
Kaggle never scored; those are dropped). Either plain ``.csv`` files or Kaggle's ``.csv.zip``
files are read.

Order matters for honest numbers: split train/validation first (stratified, seeded), and only
then resample the *training* split. The test split is never resampled, augmented or looked at
for any choice.
"""

from __future__ import annotations

import codecs
import importlib.resources
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

LABEL_COLUMNS = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
TEXT_COLUMN = "comment_text"
ID_COLUMN = "id"
TARGET_COLUMN = "label"
LABEL_RULES = ("toxic", "any")
TRAIN_ROW_CHOICES = ("all", "natural")

DATA_DIR_ENV = "TOXHELPERS_DATA_DIR"
# Where the README tells users to unzip the Kaggle download, looked up from the working folder
# and its parents (so it is found from the repository root and from notebooks/).
CONVENTIONAL_DIR = Path("data") / "jigsaw-toxic-comment-classification-challenge"
RANDOM_IDS_FILE = "train_random_ids.csv"
# Written by benchmarks/scaling.py into folders of synthetic rows (made for cost measurement only).
SYNTHETIC_MANIFEST = "synthetic.json"
# Kaggle's full files: train.csv rows, and test rows with labels (test_labels.csv without -1 rows);
# of those, the rows with toxic = 1: 9.58% of train.csv and 9.52% of the labelled test rows, the
# natural shares (the shared sample over-represents toxic comments: 38.5% and 47.7%).
KAGGLE_TRAIN_ROWS = 159_571
KAGGLE_TEST_ROWS_LABELLED = 63_978
KAGGLE_TRAIN_TOXIC_ROWS = 15_294
KAGGLE_TEST_TOXIC_ROWS_LABELLED = 6_090

SPLITS = ("train", "validation", "test")


SHIPPED_SAMPLE = "shipped sample"  # the origin of the data when nothing else was found


@dataclass(frozen=True)
class DataSource:
    """Where the data was found and why there (so a report can say it)."""

    path: Path
    origin: str

    @property
    def is_shipped_sample(self) -> bool:
        return self.origin == SHIPPED_SAMPLE


def sample_data_dir() -> Path:
    """The small real sample shipped with the package: genuine Jigsaw rows drawn from the shared
    sample (see its README), so a first run without Kaggle's download still measures something."""
    return Path(str(importlib.resources.files("toxhelpers") / "sample_data"))


def locate_data(data_dir: str | os.PathLike | None = None, search_from: str | os.PathLike | None = None) -> DataSource:
    """Find the data: the ``data_dir`` parameter, then ``$TOXHELPERS_DATA_DIR``, then the
    conventional folder (``data/jigsaw-toxic-comment-classification-challenge`` here or in a
    parent folder), then the small real sample shipped with the package."""
    if data_dir not in (None, ""):
        return DataSource(_existing_dir(data_dir, "the data_dir parameter"), "parameter")
    if os.environ.get(DATA_DIR_ENV):
        return DataSource(_existing_dir(os.environ[DATA_DIR_ENV], f"${DATA_DIR_ENV}"), DATA_DIR_ENV)
    start = Path(search_from or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONVENTIONAL_DIR
        if candidate.is_dir():
            return DataSource(candidate, "conventional folder")
    return DataSource(sample_data_dir(), SHIPPED_SAMPLE)


def _existing_dir(path: str | os.PathLike, named_by: str) -> Path:
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{named_by} points to {folder}, which is not a folder. Expected a folder holding "
            "Kaggle's train.csv, test.csv and test_labels.csv (or their .csv.zip files)."
        )
    return folder


def find_optional_file(folder: Path, name: str) -> Path | None:
    """``folder/name``, or Kaggle's zipped ``folder/name.zip``, or None when neither is there."""
    for candidate in (folder / name, folder / f"{name}.zip"):
        if candidate.is_file():
            return candidate
    return None


def find_file(folder: Path, name: str) -> Path:
    """``folder/name``, or Kaggle's zipped ``folder/name.zip``."""
    found = find_optional_file(folder, name)
    if found is not None:
        return found
    raise FileNotFoundError(
        f"{folder / name} not found (nor {name}.zip). Expected Kaggle's Jigsaw Toxic Comment "
        f"layout in {folder}: train.csv, test.csv and test_labels.csv."
    )


def read_csv_checked(path: Path, required: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """Read a CSV (or Kaggle's one-file zip of it) as UTF-8 with ids and text as strings, failing
    with one message naming the file on bad bytes, an empty file, a bad zip or missing columns."""
    check_zip(path)
    dtypes = {ID_COLUMN: "string", TEXT_COLUMN: "string"}
    try:
        # keep_default_na=False: a comment reading "NA" or "null" is text, not a missing value.
        frame = pd.read_csv(path, encoding="utf-8", dtype=dtypes, keep_default_na=False)
    except UnicodeDecodeError as error:
        offset, line = first_invalid_utf8(path)
        raise ValueError(
            f"{path}: the byte at offset {offset} (line {line}) is not valid UTF-8 ({error.reason}). "
            "Expected the UTF-8 CSV files of the Kaggle download; re-download or re-encode the file."
        ) from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the file is empty (not even a header row). Expected a CSV with "
                         f"columns {list(required)}; re-download the file.") from None
    except pd.errors.ParserError as error:
        raise ValueError(f"{path}: not a well-formed CSV file ({error})") from None
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {missing}. Expected columns {list(required)}; "
            f"found {list(frame.columns)}."
        )
    if frame[ID_COLUMN].isna().any() or frame[ID_COLUMN].duplicated().any():
        duplicated = frame.loc[frame[ID_COLUMN].duplicated(), ID_COLUMN].head(3).tolist()
        raise ValueError(f"{path}: ids must be present and unique; repeated or empty ids e.g. {duplicated}")
    return frame


def check_zip(path: Path) -> None:
    """A ``.zip`` must be a readable zip archive holding exactly one file, as Kaggle's are."""
    if path.suffix.lower() != ".zip":
        return
    expected = f"expected Kaggle's zip holding one file, {path.stem}"
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info.filename for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"{path}: not a readable zip archive ({error}); {expected}") from None
    if len(members) != 1:
        raise ValueError(f"{path}: holds {len(members)} files {members[:5]}; {expected}")


def _open_bytes(path: Path):
    """The file's bytes as a stream: the one member of a ``.zip`` (see :func:`check_zip`)."""
    if path.suffix.lower() != ".zip":
        return open(path, "rb")
    archive = zipfile.ZipFile(path)
    return archive.open(archive.infolist()[0])


def first_invalid_utf8(path: Path, chunk_size: int = 1 << 20) -> tuple[int, int]:
    """(byte offset from the start of the file, line number) of the first byte that is not valid
    UTF-8; pandas only reports an offset within its read buffer. (-1, -1) if all bytes decode."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, lines = 0, 1
    with _open_bytes(path) as stream:
        while True:
            chunk = stream.read(chunk_size)
            pending = decoder.getstate()[0]  # bytes of a character split across chunks
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                data = pending + chunk
                return offset - len(pending) + error.start, lines + data.count(b"\n", 0, error.start)
            if not chunk:
                return -1, -1
            offset += len(chunk)
            lines += chunk.count(b"\n")


def check_comments(frame: pd.DataFrame, path: Path, on_empty: str = "error") -> pd.DataFrame:
    """Reject (default) or, with ``on_empty="drop"``, drop with a printed count, rows whose
    comment is missing or only white space: the model cannot learn from them."""
    if on_empty not in ("error", "drop"):
        raise ValueError(f"on_empty must be 'error' or 'drop', got {on_empty!r}")
    text = frame[TEXT_COLUMN]
    empty = text.isna() | (text.fillna("").str.strip() == "")
    if not empty.any():
        return frame
    ids = frame.loc[empty, ID_COLUMN].head(5).tolist()
    if on_empty == "error":
        raise ValueError(
            f"{path}: {int(empty.sum())} row(s) have an empty or missing comment_text (ids e.g. {ids}). "
            "Expected non-empty text in every row; fix the file or pass on_empty='drop'."
        )
    print(f"Dropped {int(empty.sum())} row(s) of {path.name} with empty comment_text (ids e.g. {ids}).")
    return frame.loc[~empty].reset_index(drop=True)


def check_labels(frame: pd.DataFrame, path: Path, columns: tuple[str, ...] = LABEL_COLUMNS) -> pd.DataFrame:
    """Labels must be exactly 0 or 1; anything else (text, 2, -1 in train, blanks) is an error."""
    for column in columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | ~values.isin([0, 1])
        if bad.any():
            examples = frame.loc[bad, column].head(3).tolist()
            raise ValueError(
                f"{path}: column {column!r} must hold only 0 or 1; found {examples} in "
                f"{int(bad.sum())} row(s) (first id {frame.loc[bad, ID_COLUMN].iloc[0]})."
            )
        frame[column] = values.astype("int8")
    return frame


def load_train(source: DataSource, on_empty: str = "error") -> pd.DataFrame:
    """Kaggle's train.csv, checked."""
    path = find_file(source.path, "train.csv")
    frame = read_csv_checked(path, (ID_COLUMN, TEXT_COLUMN, *LABEL_COLUMNS))
    frame = check_comments(frame, path, on_empty)
    return check_labels(frame, path)[[ID_COLUMN, TEXT_COLUMN, *LABEL_COLUMNS]]


def load_test(source: DataSource, on_empty: str = "error") -> tuple[pd.DataFrame, int]:
    """Kaggle's test.csv joined with test_labels.csv; rows labelled -1 (never scored) dropped.

    Returns the labelled test rows and how many unscored rows were dropped.
    """
    text_path = find_file(source.path, "test.csv")
    labels_path = find_file(source.path, "test_labels.csv")
    texts = read_csv_checked(text_path, (ID_COLUMN, TEXT_COLUMN))
    labels = read_csv_checked(labels_path, (ID_COLUMN, *LABEL_COLUMNS))
    unmatched = set(texts[ID_COLUMN]).symmetric_difference(labels[ID_COLUMN])
    if unmatched:
        raise ValueError(
            f"{text_path.name} and {labels_path.name} must list the same ids; "
            f"{len(unmatched)} id(s) appear in only one, e.g. {sorted(unmatched)[:3]}"
        )
    numeric = labels[list(LABEL_COLUMNS)].apply(pd.to_numeric, errors="coerce")
    unscored = (numeric == -1).all(axis=1)
    partly = (numeric == -1).any(axis=1) & ~unscored
    if partly.any():
        raise ValueError(f"{labels_path}: {int(partly.sum())} row(s) mix -1 with 0/1 labels; "
                         "expected -1 in all six columns (unscored) or none")
    labels = check_labels(labels.loc[~unscored].copy(), labels_path)
    test = texts.merge(labels, on=ID_COLUMN, how="inner", validate="one_to_one")
    test = check_comments(test, text_path, on_empty)
    return test[[ID_COLUMN, TEXT_COLUMN, *LABEL_COLUMNS]], int(unscored.sum())


def random_row_ids(source: DataSource) -> set[str] | None:
    """Ids of the plain random draw in ``train_random_ids.csv`` when the folder has one."""
    path = find_optional_file(source.path, RANDOM_IDS_FILE)
    if path is None:
        return None
    return set(read_csv_checked(path, (ID_COLUMN,))[ID_COLUMN])


def add_binary_label(frame: pd.DataFrame, rule: str = "toxic") -> pd.DataFrame:
    """Add the 0/1 ``label`` column: the ``toxic`` column (the article's rule) or ``any`` of
    the six labels."""
    if rule not in LABEL_RULES:
        raise ValueError(f"label_rule must be one of {LABEL_RULES}, got {rule!r}")
    labelled = frame.copy()
    if rule == "toxic":
        labelled[TARGET_COLUMN] = labelled["toxic"].astype("int8")
    else:
        labelled[TARGET_COLUMN] = labelled[list(LABEL_COLUMNS)].max(axis=1).astype("int8")
    return labelled


def _counts(label: pd.Series) -> dict[str, int | float]:
    return {"non_toxic": int((label == 0).sum()), "toxic": int((label == 1).sum()),
            "toxic_share": float(label.mean())}


def class_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Non-toxic / toxic counts and toxic share under each binary label rule."""
    return pd.DataFrame({rule: _counts(add_binary_label(frame, rule)[TARGET_COLUMN])
                         for rule in LABEL_RULES}).T.rename_axis("rule").astype(
        {"non_toxic": int, "toxic": int})


def split_counts(splits: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Non-toxic / toxic counts and toxic share of each labelled split."""
    return pd.DataFrame({name: _counts(frame[TARGET_COLUMN]) for name, frame in splits.items()}).T.astype(
        {"non_toxic": int, "toxic": int})


def stratified_sample(frame: pd.DataFrame, rows: int | None, seed: int,
                      what: str | os.PathLike = "the rows to sample from") -> pd.DataFrame:
    """A seeded, class-stratified subset of ``rows`` rows (all rows when ``rows`` is None).

    ``what`` names the file the rows come from, for the error when a class is missing (no model
    can be trained, no ROC-AUC measured, on one class) or too small to sample from.
    """
    require_rows_per_class(frame, what, 1, "a model can only learn, and be scored, on both classes")
    if rows is None or rows >= len(frame):
        return frame.reset_index(drop=True)
    require_rows_per_class(frame, what, 2, "a stratified sample needs at least 2 per class")
    kept, _ = train_test_split(frame, train_size=int(rows), stratify=frame[TARGET_COLUMN],
                               random_state=seed)
    return kept.sort_index().reset_index(drop=True)


def require_rows_per_class(frame: pd.DataFrame, what: str | os.PathLike, minimum: int, why: str) -> None:
    """Fail, naming ``what``, when the non-toxic or the toxic class has fewer than ``minimum`` rows."""
    counts = frame[TARGET_COLUMN].value_counts()
    for value in (0, 1):
        if counts.get(value, 0) < minimum:
            raise ValueError(f"{what}: class {value} ({'toxic' if value else 'non-toxic'}) has "
                             f"{int(counts.get(value, 0))} row(s); {why}.")


def split_train_validation(frame: pd.DataFrame, validation_fraction: float, seed: int,
                           what: str | os.PathLike = "train.csv") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified, seeded train/validation split. Do this BEFORE any resampling. (``what`` names
    the file the rows come from, for the error when a class is too small to split.)"""
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be between 0 and 1, got {validation_fraction!r}")
    require_rows_per_class(frame, what, 2, "a stratified split needs at least 2 per class")
    train, validation = train_test_split(frame, test_size=validation_fraction,
                                         stratify=frame[TARGET_COLUMN], random_state=seed)
    return train.sort_index().reset_index(drop=True), validation.sort_index().reset_index(drop=True)


def undersample_majority(train: pd.DataFrame, target_share: float, seed: int) -> tuple[pd.DataFrame, str]:
    """Drop non-toxic training rows until toxic rows make up ``target_share``.

    When the split is already at or above the target (the enriched shared sample is), it is
    kept unchanged: undersampling cannot lower the toxic share, and oversampling is the
    augmentation lesson's job. Returns the frame and a sentence saying what happened.
    """
    if not 0.0 < target_share < 1.0:
        raise ValueError(f"target_toxic_share must be between 0 and 1, got {target_share!r}")
    toxic = train[train[TARGET_COLUMN] == 1]
    clean = train[train[TARGET_COLUMN] == 0]
    share = len(toxic) / len(train)
    if share >= target_share:
        return train, (f"The training split is already {share:.1%} toxic, at or above the target "
                       f"{target_share:.0%}: kept as is ({len(train)} rows).")
    keep_clean = int(round(len(toxic) * (1 - target_share) / target_share))
    kept = pd.concat([toxic, clean.sample(n=keep_clean, random_state=seed)]).sort_index()
    return kept.reset_index(drop=True), (
        f"Undersampled non-toxic training rows from {len(clean)} to {keep_clean}: toxic share "
        f"{share:.1%} -> {len(toxic) / len(kept):.1%} ({len(kept)} rows).")


def split_path(artifacts_dir: str | os.PathLike, split: str, variant: str | None = None) -> Path:
    """Where a split is stored (the artifact table's ``split``, or ``balanced_train`` for the
    ``balanced`` variant of the training split)."""
    from toxhelpers.artifacts import artifact_path

    name, fields = _split_artifact(split, variant)
    return artifact_path(artifacts_dir, name, **fields)


def _split_artifact(split: str, variant: str | None) -> tuple[str, dict[str, str]]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if variant in (None, "", "unbalanced"):
        return "split", {"split": split}
    if (split, variant) != ("train", "balanced"):
        raise ValueError(f"only the training split has a balanced variant, got split {split!r}, variant {variant!r}")
    return "balanced_train", {}


def load_split(artifacts_dir: str | os.PathLike, split: str, variant: str | None = None) -> pd.DataFrame:
    """Read a split written by lesson 1 (or the balanced train set written by lesson 2)."""
    from toxhelpers.artifacts import read_parquet, require_artifact

    name, fields = _split_artifact(split, variant)
    return read_parquet(require_artifact(artifacts_dir, name, **fields))


def describe_data(origin: str, path: str | os.PathLike, train_rows: int | None = None,
                  test_rows: int | None = None) -> str:
    """What the data is, in one sentence for a lesson, a report or a model card: the shipped
    sample, Kaggle's full download or another set of Jigsaw rows, with row counts when known."""
    counts = (f"{train_rows:,} train.csv rows and {test_rows:,} labelled test rows"
              if train_rows is not None and test_rows is not None else "")
    if origin == SHIPPED_SAMPLE:
        return (f"a small real sample of Kaggle's Jigsaw data shipped with toxhelpers ({counts or path}): "
                "expect wider intervals than on the full data")
    if (Path(path) / SYNTHETIC_MANIFEST).is_file():  # benchmarks/scaling.py's rows: Kaggle's size, not its text
        return (f"SYNTHETIC rows made from real Jigsaw rows to measure cost, not quality, at {path} "
                f"({SYNTHETIC_MANIFEST} says how)" + (f": {counts}" if counts else ""))
    if (train_rows, test_rows) == (KAGGLE_TRAIN_ROWS, KAGGLE_TEST_ROWS_LABELLED):
        kind = "Kaggle's full download"
    else:
        kind = f"Jigsaw rows in Kaggle's layout (the full download has {KAGGLE_TRAIN_ROWS:,} and {KAGGLE_TEST_ROWS_LABELLED:,})"
    return f"{kind} at {path}, found via {origin}" + (f": {counts}" if counts else "")


def announce_source(source: DataSource, train_rows: int | None = None, test_rows: int | None = None) -> str:
    """Print and return where the data came from (:func:`describe_data`); for the shipped sample,
    also how to use the full download."""
    line = "Data: " + describe_data(source.origin, source.path, train_rows, test_rows) + "."
    if source.is_shipped_sample:
        line += (f"\nFor the full data, point data_dir (or ${DATA_DIR_ENV}) at Kaggle's download, or unzip it "
                 f"into {CONVENTIONAL_DIR}/ (see the README).")
    print(line)
    return line


def data_files(source: DataSource) -> dict[str, dict[str, str]]:
    """Each input file with its sha256, for the run record."""
    from toxhelpers.artifacts import sha256_file

    files = {}
    for name in ("train.csv", "test.csv", "test_labels.csv"):
        path = find_file(source.path, name)
        files[path.name] = {"path": str(path), "sha256": sha256_file(path)}
    random_ids = find_optional_file(source.path, RANDOM_IDS_FILE)
    if random_ids is not None:
        files[random_ids.name] = {"path": str(random_ids), "sha256": sha256_file(random_ids)}
    return files


def select_train_rows(train: pd.DataFrame, source: DataSource, train_rows: str = "all") -> pd.DataFrame:
    """``"all"`` rows of train.csv, or only the ``"natural"`` plain random draw listed in
    ``train_random_ids.csv`` (the shared sample has one; its other rows over-represent toxic
    comments). Selecting before the split keeps validation at the same prevalence as training."""
    if train_rows not in TRAIN_ROW_CHOICES:
        raise ValueError(f"train_rows must be one of {TRAIN_ROW_CHOICES}, got {train_rows!r}")
    if train_rows == "all":
        return train
    ids = random_row_ids(source)
    if ids is None:
        raise FileNotFoundError(
            f"train_rows='natural' needs {source.path / RANDOM_IDS_FILE} (ids of a plain random "
            "draw); this data folder has none. A full Kaggle download is already natural: use 'all'."
        )
    selected = train[train[ID_COLUMN].isin(ids)].reset_index(drop=True)
    missing = len(ids) - len(selected)
    if missing:
        raise ValueError(f"{RANDOM_IDS_FILE} lists {missing} id(s) that train.csv does not have")
    return selected
