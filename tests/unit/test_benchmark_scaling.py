"""benchmarks/scaling.py: the synthetic data folders it builds, its resume, and the table it writes.

Nothing here runs ``toxhelpers run``: the folders are built from a tiny Kaggle-layout fixture with
a cheap stand-in perturbation (one test uses the project's real augmenter), and the table is built
from fake report folders shaped like a real ``run.json`` (trimmed from a full run's).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from conftest import PROJECT_ROOT
from toxhelpers import data

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
import benchmark_records  # noqa: E402
import scaling  # noqa: E402

LABELS = list(data.LABEL_COLUMNS)
# Six-label patterns of the fixture's 20 training rows: 12 clean, 8 toxic of three kinds.
TRAIN_PATTERNS = [(0,) * 6] * 12 + [(1, 0, 0, 0, 0, 0)] * 4 + [(1, 0, 1, 0, 1, 0)] * 3 + [(1, 1, 1, 0, 1, 1)]
# test_labels.csv: 6 clean, 2 toxic, 2 never scored (-1, as in Kaggle's file).
TEST_PATTERNS = [(0,) * 6] * 6 + [(1, 0, 0, 0, 1, 0)] * 2 + [(-1,) * 6] * 2
RANDOM_IDS = [f"tr{i:02d}" for i in (0, 2, 4, 6, 8, 10, 12, 14)]  # 6 clean, 2 toxic ("natural" draw)


def tagging(method: str, aug_p: float, seed: int) -> scaling.Perturbation:
    """A stand-in for the augmenter: cheap, deterministic, and visibly seed-dependent."""
    return lambda text, source_id, copy_number: f"{text} [{method} {seed} {source_id} {copy_number}]"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """Kaggle's layout with a few rows: train.csv, test.csv, test_labels.csv, train_random_ids.csv."""
    folder = tmp_path / "source"
    folder.mkdir()
    train = pd.DataFrame([{"id": f"tr{i:02d}", "comment_text": f"comment number {i}, with\na few words \"quoted\"",
                           **dict(zip(LABELS, pattern))} for i, pattern in enumerate(TRAIN_PATTERNS)])
    train.to_csv(folder / "train.csv", index=False)
    ids = [f"te{i:02d}" for i in range(len(TEST_PATTERNS))]
    pd.DataFrame({"id": ids, "comment_text": [f"test comment {i} here" for i in range(len(ids))]}).to_csv(
        folder / "test.csv", index=False)
    pd.DataFrame([{"id": i, **dict(zip(LABELS, p))} for i, p in zip(ids, TEST_PATTERNS)]).to_csv(
        folder / "test_labels.csv", index=False)
    pd.DataFrame({"id": RANDOM_IDS}).to_csv(folder / data.RANDOM_IDS_FILE, index=False)
    return folder


def build(source: Path, folder: Path, train_rows: int, test_rows: int, seed: int = 42) -> dict:
    return scaling.build_folder(source, folder, scaling.Size("t", train_rows, test_rows), seed=seed,
                                method="tagging", make_perturbation=tagging)


def patterns(frame: pd.DataFrame) -> Counter:
    return Counter(frame[LABELS].astype(int).itertuples(index=False, name=None))


def raw(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / name, dtype=str, keep_default_na=False)


def test_a_2x_folder_doubles_every_file_and_keeps_labels_ids_and_the_random_draw(source: Path, tmp_path: Path):
    folder = tmp_path / "2x"
    manifest = build(source, folder, 40, 20)
    found = data.DataSource(folder, "parameter")
    train, (test, unscored) = data.load_train(found), data.load_test(found)  # the lessons' own readers
    assert len(train) == 40 and len(test) == 16 and unscored == 4
    assert patterns(train) == Counter({p: 2 * n for p, n in Counter(TRAIN_PATTERNS).items()})
    assert patterns(test) == Counter({p: 2 * n for p, n in Counter(TEST_PATTERNS).items() if p[0] != -1})
    assert train["id"].is_unique and raw(folder, "test.csv")["id"].is_unique
    assert list(raw(folder, "test.csv")["id"]) == list(raw(folder, "test_labels.csv")["id"])
    copies = train[train["id"].str.endswith("_syn1")]
    assert len(copies) == 20
    sources = train.set_index("id").loc[copies["id"].str.removesuffix("_syn1"), LABELS]
    assert (sources.to_numpy() == copies[LABELS].to_numpy()).all()
    assert copies["comment_text"].iloc[0] == "comment number 0, with\na few words \"quoted\" [tagging 42 tr00 1]"
    natural = data.select_train_rows(train, found, "natural")
    assert sorted(natural["id"]) == sorted(RANDOM_IDS + [f"{i}_syn1" for i in RANDOM_IDS])
    assert manifest["rows"] == {"train.csv": 40, data.RANDOM_IDS_FILE: 16, "test.csv": 20, "test_labels.csv": 20}
    assert not (tmp_path / "2x.partial").exists()


def test_a_target_row_count_keeps_each_stratum_at_its_share(source: Path, tmp_path: Path):
    """The part copy gives its spare rows to the strata closest to a whole row (largest remainder):
    here every stratum ends within half a row of its exact share (any rounding would be within one)."""
    folder = tmp_path / "rows"
    build(source, folder, 47, 13)  # train: the 20 rows, a whole copy, 7 rows of a second; test: +3 rows
    train, labels = raw(folder, "train.csv"), raw(folder, "test_labels.csv")
    assert len(train) == 47 and len(labels) == 13 == len(raw(folder, "test.csv"))
    randoms = set(raw(folder, data.RANDOM_IDS_FILE)["id"])
    strata = Counter((row_id.split("_syn")[0] in RANDOM_IDS, *p)
                     for row_id, p in zip(train["id"], train[LABELS].itertuples(index=False, name=None)))
    source_strata = Counter((f"tr{i:02d}" in RANDOM_IDS, *map(str, p)) for i, p in enumerate(TRAIN_PATTERNS))
    for stratum, count in source_strata.items():
        assert abs(strata[stratum] - count * 47 / 20) <= 0.5, stratum
    assert all(row_id.split("_syn")[0] in RANDOM_IDS for row_id in randoms)
    assert abs(len(randoms) - len(RANDOM_IDS) * 47 / 20) <= 1
    assert train["id"].is_unique and set(train["id"]) >= randoms
    assert {row_id.rsplit("_syn", 1)[1] for row_id in train["id"] if "_syn" in row_id} == {"1", "2"}


def test_the_folder_says_it_is_synthetic_how_it_was_made_and_whose_text_it_is(source: Path, tmp_path: Path):
    build(source, tmp_path / "2x", 40, 20, seed=7)
    readme = (tmp_path / "2x" / "README.md").read_text()
    assert readme.startswith("# SYNTHETIC")
    for needed in ("COST measurement only", "NEVER to measure quality", "`tagging`", "derived_seed(7, 'scaling'",
                   "seed 7", "CC0", "Wikipedia talk pages under CC BY-SA 3.0", str(source)):
        assert needed in readme, needed
    manifest = json.loads((tmp_path / "2x" / scaling.MANIFEST).read_text())
    assert manifest["synthetic"] is True and manifest["request"]["seed"] == 7
    # lesson 1, summary.md and the model card describe such a folder as synthetic, not as Jigsaw data
    described = data.describe_data("data_dir", tmp_path / "2x", 80, 40)
    assert described.startswith("SYNTHETIC rows") and "80 train.csv rows" in described
    assert not data.describe_data("data_dir", source, 40, 20).startswith("SYNTHETIC")


def test_the_same_seed_builds_the_same_bytes_and_another_seed_another_draw(source: Path, tmp_path: Path):
    first, second, other = (build(source, tmp_path / name, 47, 13, seed=seed) and tmp_path / name
                            for name, seed in (("a", 42), ("b", 42), ("c", 1)))
    names = ("train.csv", "test.csv", "test_labels.csv", data.RANDOM_IDS_FILE, "README.md")
    assert all((first / n).read_bytes() == (second / n).read_bytes() for n in names)
    assert set(raw(first, "train.csv")["id"]) != set(raw(other, "train.csv")["id"])  # the part copy's draw


def test_copies_made_by_the_project_augmenter_are_reproducible_and_keep_their_words(source: Path, tmp_path: Path):
    """The real default (random_swap): nothing but the order of a copy's words changes."""
    size = scaling.Size("2x", 40, 20)
    for name in ("a", "b"):
        scaling.build_folder(source, tmp_path / name, size)
    assert (tmp_path / "a" / "train.csv").read_bytes() == (tmp_path / "b" / "train.csv").read_bytes()
    train = raw(tmp_path / "a", "train.csv")
    originals, copies = train.iloc[:20], train.iloc[20:]
    words = lambda text: sorted(re.findall(r"\w+", text.lower()))  # noqa: E731
    assert all(words(a) == words(b) for a, b in zip(originals["comment_text"], copies["comment_text"]))
    assert (originals["comment_text"].to_numpy() != copies["comment_text"].to_numpy()).any()


def kaggle_like(train_rows: int = 100, test_rows: int = 32) -> scaling.Size:
    """Kaggle's shares on the fixture's scale: 10 of 100 training rows toxic (the fixture has 8), 3 of
    the 30 labelled test rows (it has 2; its 2 unscored rows are kept, not copied)."""
    return scaling.Size("k", train_rows, test_rows, scaling.KAGGLE_TRAIN_TOXIC_SHARE, scaling.KAGGLE_TEST_TOXIC_SHARE)


def test_a_kaggle_like_folder_has_kaggles_class_shares_from_the_sources_rows(source: Path, tmp_path: Path):
    folder = tmp_path / "kaggle"
    manifest = scaling.build_folder(source, folder, kaggle_like(), method="tagging", make_perturbation=tagging)
    found = data.DataSource(folder, "parameter")
    train, (test, unscored) = data.load_train(found), data.load_test(found)  # the lessons' own readers
    assert len(train) == 100 and len(test) == 30 and unscored == 2 and len(raw(folder, "test.csv")) == 32
    # The requested shares, within one row (here: exactly the rounded count).
    assert abs(train["toxic"].sum() - 0.0958 * 100) <= 1 and train["toxic"].sum() == 10
    assert abs(test["toxic"].sum() - 0.0952 * 30) <= 1 and test["toxic"].sum() == 3
    # Originals first and unchanged, then copies carrying their source row's six labels.
    original = raw(source, "train.csv")
    assert raw(folder, "train.csv").iloc[:20].equals(original)
    for frame, source_frame in ((train, data.load_train(data.DataSource(source, "parameter"))),
                                (raw(folder, "test_labels.csv"), raw(source, "test_labels.csv"))):
        by_id = source_frame.set_index("id")[LABELS].astype(int)
        sources = frame["id"].str.replace(r"_syn\d+$", "", regex=True)
        assert (frame[LABELS].astype(int).to_numpy() == by_id.loc[sources].to_numpy()).all()
        assert frame["id"].is_unique
    assert list(raw(folder, "test.csv")["id"]) == list(raw(folder, "test_labels.csv")["id"])
    assert sum("_syn" in i for i in raw(folder, "test_labels.csv").query("toxic == '-1'")["id"]) == 0  # not copied
    # The toxic copies keep the toxic rows' label mix: 2 extra toxic rows from the 4/3/1 patterns.
    assert patterns(train) == Counter({(0,) * 6: 90, (1, 0, 0, 0, 0, 0): 5, (1, 0, 1, 0, 1, 0): 4, (1, 1, 1, 0, 1, 1): 1})
    # The whole train.csv is at the natural share: the random draw lists every row.
    assert list(raw(folder, data.RANDOM_IDS_FILE)["id"]) == list(raw(folder, "train.csv")["id"])
    assert data.select_train_rows(train, found, "natural").equals(train)
    assert manifest["shares"] == "set" and manifest["toxic_share"] == {"train.csv": 0.1, "test_labels.csv": 0.1}
    assert manifest["request"]["train_toxic_share"] == scaling.KAGGLE_TRAIN_TOXIC_SHARE
    readme = (folder / "README.md").read_text()
    assert "Class shares: SET" in readme and "train.csv 9.58%" in readme and "rows 9.52%" in readme


def test_a_folder_at_the_sources_shares_says_so_and_is_reused_apart_from_a_kaggle_like_one(source: Path, tmp_path: Path):
    manifest = build(source, tmp_path / "2x", 40, 20)
    assert manifest["shares"] == "source" and "train_toxic_share" not in manifest["request"]
    assert manifest["toxic_share"] == {"train.csv": 0.4, "test_labels.csv": 0.25}
    assert "Class shares: the source's, kept on purpose" in (tmp_path / "2x" / "README.md").read_text()
    root = tmp_path / "data"
    scaling.build_folder(source, root / "k", kaggle_like(), seed=42, method="random_swap", make_perturbation=tagging)
    with pytest.raises(ValueError, match=r"differs in \['test_toxic_share', 'train_toxic_share'\]"):
        scaling.ensure_data(source, root, scaling.Size("k", 100, 32), (20, 10), 42, "random_swap", 0.1)
    assert scaling.ensure_data(source, root, kaggle_like(), (20, 10), 42, "random_swap", 0.1) == root / "k"
    # At the source's own row counts but other shares, the source itself would be wrong: it is built.
    assert not scaling.uses_source(kaggle_like(20, 10), (20, 10)) and scaling.uses_source(scaling.Size("1x", 20, 10), (20, 10))


def test_class_shares_hold_within_one_row_at_any_size_and_cannot_shrink_a_class():
    classes = [1] * 385 + [0] * 615  # the sample's 38.5% toxic
    strata = [("t", i % 3) if c else ("n", i % 5) for i, c in enumerate(classes)]
    for target, share in ((11_184, 0.0958), (2_001, 0.2), (100_003, 0.0952)):
        picked = Counter()
        for copy_number, indices in scaling.share_plan(classes, strata, target, share, (7, 1)):
            picked.update(classes[i] for i in indices)
        toxic = 385 + picked[1]
        assert 385 + 615 + picked[1] + picked[0] == target and abs(toxic - share * target) <= 1, (target, share)
    with pytest.raises(ValueError, match="need 96 toxic rows; the source has 385"):
        list(scaling.share_plan(classes, strata, 1_000, 0.0958, 1))
    with pytest.raises(ValueError, match="between 0 and 1"):
        list(scaling.share_plan(classes, strata, 5_000, 1.0, 1))


def test_it_only_grows_real_data(source: Path, tmp_path: Path):
    with pytest.raises(ValueError, match="below the source"):
        list(scaling.copy_plan(["a", "b", "c"], 2, 42))
    build(source, tmp_path / "2x", 40, 20)
    with pytest.raises(ValueError, match="synthetic copies"):
        build(tmp_path / "2x", tmp_path / "4x", 80, 40)
    with pytest.raises(FileExistsError):
        build(source, tmp_path / "2x", 40, 20)


def test_sizes_are_multiples_of_the_source_or_kaggles_full_files():
    assert scaling.parse_size("2x", 14_268, 2_338) == scaling.Size("2x", 28_536, 4_676)
    kaggle = scaling.parse_size("kaggle", 14_268, 2_338)
    assert (kaggle.train_rows, kaggle.test_rows) == (159_571, 63_978)
    assert (round(kaggle.train_toxic_share * 159_571), round(kaggle.test_toxic_share * 63_978)) == (15_294, 6_090)
    assert f"{kaggle.train_toxic_share:.2%} {kaggle.test_toxic_share:.2%}" == "9.58% 9.52%"
    assert not scaling.parse_size("4x", 14_268, 2_338).shares_set  # the multiples keep the sample's shares
    for bad in ("0.5x", "two", "x", "4"):
        with pytest.raises(ValueError, match="Nx"):
            scaling.parse_size(bad, 10, 10)


def test_a_built_folder_is_reused_only_for_the_same_request(source: Path, tmp_path: Path):
    root = tmp_path / "data"
    size = scaling.Size("2x", 40, 20)
    scaling.build_folder(source, root / "2x", size, seed=42, method="random_swap", make_perturbation=tagging)
    before = (root / "2x" / "train.csv").stat().st_mtime_ns
    assert scaling.ensure_data(source, root, size, (20, 10), 42, "random_swap", 0.1) == root / "2x"
    assert (root / "2x" / "train.csv").stat().st_mtime_ns == before
    with pytest.raises(ValueError, match=r"differs in \['seed'\]"):
        scaling.ensure_data(source, root, size, (20, 10), 43, "random_swap", 0.1)
    assert scaling.ensure_data(source, root, scaling.Size("1x", 20, 10), (20, 10), 42, "random_swap", 0.1) == source


# --- resume and the table, on fake reports shaped like a real run.json --------------------------------

# Trimmed from a real full run's run.json (reports/t2/fullS-f7b): the keys the table reads, and a few it does not.
RUN_JSON = {
    "code": {"git_commit": "f7b53f74737a3e7027fb7d6e7fe48300ffd148ed", "toxhelpers_sha256": "ece43e3b"},
    "config": None, "data_source": {"origin": "parameter", "path": "/data/sample"},
    "description": "Everything in the data with the lessons' default recipe (max_length 128, early stopping).",
    "failure": None, "figures": ["data_labels.png"], "finished_at": "2026-12-06T12:04:18+00:00", "inputs": {},
    "kernel": {"name": "python3", "python_version": "3.11.7"}, "model_card": "model_card.md",
    "notebooks": [
        {"current": True, "failure": None, "name": "01_data.ipynb", "parameters": {"data_dir": "/data/sample"},
         "peak_memory_mb": 363, "reason": "no completed run in this folder", "sections": ["data"], "status": "ran",
         "wall_seconds": 50.0},
        {"current": True, "failure": None, "name": "05_training.ipynb", "parameters": {}, "peak_memory_mb": 1562,
         "reason": "no completed run in this folder", "sections": ["training"], "status": "ran", "wall_seconds": 100.0},
        {"current": True, "failure": None, "name": "09_bias.ipynb", "parameters": {}, "peak_memory_mb": 2913,
         "reason": "no completed run in this folder", "sections": ["bias"], "status": "ran", "wall_seconds": 600.0},
    ],
    "parameters": {"data_dir": "/data/sample"}, "peak_memory_mb": {"kernels": 2912.875, "runner": 269.4},
    "profile": "full", "started_at": "2026-12-06T10:35:35+00:00", "status": "complete", "stopped_by": None,
    "versions": {"python": "3.11.7", "tensorflow": "2.21.0"}, "wall_seconds": 750.0,
}
METRICS = {"data.train_csv_rows": 1000, "data.test_rows_labelled": 200,
           "data.split_counts.train.toxic": 300, "data.split_counts.train.non_toxic": 550}


def fake_report(reports: Path, label: str, times: tuple[float, float, float], peaks: tuple, scale: int,
                statuses: tuple[str, str, str] = ("ran", "ran", "ran")) -> Path:
    report = reports / f"scale-{label}"
    report.mkdir(parents=True)
    run = copy.deepcopy(RUN_JSON)
    for item, wall, peak, status in zip(run["notebooks"], times, peaks, statuses):
        item.update(wall_seconds=wall, peak_memory_mb=peak, status=status)
    (report / "run.json").write_text(json.dumps(run))
    (report / "metrics.json").write_text(json.dumps({key: value * scale for key, value in METRICS.items()}))
    return report


def test_the_table_gives_seconds_per_rows_growth_exponents_and_flags(tmp_path: Path, monkeypatch):
    reports = tmp_path / "reports"
    fake_report(reports, "1x", (50.0, 100.0, 600.0), (363, 1562, 2913), 1)
    # 2x resumed: lesson 5 reused, with the time and peak of the invocation that executed it (as
    # toxhelpers run reports a reused lesson); lesson 1 as in an older report: reused, its peak unknown.
    doubled = fake_report(reports, "2x", (50.0, 400.0, 1200.0), (None, 1600, 3120), 2, ("reused", "reused", "ran"))
    run = json.loads((doubled / "run.json").read_text())
    run["notebooks"][1]["measured_in"] = "earlier run"
    run["notebooks"][2]["peak_memory_cell"] = "cell 26 of 33"  # where toxhelpers run saw lesson 9's peak
    run["notebooks"][2]["memory_rises"] = [["the kernel's start", 180], ["cell 4 of 33", 1400], ["cell 9 of 33", 2950],
                                           ["cell 26 of 33", 3120]]  # and the level each cell that raised it reached
    (doubled / "run.json").write_text(json.dumps(run))
    sizes = [scaling.collect_size(label, reports / f"scale-{label}") for label in ("1x", "2x", "4x")]
    table = scaling.build_table(sizes)
    assert table["row_basis"] == "training_split_rows" and table["rows"] == {"1x": 850, "2x": 1700}
    assert table["sizes"] == ["1x", "2x"] and sizes[2].status == "not run"
    assert table["steps"] == {"1x->2x": {"training_rows": 2.0, "test_rows": 2.0}}
    growth = {name: steps["1x->2x"] for name, steps in table["growth"].items()}
    assert growth == pytest.approx({"01_data.ipynb": 0.0, "05_training.ipynb": 2.0, "09_bias.ipynb": 1.0})
    training = table["lessons"]["05_training.ipynb"]
    assert training["1x"]["seconds_per_1000_rows"] == pytest.approx(100 / 850 * 1000)
    assert (training["2x"]["status"], training["2x"]["peak_memory_mb"], training["2x"]["wall_seconds"]) == (
        "reused", 1600, 400.0)
    first = table["lessons"]["01_data.ipynb"]["2x"]
    assert (first["status"], first["wall_seconds"], first["peak_memory_mb"]) == ("reused", 50.0, None)
    assert table["flags"]["over_memory"] == [{"lesson": "09_bias.ipynb", "size": "2x", "peak_memory_mb": 3120,
                                              "cell": "cell 26 of 33", "rises": run["notebooks"][2]["memory_rises"]}]
    assert table["flags"]["faster_than_linear"] == [{"lesson": "05_training.ipynb", "step": "1x->2x", "exponent": 2.0}]

    monkeypatch.setattr(benchmark_records, "RESULTS_DIR", tmp_path / "results")
    assert scaling.main(["--table-only", "--reports", str(reports), "--sizes", "1x", "2x", "4x",
                         "--date", "2026-12-07"]) == 0
    text = (tmp_path / "results" / "scaling_2026-12-07.md").read_text()
    assert "| 05_training.ipynb | 0.00 | **2.00** |" not in text  # exponents are per step, not per size
    assert "| 05_training.ipynb | **2.00** |" in text
    assert "| 09_bias.ipynb | 2,913 | **3,120** (over 3,000) |" in text
    assert ("- 09_bias.ipynb at 2x: peak 3,120 MB, over 3,000 MB, in cell 26 of 33 (the high-water mark reached "
            "180 MB in the kernel's start, 1,400 MB in cell 4 of 33, 2,950 MB in cell 9 of 33, 3,120 MB in cell 26 of 33)"
            in text)
    assert "| 05_training.ipynb | 1,562 | 1,600 |" in text and "| 01_data.ipynb | 363 |  |" in text
    assert "| 4x | not run |" in text
    assert "Rows grew 1x->2x: training x2.00, test x2.00." in text
    assert "`kaggle` has Kaggle's own shares (9.58% of train.csv, 9.52% of the labelled test rows)" in text
    record = json.loads((tmp_path / "results" / "scaling_2026-12-07.json").read_text())
    assert record["machine"]["cpus"] and record["versions"]["python"]
    assert record["table"]["growth"]["09_bias.ipynb"]["1x->2x"] == pytest.approx(1.0)


def test_the_size_table_says_which_class_shares_each_size_has(source: Path, tmp_path: Path):
    kaggle = {"toxic_share_train": 15_294 / 159_571, "toxic_share_test": 6_090 / 63_978, "shares": "set"}
    assert scaling.shares_cell(kaggle) == "9.58% / 9.52% (set: Kaggle's)"
    assert scaling.shares_cell({"toxic_share_train": 0.3848, "toxic_share_test": 0.4769, "shares": "source"}) == \
        "38.48% / 47.69% (the source's)"
    # A report on a kaggle-like folder whose lesson 1 did not run: the shares come from the folder's manifest.
    scaling.build_folder(source, tmp_path / "k", kaggle_like(), method="tagging", make_perturbation=tagging)
    report = fake_report(tmp_path / "reports", "k", (1.0, 2.0, 3.0), (10, 20, 30), 1)
    run = json.loads((report / "run.json").read_text())
    run["parameters"]["data_dir"] = str(tmp_path / "k")
    (report / "run.json").write_text(json.dumps(run))
    size = scaling.collect_size("k", report)
    assert (size.toxic_share_train, size.toxic_share_test, size.shares, size.synthetic) == (0.1, 0.1, "set", True)
    assert scaling.shares_cell(vars(size)) == "10.00% / 10.00% (set)"


def test_a_report_resumed_without_lesson_1_is_described_by_lesson_1s_own_record(source: Path, tmp_path: Path):
    # `--only 09,...` on a report whose lesson 1 read a synthetic folder: run.json then holds no
    # data_dir (the package's default data is its data_source) and metrics.json no data.* counts
    # (lesson 1's result is not current). Lesson 1's record in the artifacts still says both.
    scaling.build_folder(source, tmp_path / "k", kaggle_like(), method="tagging", make_perturbation=tagging)
    report = fake_report(tmp_path / "reports", "k", (1.0, 2.0, 3.0), (10, 20, 30), 1)
    run = json.loads((report / "run.json").read_text())
    run["parameters"].pop("data_dir", None)
    run["data_source"] = {"origin": "bundled", "path": "/site-packages/toxhelpers/data/sample"}
    (report / "run.json").write_text(json.dumps(run))
    (report / "metrics.json").write_text(json.dumps({"bias.template_rows": 6000}))
    records = report / "artifacts" / "metrics"
    records.mkdir(parents=True)
    (records / "data.json").write_text(json.dumps({"parameters": {"data_dir": str(tmp_path / "k")},
                                                   "metrics": {**METRICS, "data.train_csv_rows": 100}}))
    size = scaling.collect_size("k", report)
    assert (size.data_dir, size.synthetic, size.shares) == (str(tmp_path / "k"), True, "set")
    assert (size.train_csv_rows, size.test_rows, size.training_split_rows) == (100, 200, 850)
    (records / "data.json").unlink()  # without lesson 1's record: the default data, as before
    assert scaling.collect_size("k", report).data_dir == "/site-packages/toxhelpers/data/sample"


def test_a_size_that_finished_with_the_same_command_is_skipped(tmp_path: Path, monkeypatch):
    calls = []

    def fake_launch(command):
        calls.append(command)
        report = Path(command[command.index("--out") + 1])
        fake_report(report.parent, report.name.removeprefix("scale-"), (1.0, 2.0, 3.0), (10, 20, 30), 1)
        return 0

    monkeypatch.setattr(scaling, "launch", fake_launch)
    report = tmp_path / "scale-2x"
    arguments = scaling.run_arguments(tmp_path / "data", report, ["01,05"], ["max_length=64"])
    assert arguments[arguments.index("--only") + 1] == "01,05" and arguments[-2:] == ["-p", "max_length=64"]
    assert scaling.run_size(report, arguments) == 0 and len(calls) == 1
    assert calls[0][:4] == [sys.executable, "-m", "toxhelpers", "run"]
    assert scaling.run_size(report, arguments) == 0 and len(calls) == 1  # finished: skipped
    kept = json.loads(scaling.measured_path(report).read_text())
    assert set(kept) == {"invocations", "completed"}  # the lessons' costs are in run.json
    assert kept["invocations"][0]["exit_status"] == 0 and len(kept["invocations"][0]["load_average"]["before"]) == 3
    assert not scaling.finished(report, arguments[:-2])  # another command: toxhelpers run again (it resumes)


def test_dry_run_builds_and_runs_nothing(source: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setattr(scaling, "launch", lambda command: pytest.fail("dry run ran something"))
    reports = tmp_path / "reports"
    assert scaling.main(["--dry-run", "--source", str(source), "--reports", str(reports),
                         "--sizes", "1x", "2x", "kaggle"]) == 0
    out = capsys.readouterr().out
    assert f"1x: 20 train.csv rows, 10 test rows; toxic share: the source's; data: the real rows in {source}" in out
    assert "2x: 40 train.csv rows, 20 test rows; toxic share: the source's; data: build" in out
    assert "+20 train and +10 test" in out and "--profile full" in out
    assert "kaggle: 159,571 train.csv rows, 63,978 test rows; toxic share: train 9.58%, test 9.52%" in out
    assert not reports.exists()


def test_launch_returns_the_exit_status_of_the_command():
    assert scaling.launch([sys.executable, "-c", "raise SystemExit(3)"]) == 3


def test_the_sizes_run_one_after_another_and_a_failure_stops_the_series(source: Path, tmp_path: Path, monkeypatch):
    launched = []

    def fake_launch(command):
        report = Path(command[command.index("--out") + 1])
        data_dir = command[command.index("--data-dir") + 1]
        launched.append((report.name, data_dir))
        fake_report(report.parent, report.name.removeprefix("scale-"), (1.0, 2.0, 3.0), (10, 20, 30), len(launched))
        return 1 if report.name == "scale-2x" else 0

    monkeypatch.setattr(scaling, "launch", fake_launch)
    monkeypatch.setattr(scaling, "project_perturbation", tagging)
    monkeypatch.setattr(benchmark_records, "RESULTS_DIR", tmp_path / "results")
    reports = tmp_path / "reports"
    argv = ["--source", str(source), "--reports", str(reports), "--sizes", "1x", "2x", "3x", "--date", "2026-12-07"]
    assert scaling.main(argv) == 1
    assert launched == [("scale-1x", str(source)), ("scale-2x", str(reports / "data" / "2x"))]
    assert (reports / "data" / "2x" / "README.md").is_file() and not (reports / "data" / "3x").exists()
    assert "| 3x | not run |" in (tmp_path / "results" / "scaling_2026-12-07.md").read_text()


def test_the_data_folder_is_passed_only_when_lesson_1_is_selected(tmp_path: Path):
    """``toxhelpers run`` refuses a --data-dir that reaches no selected lesson; later lessons alone
    run on the artifacts already in the report folder."""
    def arguments(*only: str) -> list[str]:
        return scaling.run_arguments(tmp_path / "data", tmp_path / "report", only, ())
    assert "--data-dir" in arguments() and "--data-dir" in arguments("01,02") and "--data-dir" in arguments("1")
    later = arguments("09,10", "12")
    assert "--data-dir" not in later and later.count("--only") == 2


def test_a_lesson_stopped_and_run_again_shows_what_its_stopped_run_spent(tmp_path: Path, monkeypatch):
    """A Kaggle-size run outlasts a session: lesson 6 stopped mid-fit, the next invocation resumes
    it. run.json then has only the last run's seconds; the stopped run's are kept in the
    .measured.json beside it, and the table shows both (and flags the stopped run's peak)."""
    calls = iter([(143, ("ran", "interrupted", "not run"), (1.0, 700.0, None), (10, 3100, None)),
                  (0, ("reused", "ran", "ran"), (1.0, 500.0, 3.0), (10, 2900, 30))])

    def fake_launch(command):
        code, statuses, times, peaks = next(calls)
        report = Path(command[command.index("--out") + 1])
        shutil.rmtree(report, ignore_errors=True)
        fake_report(report.parent, report.name.removeprefix("scale-"), times, peaks, 1, statuses)
        run = json.loads((report / "run.json").read_text())
        for item in run["notebooks"]:
            item["measured_in"] = {"reused": "earlier run", "not run": None}.get(item["status"], "this run")
        (report / "run.json").write_text(json.dumps(run))
        return code

    monkeypatch.setattr(scaling, "launch", fake_launch)
    report = tmp_path / "scale-kaggle"
    arguments = scaling.run_arguments(tmp_path / "data", report, [], [])
    assert scaling.run_size(report, arguments) == 143 and scaling.run_size(report, arguments) == 0
    kept = json.loads(scaling.measured_path(report).read_text())
    assert kept["invocations"][0]["lessons"]["05_training.ipynb"]["status"] == "interrupted"
    assert set(kept["invocations"][1]["lessons"]) == {"05_training.ipynb", "09_bias.ipynb"}  # 01 was reused

    training = scaling.collect_size("kaggle", report).lessons["05_training.ipynb"]
    assert (training.wall_seconds, training.peak_memory_mb, training.highest_peak()["peak_memory_mb"]) == (500.0, 2900, 3100)
    assert [attempt["wall_seconds"] for attempt in training.earlier_attempts] == [700.0]
    table = scaling.build_table([scaling.collect_size("kaggle", report)])
    assert table["flags"]["over_memory"] == [{"lesson": "05_training.ipynb", "size": "kaggle",
                                              "peak_memory_mb": 3100, "cell": None, "rises": []}]
    lines = scaling.lesson_markdown(table)
    assert "| 05_training.ipynb | 500.0 (+700.0 s in 1 stopped run) |" in lines
    assert "| 05_training.ipynb | 2,900 (a stopped run: 3,100) |" in lines
    assert "| 09_bias.ipynb | 3.0 |" in lines
