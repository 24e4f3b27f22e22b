"""Unintended bias: does the classifier flag comments that merely mention an identity?

A toxicity model learns from comments in which identity words ("gay", "muslim", "black") appear
far more often in abuse than elsewhere, so it may learn the word instead of the abuse. Overall
ROC-AUC cannot show this; the metrics of Borkan et al. (2019), used by Kaggle's "Jigsaw Unintended
Bias in Toxicity Classification", can. For each identity term, on rows scored by the model:

* **subgroup AUC**: ROC-AUC on the rows that mention the term (can it rank abuse within them?);
* **BPSN AUC** (background positive, subgroup negative): non-toxic rows that mention the term
  against toxic rows that do not. Low when *mentioning the term* pushes scores up: false alarms;
* **BNSP AUC** (background negative, subgroup positive): toxic rows that mention the term against
  non-toxic rows that do not. Low when the term pushes scores down: missed abuse.

Each metric is summarised over terms by a generalized (power) mean with p = -5, which is pulled
towards the worst terms, and the final bias score is 0.25 x overall AUC + 0.75 x the mean of the
three power means. The false-positive rate per term at the model's threshold says the same thing
in the unit a user feels: the share of harmless sentences flagged.

The measuring set is the identity-phrase templates of conversationai/unintended-ml-bias-analysis
(CC BY 4.0, shipped gzipped in ``toxhelpers/bias_templates/``). :func:`identity_sentences` writes
the *different* sentences lesson 9's mitigation trains on, from our own frames and only train-side
terms, so the templates (and the held-out terms) are never trained on.
"""

from __future__ import annotations

import importlib.resources
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score


ATTRIBUTION = ("Identity-phrase templates: Jigsaw / Conversation AI, unintended-ml-bias-analysis "
               "(CC BY 4.0, https://creativecommons.org/licenses/by/4.0/), copied and gzipped without other changes.")
TEMPLATE_FILE, WORDS_FILE = "en_sentence_templates.csv", "words.csv"
TEMPLATE_COLUMNS, WORD_COLUMNS = ("template", "toxicity", "phrase"), ("type", "subtype", "connotation", "word")
TOXICITY_LABELS = {"nontoxic": 0, "toxic": 1}
POWER = -5.0  # Kaggle's generalized-mean exponent: a low p lets the worst terms dominate
OVERALL_WEIGHT = 0.25
METRICS = ("subgroup_auc", "bpsn_auc", "bnsp_auc")


def templates_dir() -> Path:
    """The copy of the templates shipped inside the package (gzipped CSVs)."""
    return Path(str(importlib.resources.files("toxhelpers") / "bias_templates"))


def _read_csv(folder: Path, name: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """``name`` or ``name.gz`` from ``folder``, with one clear error for a missing file or column."""
    path = next((folder / candidate for candidate in (name, f"{name}.gz") if (folder / candidate).is_file()), None)
    if path is None:
        raise FileNotFoundError(f"{folder} holds neither {name} nor {name}.gz: expected the identity-phrase "
                                "templates of conversationai/unintended-ml-bias-analysis (templates_dir=None: "
                                "the copy shipped with toxhelpers)")
    frame = pd.read_csv(path, keep_default_na=False)
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}: expected {list(columns)}, found {list(frame.columns)}")
    return frame


def load_templates(folder: str | os.PathLike | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(templates with a 0/1 ``label`` column, words) from ``folder`` (None: the shipped copy)."""
    folder = Path(folder) if folder not in (None, "") else templates_dir()
    if not folder.is_dir():
        raise FileNotFoundError(f"templates_dir {folder} is not a folder")
    templates = _read_csv(folder, TEMPLATE_FILE, TEMPLATE_COLUMNS)
    unknown = sorted(set(templates["toxicity"]) - set(TOXICITY_LABELS))
    if unknown:
        raise ValueError(f"{folder / TEMPLATE_FILE}: toxicity must be one of {sorted(TOXICITY_LABELS)}, found {unknown[:5]}")
    templates = templates.assign(label=templates["toxicity"].map(TOXICITY_LABELS).astype(int))
    return templates, _read_csv(folder, WORDS_FILE, WORD_COLUMNS)


def identity_terms(words: pd.DataFrame, connotation: str = "neutral") -> list[str]:
    """The identity terms of ``words.csv`` with that connotation (``"neutral"``; ``"toxic"``: slurs)."""
    chosen = words[(words["type"] == "identity") & (words["connotation"] == connotation)]
    return chosen["word"].str.lower().str.strip().tolist()


def term_pattern(terms: Sequence[str]) -> re.Pattern[str]:
    """One case-insensitive regex for all terms: whole words only (``old`` does not match
    ``older`` or ``bold``), any run of spaces inside a multi-word term, and longer terms tried
    first, so "african american" is one match and not also "african" and "american"."""
    if not terms:
        raise ValueError("no identity terms to match")
    ordered = sorted({term.lower().strip() for term in terms}, key=len, reverse=True)
    words = [r"\s+".join(re.escape(word) for word in term.split()) for term in ordered]
    return re.compile(r"(?<!\w)(?:" + "|".join(words) + r")(?!\w)", re.IGNORECASE)


def match_terms(texts: Sequence[str], terms: Sequence[str]) -> pd.DataFrame:
    """A boolean table, one row per text and one column per term: does the text mention it?"""
    pattern, columns = term_pattern(terms), [term.lower().strip() for term in terms]
    found = np.zeros((len(texts), len(columns)), dtype=bool)
    index = {term: position for position, term in enumerate(columns)}
    for row, text in enumerate(texts):
        for match in pattern.finditer(text):
            found[row, index[" ".join(match.group(0).lower().split())]] = True
    return pd.DataFrame(found, columns=columns)


def split_terms(words: pd.DataFrame, held_out_fraction: float, seed: int = 42) -> tuple[list[str], list[str]]:
    """(train-side terms, held-out terms) among the neutral identity terms: within each subtype
    (sexuality, ethnicity, ...) a seeded ``held_out_fraction`` is held out (at least one per
    subtype with two or more terms), so the mitigation's effect on unseen terms is measurable."""
    if not 0 < held_out_fraction < 1:
        raise ValueError(f"held_out_fraction must be between 0 and 1, got {held_out_fraction}")
    neutral = words[(words["type"] == "identity") & (words["connotation"] == "neutral")]
    rng = np.random.default_rng(seed)
    train, held_out = [], []
    for _, group in neutral.groupby("subtype", sort=True):
        terms = [str(term) for term in rng.permutation(group["word"].str.lower().str.strip().tolist())]
        count = min(max(1, round(held_out_fraction * len(terms))), len(terms) - 1) if len(terms) > 1 else 0
        held_out += terms[:count]
        train += terms[count:]
    return sorted(train), sorted(held_out)


def auc_on(labels: np.ndarray, scores: np.ndarray, rows: np.ndarray) -> float:
    """ROC-AUC on the chosen rows only (NaN when they hold one class only)."""
    labels, scores = np.asarray(labels)[rows], np.asarray(scores, dtype=np.float64)[rows]
    return float(roc_auc_score(labels, scores)) if len(np.unique(labels)) == 2 else float("nan")


def subgroup_auc(labels: np.ndarray, scores: np.ndarray, in_group: np.ndarray) -> float:
    """ROC-AUC on the rows mentioning the term: can the model tell abuse from praise within them?"""
    return auc_on(labels, scores, np.asarray(in_group, dtype=bool))


def bpsn_auc(labels: np.ndarray, scores: np.ndarray, in_group: np.ndarray) -> float:
    """Non-toxic rows mentioning the term against toxic rows not mentioning it: low when a mere
    mention pushes scores up (false alarms)."""
    labels, in_group = np.asarray(labels), np.asarray(in_group, dtype=bool)
    return auc_on(labels, scores, (in_group & (labels == 0)) | (~in_group & (labels == 1)))


def bnsp_auc(labels: np.ndarray, scores: np.ndarray, in_group: np.ndarray) -> float:
    """Toxic rows mentioning the term against non-toxic rows not mentioning it: low when the term
    pulls scores down (missed abuse)."""
    labels, in_group = np.asarray(labels), np.asarray(in_group, dtype=bool)
    return auc_on(labels, scores, (in_group & (labels == 1)) | (~in_group & (labels == 0)))


def power_mean(values: np.ndarray, p: float = POWER) -> float:
    """The generalized mean (mean of v**p) ** (1/p), NaNs ignored. With p = -5 one bad term
    (AUC 0.6 among 0.95s) drags the mean far more than an arithmetic mean would, and a term at
    AUC 0 (every pair ordered wrongly, as a term with few templates can be) makes it 0, its limit."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        raise ValueError("the power mean needs at least one value that is not NaN (a term's AUC is NaN "
                         "when its templates lack a class: with template_rows, keep more templates)")
    if (values < 0).any():
        raise ValueError(f"the power mean is for values >= 0, got {values.min():g}")
    if p < 0 and (values == 0).any():
        return 0.0
    return float(np.mean(values ** p) ** (1.0 / p))


def term_table(labels: np.ndarray, scores: np.ndarray, membership: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Per term: rows, non-toxic rows, the three AUCs, and the false-positive rate at ``threshold``
    on the term's non-toxic rows (the share of harmless sentences flagged). Worst first: highest
    false-positive rate, then lowest BPSN AUC."""
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    rows = {}
    for term in membership.columns:
        in_group = membership[term].to_numpy()
        if not in_group.any():
            continue
        clean = in_group & (labels == 0)
        rows[term] = {"rows": int(in_group.sum()), "non_toxic_rows": int(clean.sum()),
                      "subgroup_auc": subgroup_auc(labels, scores, in_group),
                      "bpsn_auc": bpsn_auc(labels, scores, in_group), "bnsp_auc": bnsp_auc(labels, scores, in_group),
                      "fpr": float(np.mean(scores[clean] >= threshold)) if clean.any() else float("nan")}
    table = pd.DataFrame(rows).T.rename_axis("term")
    return table.astype({"rows": int, "non_toxic_rows": int}).sort_values(["fpr", "bpsn_auc"], ascending=[False, True])


def bias_score(labels: np.ndarray, scores: np.ndarray, table: pd.DataFrame, p: float = POWER,
               overall_weight: float = OVERALL_WEIGHT) -> dict[str, float]:
    """The overall AUC, the power mean of each per-term metric, and the final bias score
    ``overall_weight`` x overall AUC + (1 - ``overall_weight``) x mean of the power means."""
    overall = float(roc_auc_score(np.asarray(labels), np.asarray(scores, dtype=np.float64)))
    means = {f"power_mean_{metric}": power_mean(table[metric], p) for metric in METRICS}
    final = overall_weight * overall + (1 - overall_weight) * float(np.mean(list(means.values())))
    return {"overall_auc": overall, **means, "final_bias_score": final}


def worst_terms(table: pd.DataFrame, count: int = 3) -> list[tuple[str, float]]:
    """The ``count`` terms with the highest false-positive rate, with that rate."""
    return [(term, float(fpr)) for term, fpr in table["fpr"].head(count).items()]


def describe_worst(table: pd.DataFrame, count: int = 3) -> str:
    """``gay 100%, homosexual 98%, queer 95%``: the worst terms in a line."""
    return ", ".join(f"{term} {fpr:.0%}" for term, fpr in worst_terms(table, count))


def plot_terms(tables: dict[str, pd.DataFrame], metric: str = "fpr", title: str = ""):
    """One horizontal bar per term and model, sorted by the first model's ``metric``, the worst
    terms at the top, so the terms the model is worst on are obvious at a glance."""
    import matplotlib.pyplot as plt

    first = next(iter(tables.values()))
    ascending = metric != "fpr"  # low AUCs are bad, high false-positive rates are bad
    order = first[metric].sort_values(ascending=not ascending).index
    frame = pd.DataFrame({name: table[metric].reindex(order) for name, table in tables.items()})
    fig, ax = plt.subplots(figsize=(7, max(4, 0.17 * len(order) * max(1, len(tables) / 2))))
    frame.plot.barh(ax=ax, width=0.8)
    ax.set(title=title, xlabel=metric.replace("_", " "), ylabel="")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: no bar hidden
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------ mitigation

# Our own frames for the mitigation's training sentences. They share neither a frame nor an
# adjective or verb with the evaluation templates (whose adjectives are words.csv's "nice",
# "filthy", ... and verbs "love", "hate", ...), so a better template score is not a memorised one.
NON_TOXIC_FRAMES = (
    "As a {term} person, I found this article useful.",
    "My neighbour is {term} and we often cook dinner together.",
    "Our project welcomes {term} editors and readers.",
    "She is {term} and works as a nurse in our town.",
    "The museum opened an exhibition about {term} history.",
    "He told me he is {term} while we were having lunch.",
    "I grew up with {term} friends at school.",
    "The article should mention {term} communities in this region.",
    "My colleague is {term} and helped me fix the citation.",
    "Many {term} families live on our street.",
    "Thanks for adding the section about {term} writers.",
    "I am {term} and I agree with the proposed merge.",
    "My {term} coworker is a brilliant and patient teacher.",
    "Our {term} neighbours are generous, honest people.",
    "A talented {term} musician played at the festival.",
    "Being {term} and proud of it, she thanked the editors.",
)
TOXIC_FRAMES = (
    "{term} people are worthless scum, shut up.",
    "Shut up, you pathetic {term} loser.",
    "Get lost, {term} trash, nobody wants you here.",
    "All {term} people are brainless parasites.",
    "You {term} freaks make me sick, go away.",
    "Go away, you worthless {term} idiot.",
    "This {term} moron should be banned, what a creep.",
    "{term} scum like you should crawl back under a rock.",
    "Nobody cares what a {term} clown like you thinks, idiot.",
    "Shove your {term} garbage, you pathetic jerk.",
    "Another {term} bigot spewing crap, get lost.",
    "What a sad {term} loser, shut your mouth.",
    "You are a dirty {term} pig and a liar.",
    "Every {term} is a brainless waste of space.",
    "Dumbass {term} trolls like you ruin everything.",
    "Crawl back to your {term} sewer, you worthless rat.",
)


def identity_sentences(terms: Sequence[str], count: int, seed: int = 42,
                       exclude: Sequence[str] = ()) -> pd.DataFrame:
    """``count`` training sentences (columns text, label, term): half non-toxic, half toxic, each
    from our frames filled with ``terms``, drawn without repeats. The toxic half keeps the lesson
    honest: the model must learn "a mention is not abuse", not "a mention means non-toxic".
    ``exclude`` (the evaluation templates' sentences) may not be produced."""
    terms = sorted({term.lower().strip() for term in terms})
    if not terms:
        raise ValueError("no train-side identity terms to write sentences with")
    pools = [[(frame.format(term=term), label, term) for frame in frames for term in terms]
             for label, frames in ((0, NON_TOXIC_FRAMES), (1, TOXIC_FRAMES))]
    half = count // 2
    if count < 2 or half > min(len(pool) for pool in pools):
        raise ValueError(f"count must be between 2 and {2 * min(len(pool) for pool in pools)} "
                         f"({len(terms)} terms x {len(NON_TOXIC_FRAMES)} frames per class), got {count}")
    rng = np.random.default_rng(seed)
    rows = [pool[index] for pool, size in zip(pools, (count - half, half))
            for index in rng.choice(len(pool), size, replace=False)]
    frame = pd.DataFrame(rows, columns=["text", "label", "term"])
    frame["text"] = frame["text"].str[0].str.upper() + frame["text"].str[1:]
    overlap = set(frame["text"].str.lower()) & {text.lower() for text in exclude}
    if overlap:
        raise ValueError(f"{len(overlap)} training sentence(s) are evaluation templates, e.g. {sorted(overlap)[0]!r}")
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def mitigation_mix(train_frame: pd.DataFrame, terms: Sequence[str], replay_rows: int, sentences: int, seed: int,
                   held_out: Sequence[str] = (), exclude: Sequence[str] = ()) -> pd.DataFrame:
    """One mitigation run's training rows (columns text, label, source, term): ``replay_rows``
    seeded rows of the TRAINING split, replayed so the model does not forget the task, plus
    ``sentences`` identity sentences from :func:`identity_sentences` with the train-side ``terms``.
    Each seed draws both afresh, which is what makes runs with different seeds differ (lesson 9
    averages them). Raises if a sentence mentions a ``held_out`` term, so the held-out terms stay
    unseen, or is one of the ``exclude``d evaluation templates."""
    from toxhelpers.data import TARGET_COLUMN, TEXT_COLUMN

    written = identity_sentences(terms, sentences, seed, exclude=exclude)
    if len(held_out):
        # Matched as the metrics match them, among all terms: "african american" is its own term, not "american".
        held = {term.lower().strip() for term in held_out}
        mentioned = match_terms(written["text"].tolist(), sorted(held | {term.lower().strip() for term in terms})).any()
        leaked = sorted(term for term in held if mentioned[term])
        if leaked:
            raise ValueError(f"identity sentences mention held-out term(s) {leaked}: "
                             "the mitigation may use train-side terms only")
    replay = sample_rows(train_frame, replay_rows, seed) if replay_rows else train_frame.iloc[:0]
    replayed = pd.DataFrame({"text": replay[TEXT_COLUMN].to_numpy(), "label": replay[TARGET_COLUMN].to_numpy(),
                             "source": "replayed training row", "term": None})
    return pd.concat([replayed, written.assign(source="identity sentence")[["text", "label", "source", "term"]]],
                     ignore_index=True)


def save_scored_templates(artifacts_dir: str | os.PathLike, texts: Sequence[str], labels: Any, scores: Any,
                          membership: pd.DataFrame) -> Path:
    """The non-toxic templates that mention an identity, with the first term they mention and the
    model's score, most flagged first: what lesson 10 explains with integrated gradients."""
    from toxhelpers.artifacts import artifact_path, write_parquet

    named = membership.any(axis=1).to_numpy() & (np.asarray(labels) == 0)
    frame = pd.DataFrame({"text": np.asarray(texts, dtype=object)[named],
                          "identity": membership.idxmax(axis=1).to_numpy()[named],
                          "probability": np.asarray(scores, dtype=np.float64)[named]})
    frame = frame.sort_values("probability", ascending=False, kind="stable", ignore_index=True)
    return write_parquet(frame, artifact_path(artifacts_dir, "identity_templates"))


def load_scored_templates(artifacts_dir: str | os.PathLike) -> pd.DataFrame:
    from toxhelpers.artifacts import read_parquet, require_artifact

    return read_parquet(require_artifact(artifacts_dir, "identity_templates"))


def sample_rows(frame: pd.DataFrame, rows: int | None, seed: int = 42) -> pd.DataFrame:
    """A seeded sample of ``rows`` rows (all of them when ``rows`` is None or not smaller)."""
    if rows is None or rows >= len(frame):
        return frame.reset_index(drop=True)
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    return frame.sample(n=rows, random_state=seed).reset_index(drop=True)
