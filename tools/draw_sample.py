"""Draw the small real Jigsaw sample shipped in ``toxhelpers/sample_data/`` (maintainer tool).

The rows come only from the shared sample (``../shared/data/jigsaw-sample``, genuine Kaggle rows in
Kaggle's layout). Training rows are stratified on the six labels and on membership of that
sample's plain random draw (``train_random_ids.csv``), so the shipped training rows keep both the
label mix and a natural-prevalence subset (``train_rows="natural"``); test rows are stratified on
the six labels. The files are written as Kaggle's one-file ``.csv.zip`` archives with a fixed
timestamp, so the same arguments give the same bytes.

    python tools/draw_sample.py --source ../shared/data/jigsaw-sample --train-rows 2000 --test-rows 1000
"""

from __future__ import annotations

import argparse
import hashlib
import io
import zipfile
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

LABELS = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
DESTINATION = Path(__file__).resolve().parents[1] / "toxhelpers" / "sample_data"
ZIP_TIME = (2026, 1, 1, 0, 0, 0)
RARE = 10  # label combinations with fewer rows than this share one stratum


def strata(frame: pd.DataFrame, extra: pd.Series | None = None) -> pd.Series:
    """The six labels as one code per row ("101010"), with ``extra`` appended; codes with fewer
    than ``RARE`` rows share one stratum (a stratified draw needs a few rows of each)."""
    combo = frame[LABELS].astype(int).astype(str).agg("".join, axis=1)
    if extra is not None:
        combo = combo + "|" + extra.astype(str)
    counts = combo.value_counts()
    return combo.where(combo.map(counts) >= RARE, "rare")


def draw(frame: pd.DataFrame, rows: int, groups: pd.Series, seed: int) -> pd.DataFrame:
    kept, _ = train_test_split(frame, train_size=rows, stratify=groups, random_state=seed)
    return kept.sort_index()


def write_zip(frame: pd.DataFrame, path: Path) -> str:
    """``frame`` as ``path`` (``name.csv.zip`` holding ``name.csv``); returns its sha256."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        info = zipfile.ZipInfo(path.name.removesuffix(".zip"), date_time=ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, frame.to_csv(index=False, lineterminator="\n"))
    path.write_bytes(buffer.getvalue())
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="the shared sample's folder")
    parser.add_argument("--train-rows", type=int, required=True)
    parser.add_argument("--test-rows", type=int, required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=DESTINATION)
    args = parser.parse_args()

    read = lambda name: pd.read_csv(args.source / name, dtype={"id": str, "comment_text": str},  # noqa: E731
                                    keep_default_na=False)
    train, test, labels, random_ids = (read(name) for name in
                                       ("train.csv", "test.csv", "test_labels.csv", "train_random_ids.csv"))
    in_random_draw = train["id"].isin(random_ids["id"])
    train = draw(train, args.train_rows, strata(train, in_random_draw), args.seed)
    test_ids = draw(labels, args.test_rows, strata(labels), args.seed)["id"]

    args.out.mkdir(parents=True, exist_ok=True)
    files = {
        "train.csv.zip": train,
        "test.csv.zip": test[test["id"].isin(test_ids)],
        "test_labels.csv.zip": labels[labels["id"].isin(test_ids)],
        "train_random_ids.csv.zip": random_ids[random_ids["id"].isin(train["id"])],
    }
    for name, frame in files.items():
        digest = write_zip(frame.reset_index(drop=True), args.out / name)
        size = (args.out / name).stat().st_size
        print(f"{name:<26} {len(frame):>6,} rows {size / 1e3:>8.1f} kB  sha256 {digest}")
    natural = train[train["id"].isin(random_ids["id"])]
    print(f"train toxic share {train['toxic'].mean():.1%}; natural draw {len(natural):,} rows, "
          f"{natural['toxic'].mean():.1%} toxic; test toxic share {files['test_labels.csv.zip']['toxic'].mean():.1%}")


if __name__ == "__main__":
    main()
