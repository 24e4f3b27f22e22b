"""Unit tests for toxhelpers.data: reading Kaggle's layout, bad input, leak-free splits."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from toxhelpers import data

SYNTHETIC_DATA_DIR = Path(__file__).resolve().parents[1] / "synthetic_data"

HEADER = "id,comment_text,toxic,severe_toxic,obscene,threat,insult,identity_hate\n"


def write_kaggle(folder: Path, train_rows: list[str], test_rows: list[tuple[str, str]] | None = None,
                 label_rows: list[str] | None = None) -> data.DataSource:
    """Write a tiny data folder in Kaggle's layout."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.csv").write_text(HEADER + "".join(row + "\n" for row in train_rows))
    test_rows = test_rows if test_rows is not None else [("t1", "hello there"), ("t2", "you idiot")]
    (folder / "test.csv").write_text("id,comment_text\n" + "".join(f"{i},{t}\n" for i, t in test_rows))
    label_rows = label_rows if label_rows is not None else ["t1,0,0,0,0,0,0", "t2,1,0,0,0,1,0"]
    (folder / "test_labels.csv").write_text(
        "id,toxic,severe_toxic,obscene,threat,insult,identity_hate\n" + "".join(r + "\n" for r in label_rows))
    return data.DataSource(folder, "parameter")


def balanced_rows(n_clean: int = 6, n_toxic: int = 4) -> list[str]:
    rows = [f"c{i},a perfectly ordinary comment number {i},0,0,0,0,0,0" for i in range(n_clean)]
    rows += [f"x{i},you are a fool {i},1,0,0,0,1,0" for i in range(n_toxic)]
    return rows


def test_reads_kaggle_layout_and_drops_unscored_test_rows(tmp_path):
    source = write_kaggle(tmp_path, balanced_rows(),
                          test_rows=[("t1", "hi"), ("t2", "idiot"), ("t3", "unscored one")],
                          label_rows=["t1,0,0,0,0,0,0", "t2,1,0,0,0,1,0", "t3,-1,-1,-1,-1,-1,-1"])
    train = data.load_train(source)
    test, unscored = data.load_test(source)
    assert len(train) == 10 and list(train.columns[:2]) == ["id", "comment_text"]
    assert unscored == 1 and sorted(test["id"]) == ["t1", "t2"]
    assert test.set_index("id").loc["t2", "toxic"] == 1


def test_reads_kaggle_zip_files(tmp_path):
    import zipfile

    plain = write_kaggle(tmp_path / "plain", balanced_rows())
    zipped = tmp_path / "zipped"
    zipped.mkdir()
    for name in ("train.csv", "test.csv", "test_labels.csv"):
        with zipfile.ZipFile(zipped / f"{name}.zip", "w") as archive:
            archive.write(plain.path / name, name)
    assert data.load_train(data.DataSource(zipped, "parameter")).equals(data.load_train(plain))


def test_text_that_looks_like_missing_values_is_kept(tmp_path):
    source = write_kaggle(tmp_path, balanced_rows() + ["n1,NA,0,0,0,0,0,0", "n2,null,0,0,0,0,0,0"])
    train = data.load_train(source)
    assert set(train.loc[train["id"].isin(["n1", "n2"]), "comment_text"]) == {"NA", "null"}


def test_missing_file_names_the_file_and_the_layout(tmp_path):
    source = write_kaggle(tmp_path, balanced_rows())
    (tmp_path / "test_labels.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"test_labels\.csv.*train\.csv, test\.csv and test_labels\.csv"):
        data.load_test(source)


def test_missing_columns_are_named(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "train.csv").write_text("id,comment_text,toxic\na,hello,0\n")
    with pytest.raises(ValueError, match=r"train\.csv: missing column\(s\) \['severe_toxic'"):
        data.load_train(data.DataSource(tmp_path, "parameter"))


@pytest.mark.parametrize("text", ['""', '"   "'])
def test_empty_comment_is_an_error_naming_the_file(tmp_path, text):
    source = write_kaggle(tmp_path, balanced_rows() + [f"e1,{text},0,0,0,0,0,0"])
    with pytest.raises(ValueError, match=r"train\.csv: 1 row\(s\) have an empty or missing comment_text \(ids e\.g\. \['e1'\]\)"):
        data.load_train(source)


def test_empty_comment_can_be_dropped_loudly(tmp_path, capsys):
    source = write_kaggle(tmp_path, balanced_rows() + ['e1,"",0,0,0,0,0,0'])
    train = data.load_train(source, on_empty="drop")
    assert "e1" not in set(train["id"]) and len(train) == 10
    assert "Dropped 1 row(s)" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["2", "-1", "yes", ""])
def test_labels_outside_0_1_are_rejected(tmp_path, bad):
    source = write_kaggle(tmp_path, balanced_rows() + [f"b1,some text,{bad},0,0,0,0,0"])
    with pytest.raises(ValueError, match=r"train\.csv: column 'toxic' must hold only 0 or 1"):
        data.load_train(source)


def test_partly_unscored_test_labels_are_rejected(tmp_path):
    source = write_kaggle(tmp_path, balanced_rows(), label_rows=["t1,-1,0,0,0,0,0", "t2,1,0,0,0,1,0"])
    with pytest.raises(ValueError, match="mix -1 with 0/1"):
        data.load_test(source)


def test_test_ids_must_match_between_files(tmp_path):
    source = write_kaggle(tmp_path, balanced_rows(), label_rows=["t1,0,0,0,0,0,0", "t9,1,0,0,0,1,0"])
    with pytest.raises(ValueError, match="must list the same ids"):
        data.load_test(source)


def test_duplicate_ids_are_rejected(tmp_path):
    source = write_kaggle(tmp_path, balanced_rows() + ["c0,again,0,0,0,0,0,0"])
    with pytest.raises(ValueError, match="ids must be present and unique"):
        data.load_train(source)


def test_undecodable_bytes_name_the_file_and_offset(tmp_path):
    source = write_kaggle(tmp_path, balanced_rows())
    raw = (tmp_path / "train.csv").read_bytes().replace(b"ordinary comment number 3", b"ordinary \xff\xfe comment")
    (tmp_path / "train.csv").write_bytes(raw)
    with pytest.raises(ValueError, match=r"train\.csv: the byte at offset \d+ \(line 5\) is not valid UTF-8"):
        data.load_train(source)


def test_a_class_with_fewer_than_two_rows_cannot_be_split(tmp_path):
    frame = data.add_binary_label(data.load_train(write_kaggle(tmp_path, balanced_rows(8, 1))))
    with pytest.raises(ValueError, match=r"class 1 \(toxic\) has 1 row\(s\); a stratified split needs at least 2"):
        data.split_train_validation(frame, 0.2, seed=0)


def test_label_rules():
    frame = pd.DataFrame({"id": ["a", "b", "c"], "comment_text": ["x", "y", "z"],
                          "toxic": [1, 0, 0], "severe_toxic": [0, 0, 0], "obscene": [0, 1, 0],
                          "threat": [0, 0, 0], "insult": [0, 0, 0], "identity_hate": [0, 0, 0]})
    assert data.add_binary_label(frame, "toxic")["label"].tolist() == [1, 0, 0]
    assert data.add_binary_label(frame, "any")["label"].tolist() == [1, 1, 0]
    counts = data.class_counts(frame)
    assert counts.loc["any", "toxic"] == 2 and counts.loc["toxic", "non_toxic"] == 2
    with pytest.raises(ValueError, match="label_rule must be one of"):
        data.add_binary_label(frame, "severe")


def labelled_frame(n_clean: int, n_toxic: int) -> pd.DataFrame:
    labels = [0] * n_clean + [1] * n_toxic
    return pd.DataFrame({"id": [f"r{i}" for i in range(len(labels))],
                         "comment_text": [f"text {i}" for i in range(len(labels))], "label": labels})


def test_split_is_stratified_disjoint_and_seeded():
    frame = labelled_frame(900, 100)
    train, validation = data.split_train_validation(frame, 0.2, seed=1)
    again, _ = data.split_train_validation(frame, 0.2, seed=1)
    other, _ = data.split_train_validation(frame, 0.2, seed=2)
    assert set(train["id"]).isdisjoint(validation["id"]) and len(train) + len(validation) == 1000
    assert validation["label"].mean() == pytest.approx(0.1)
    assert train.equals(again) and not train.equals(other)


def test_undersampling_reaches_the_target_share_and_keeps_every_toxic_row():
    train = labelled_frame(900, 100)
    kept, note = data.undersample_majority(train, 0.2, seed=0)
    assert kept["label"].mean() == pytest.approx(0.2)
    assert set(train.loc[train["label"] == 1, "id"]) <= set(kept["id"])
    assert "Undersampled" in note


def test_undersampling_keeps_a_split_already_above_target():
    train = labelled_frame(600, 400)
    kept, note = data.undersample_majority(train, 0.2, seed=0)
    assert kept.equals(train) and "already 40.0% toxic" in note


def test_locate_data_order(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    assert data.locate_data(search_from=project / "notebooks").is_shipped_sample
    conventional = project / data.CONVENTIONAL_DIR
    conventional.mkdir(parents=True)
    found = data.locate_data(search_from=project / "notebooks")
    assert (found.path, found.origin) == (conventional, "conventional folder")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    assert data.locate_data(search_from=project).origin == data.DATA_DIR_ENV
    assert data.locate_data(project, search_from=project).origin == "parameter"
    with pytest.raises(FileNotFoundError, match="data_dir parameter points to .* not a folder"):
        data.locate_data(tmp_path / "nope")


def test_unscored_test_rows_are_dropped_and_counted():
    source = data.DataSource(SYNTHETIC_DATA_DIR, "parameter")
    labels = pd.read_csv(SYNTHETIC_DATA_DIR / "test_labels.csv")
    test, unscored = data.load_test(source)
    assert unscored == int((labels["toxic"] == -1).sum()) > 0
    assert len(test) == len(labels) - unscored


def test_the_shipped_sample_is_zipped_kaggle_layout_with_a_natural_draw():
    source = data.locate_data(data.sample_data_dir())
    train = data.load_train(source)
    test, unscored = data.load_test(source)
    natural = data.select_train_rows(train, source, "natural")
    assert {path.name for path in data.sample_data_dir().glob("*.zip")} == {
        "train.csv.zip", "test.csv.zip", "test_labels.csv.zip", "train_random_ids.csv.zip"}
    assert unscored == 0 and train["toxic"].nunique() == 2 and test["toxic"].nunique() == 2
    assert 0.05 < natural["toxic"].mean() < 0.15 < train["toxic"].mean()  # natural vs enriched rows
    assert {"train.csv.zip", "test.csv.zip", "test_labels.csv.zip", "train_random_ids.csv.zip"} == set(
        data.data_files(source))


def test_every_shipped_row_is_a_row_of_the_shared_sample(shared_sample):
    """The shipped sample holds genuine Jigsaw rows, drawn from the shared sample and nothing else:
    every row equal, column for column, to the shared sample's row of the same id."""
    shipped, shared = data.locate_data(data.sample_data_dir()), data.DataSource(shared_sample, "parameter")
    for load in (data.load_train, lambda source: data.load_test(source)[0]):
        mine, theirs = load(shipped), load(shared).set_index(data.ID_COLUMN)
        assert mine[data.ID_COLUMN].isin(theirs.index).all()
        pd.testing.assert_frame_equal(mine.set_index(data.ID_COLUMN), theirs.loc[mine[data.ID_COLUMN]])
    natural_ids = data.random_row_ids(shipped)
    assert natural_ids and natural_ids <= data.random_row_ids(shared)
    assert natural_ids == set(data.load_train(shipped)[data.ID_COLUMN]) & data.random_row_ids(shared)


def test_natural_rows_need_the_random_ids_file(tmp_path):
    source = write_kaggle(tmp_path, balanced_rows())
    train = data.load_train(source)
    assert data.select_train_rows(train, source, "all") is train
    with pytest.raises(FileNotFoundError, match="train_rows='natural' needs"):
        data.select_train_rows(train, source, "natural")
    (tmp_path / data.RANDOM_IDS_FILE).write_text("id\nc0\nc1\nx0\n")
    assert sorted(data.select_train_rows(train, source, "natural")["id"]) == ["c0", "c1", "x0"]


def test_shared_sample_natural_rows_are_about_9_percent_toxic(shared_sample):
    source = data.locate_data(shared_sample)
    natural = data.select_train_rows(data.load_train(source), source, "natural")
    assert len(natural) == 6068
    assert natural["toxic"].mean() == pytest.approx(0.094, abs=0.005)


def test_split_paths():
    assert data.split_path("a", "train") == Path("a/data/train.parquet")
    assert data.split_path("a", "train", "balanced") == Path("a/data/train_balanced.parquet")
    with pytest.raises(ValueError, match="split must be one of"):
        data.split_path("a", "dev")
    with pytest.raises(ValueError, match="only the training split has a balanced variant"):
        data.split_path("a", "test", "balanced")


# ------------------------------------------------------------------ issue 12: files that used to slip through


def test_a_test_set_without_both_classes_names_the_labels_file(tmp_path):
    """A header-only or one-class test set used to pass lesson 01 and give NaN scores later."""
    labels_file = tmp_path / "test_labels.csv"
    empty = write_kaggle(tmp_path / "empty", balanced_rows(), test_rows=[], label_rows=[])
    test, _ = data.load_test(empty)
    with pytest.raises(ValueError, match=r"test_labels\.csv: class 0 \(non-toxic\) has 0 row\(s\); a model can only "
                                         r"learn, and be scored, on both classes"):
        data.stratified_sample(data.add_binary_label(test, "toxic"), None, 0, what=empty.path / "test_labels.csv")
    one_class = write_kaggle(tmp_path, balanced_rows(), label_rows=["t1,1,0,0,0,0,0", "t2,1,0,0,0,1,0"])
    test, _ = data.load_test(one_class)
    for rows in (None, 1):  # the full profile and a quick run alike
        with pytest.raises(ValueError, match=rf"{labels_file}: class 0 \(non-toxic\) has 0 row\(s\)"):
            data.stratified_sample(data.add_binary_label(test, "toxic"), rows, 0, what=labels_file)


@pytest.mark.parametrize("n_toxic, rows", [(0, None), (0, 5), (1, 5)])
def test_a_train_class_too_small_names_the_file_for_every_profile(tmp_path, n_toxic, rows):
    """The smoke and demo profiles sample rows: they used to say "the rows to sample from"."""
    source = write_kaggle(tmp_path, balanced_rows(8, n_toxic))
    frame = data.add_binary_label(data.load_train(source))
    with pytest.raises(ValueError, match=rf"{tmp_path / 'train.csv'}: class 1 \(toxic\) has {n_toxic} row\(s\)"):
        data.stratified_sample(frame, rows, 0, what=tmp_path / "train.csv")


def test_an_empty_file_names_the_file(tmp_path):
    source = write_kaggle(tmp_path, balanced_rows())
    (tmp_path / "train.csv").write_bytes(b"")
    with pytest.raises(ValueError, match=rf"{tmp_path / 'train.csv'}: the file is empty \(not even a header row\)"):
        data.load_train(source)


def test_a_bad_zip_names_the_file(tmp_path):
    import zipfile

    source = write_kaggle(tmp_path, balanced_rows())
    (tmp_path / "train.csv").rename(tmp_path / "kept.csv")
    zipped = tmp_path / "train.csv.zip"
    zipped.write_bytes(b"PK\x03\x04 cut short by a failed download")
    with pytest.raises(ValueError, match=rf"{zipped}: not a readable zip archive"):
        data.load_train(source)
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.write(tmp_path / "kept.csv", "train.csv")
        archive.write(tmp_path / "kept.csv", "train (copy).csv")
    with pytest.raises(ValueError, match=rf"{zipped}: holds 2 files \['train.csv', 'train \(copy\).csv'\]"):
        data.load_train(source)


def test_undecodable_byte_is_located_in_the_file_not_in_a_buffer(tmp_path):
    """pandas reports an offset within its read buffer; the message must give the file's own."""
    source = write_kaggle(tmp_path, balanced_rows(3000, 20))
    raw = (tmp_path / "train.csv").read_bytes()
    offset = raw.index(b"number 2500,") + len(b"number ")
    (tmp_path / "train.csv").write_bytes(raw[:offset] + b"\xff" + raw[offset + 1:])
    line = raw[:offset].count(b"\n") + 1
    with pytest.raises(ValueError, match=rf"train\.csv: the byte at offset {offset} \(line {line}\) is not valid UTF-8"):
        data.load_train(source)


def test_first_invalid_utf8_across_chunk_boundaries(tmp_path):
    path = tmp_path / "bytes.csv"
    good = "id,comment_text\nr1,caf\u00e9 \u2014 \U0001F600\n".encode()  # 2-, 3- and 4-byte characters
    path.write_bytes(good * 5 + b"r9,\xe2\x80 broken\n")
    for chunk_size in (1, 2, 3, 7, 1 << 20):
        assert data.first_invalid_utf8(path, chunk_size) == (len(good) * 5 + 3, 11)
    path.write_bytes(good)
    assert data.first_invalid_utf8(path, 3) == (-1, -1)
