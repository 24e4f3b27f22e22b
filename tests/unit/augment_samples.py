"""Small comments and splits for the augmentation tests (test_augment, test_oversampling)."""

from __future__ import annotations

import pandas as pd

from toxhelpers import data

TEXT = ("You are a stupid idiot and everybody on this page knows it. Stop editing my article, "
        "you ignorant fool! I will report you to the admins.")
LONG = ("You are an idiot and everybody knows it. Stop reverting my edits! " * 80)[:5000]
AWKWARD = ["", "   ", "\n\t ", "idiot", "IDIOT!", "?!", LONG]


def frame(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    """A split in 01_data's layout from (id, text, label) rows."""
    out = pd.DataFrame(rows, columns=[data.ID_COLUMN, data.TEXT_COLUMN, data.TARGET_COLUMN])
    for column in data.LABEL_COLUMNS:
        out[column] = out[data.TARGET_COLUMN] if column in ("toxic", "insult") else 0
    out = out[[data.ID_COLUMN, data.TEXT_COLUMN, *data.LABEL_COLUMNS, data.TARGET_COLUMN]]
    return out.astype({data.ID_COLUMN: "string", data.TEXT_COLUMN: "string",
                       **{c: "int8" for c in (*data.LABEL_COLUMNS, data.TARGET_COLUMN)}})


def tiny_splits() -> dict[str, pd.DataFrame]:
    toxic = ["you are a stupid idiot and a fool", "shut up you ignorant moron, nobody likes you",
             "go to hell. you are a pathetic loser", "what a dumb and useless editor you are"]
    clean = [f"thanks for fixing the article about paris number {i}" for i in range(10)]
    train = frame([(f"t{i}", text, 1) for i, text in enumerate(toxic)]
                  + [(f"c{i}", text, 0) for i, text in enumerate(clean)])
    validation = frame([("v0", "you idiot", 1), ("v1", "nice work on the page", 0)])
    test = frame([("x0", "moron", 1), ("x1", "see the talk page", 0)])
    return {"train": train, "validation": validation, "test": test}
