"""Oversampling the toxic class of the TRAINING split by text augmentation (nlpaug).

The article balances its training data by generating new toxic comments: each new text is an
existing toxic comment with about 10% of its words changed (``aug_p = 0.1``). This module does
that with several nlpaug augmenters, chosen by name (:data:`METHODS`):

* ``word_embedding`` (default): swap words for near neighbours in a real embedding space, the
  bundled encoder's own input word embeddings exported in word2vec format (paris -> france).
* ``spelling``: common human misspellings, from the dictionary that ships with nlpaug.
* ``keyboard``: one-character typos from neighbouring keys (character level).
* ``random_swap`` / ``random_delete``: EDA-style swap of neighbouring words / deletion of words.
* ``sentence_shuffle``: swap neighbouring sentences (sentence level).
* ``contextual``: the article's method, a masked language model (DistilBERT/BERT) proposing
  words in context. It needs PyTorch and a masked-LM checkpoint from the Hugging Face hub, so
  offline it stops with :class:`ContextualUnavailable` instead of producing garbage.

The same input and seed give the same texts: each text is augmented under its own seed derived
from ``(seed, source_id, variant)``, so it does not depend on row order or on how many rows are
generated. Oversampling the training split with these augmenters, and its guards, is in
:mod:`toxhelpers.oversampling`; the word vectors ``word_embedding`` uses, in
:mod:`toxhelpers.word_vectors`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import random
import re
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import toxhelpers.tf_setup  # noqa: F401  (TensorFlow quietly, with Keras 2, before nlpaug imports transformers)
import nlpaug.augmenter.char as nac  # noqa: E402
import nlpaug.augmenter.sentence as nas  # noqa: E402
import nlpaug.augmenter.word as naw  # noqa: E402
from nlpaug.util.text.tokenizer import Tokenizer  # noqa: E402

# --- the methods on offer ---------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    """One augmentation method: its nlpaug family and class, and what it changes."""

    name: str
    family: str
    nlpaug_class: str
    changes: str
    offline: bool


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("word_embedding", "word", "WordEmbsAug",
           "swaps ~aug_p of the content words for one of their nearest neighbours in the bundled "
           "encoder's input word-embedding space", True),
    Method("spelling", "word", "SpellingAug",
           "replaces ~aug_p of the words by a common human misspelling (nlpaug's dictionary)", True),
    Method("keyboard", "character", "KeyboardAug",
           "puts a one-character typo (a neighbouring key) into ~aug_p of the words", True),
    Method("random_swap", "word", "RandomWordAug(action='swap')",
           "swaps ~aug_p of the words with their neighbour (EDA's random swap)", True),
    Method("random_delete", "word", "RandomWordAug(action='delete')",
           "deletes ~aug_p of the words (EDA's random deletion)", True),
    Method("sentence_shuffle", "sentence", "RandomSentAug",
           "swaps ~aug_p of the sentences with a neighbouring sentence", True),
    Method("contextual", "word", "ContextualWordEmbsAug",
           "masks ~aug_p of the words and lets a masked language model (DistilBERT/BERT) fill in "
           "a word that fits the context (the article's method)", False),
)}
OFFLINE_METHODS = tuple(name for name, m in METHODS.items() if m.offline)
DEFAULT_METHOD = "word_embedding"
DEFAULT_CONTEXTUAL_CHECKPOINT = "distilbert-base-uncased"

# How many neighbours each substituting method draws from. Word embeddings: the 5 nearest (past
# that, neighbours drift: stupid -> smarter). Contextual: nlpaug's default, weighted by the
# masked-LM's probabilities.
DEFAULT_TOP_K = {"word_embedding": 5, "contextual": 100}

# nlpaug 1.1.11's "distilbert" model_type raises UnboundLocalError; its "bert" code path loads
# DistilBERT checkpoints fine through AutoModelForMaskedLM.
NLPAUG_MODEL_TYPE = {"bert": "bert", "distilbert": "bert"}
# Weight names that only a checkpoint WITH a masked-LM head has (BERT / DistilBERT).
MASKED_LM_HEAD_PREFIXES = ("cls.predictions.", "vocab_projector.", "vocab_transform.")
PYTORCH_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
WORD_CHARACTER = re.compile(r"\w")


class ContextualUnavailable(RuntimeError):
    """The contextual method cannot run here (no PyTorch, no hub, or no masked-LM head)."""


def check_method(method: str) -> Method:
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    return METHODS[method]


def check_aug_p(aug_p: float) -> float:
    if isinstance(aug_p, bool) or not isinstance(aug_p, (int, float)) or not 0.0 < aug_p <= 1.0:
        raise ValueError(f"aug_p is the share of words to change, expected a number in (0, 1], got {aug_p!r}")
    return float(aug_p)


def method_table() -> pd.DataFrame:
    """The methods as a table: family, nlpaug class, what they change, whether they run offline."""
    return pd.DataFrame([m.__dict__ for m in METHODS.values()]).set_index("name")


# --- building augmenters ----------------------------------------------------------------------


def make_augmenter(method: str = DEFAULT_METHOD, aug_p: float = 0.1, *,
                   artifacts_dir: str | os.PathLike | None = None, encoder: str = "bundled",
                   contextual_checkpoint: str = DEFAULT_CONTEXTUAL_CHECKPOINT,
                   top_k: int | None = None, aug_max: int | None = None) -> Any:
    """An nlpaug augmenter for ``method`` changing about ``aug_p`` of the words of a text, with what
    the method needs: for ``word_embedding`` the word vectors of ``encoder``, exported once and
    cached under ``artifacts_dir``; for ``contextual`` a masked language model. Lesson 2's
    :func:`nlpaug_augmenter` builds the offline ones."""
    check_method(method)
    aug_p = check_aug_p(aug_p)
    top_k = DEFAULT_TOP_K.get(method) if top_k is None else int(top_k)
    if method == "contextual":
        return contextual_augmenter(contextual_checkpoint, aug_p, top_k=top_k, aug_max=aug_max)
    vectors = None
    if method == "word_embedding":
        if artifacts_dir is None:
            raise ValueError("method 'word_embedding' needs artifacts_dir, where it caches the word vectors")
        from toxhelpers.word_vectors import ensure_word_vectors, load_word_vectors

        vectors = load_word_vectors(ensure_word_vectors(artifacts_dir, encoder), top_k=top_k)
    return nlpaug_augmenter(method, aug_p, vectors, aug_max=aug_max)


def nlpaug_augmenter(method: str, aug_p: float, vectors: Any = None, aug_max: int | None = None) -> Any:
    """nlpaug's augmenter for one of the offline methods, changing about ``aug_p`` of a text's words.

    ``vectors``: the word vectors ``word_embedding`` takes a word's neighbours from (their
    ``top_k`` nearest). ``aug_max=None`` lifts nlpaug's default cap of 10 changed words, so that
    aug_p = 0.1 means 10% in long comments too.
    """
    aug_p = check_aug_p(aug_p)
    if method == "word_embedding":
        return naw.WordEmbsAug(model_type="word2vec", model=vectors, action="substitute", aug_p=aug_p,
                               aug_max=aug_max, top_k=vectors.top_k, stopwords=stopwords())
    if method == "spelling":
        augmenter = naw.SpellingAug(aug_p=aug_p, aug_max=aug_max)
        make_spelling_deterministic(augmenter)  # nlpaug lists the misspellings in a random order
        return augmenter
    if method == "keyboard":  # one wrong key per chosen word (a realistic typo), letters only
        return nac.KeyboardAug(aug_word_p=aug_p, aug_word_max=aug_max, aug_char_min=1, aug_char_max=1,
                               include_special_char=False, include_numeric=False, include_upper_case=False)
    if method in ("random_swap", "random_delete"):  # EDA's random swap and random deletion of words
        return naw.RandomWordAug(action=method.split("_")[1], aug_p=aug_p, aug_max=aug_max)
    if method == "sentence_shuffle":  # sentences split at . ! ? (nlpaug's default splitter needs NLTK data)
        return nas.RandomSentAug(mode="neighbor", aug_p=aug_p, aug_max=aug_max, tokenizer=split_sentences)
    raise ValueError(f"nlpaug_augmenter builds the offline methods {list(OFFLINE_METHODS)}, not {method!r}; "
                     "make_augmenter builds 'contextual'")


def split_sentences(text: str) -> list[str]:
    """Sentences split after . ! or ? followed by white space."""
    return [sentence for sentence in SENTENCE_END.split(text) if sentence]


def stopwords() -> set[str]:
    """English function words (scikit-learn's list) in lower, Capitalised and UPPER case.

    Swapping "the" for its embedding neighbours ("an", "of") only breaks grammar, and "not" ->
    "no" can flip a meaning, so word_embedding leaves these words alone. nlpaug compares
    tokens case-sensitively, hence the three spellings.
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return {variant for word in ENGLISH_STOP_WORDS for variant in (word, word.capitalize(), word.upper())}


def make_spelling_deterministic(augmenter: Any) -> None:
    """Sort SpellingAug's candidate lists in place.

    nlpaug builds them with ``list(set(...))``, whose order depends on Python's per-process
    string hashing: without sorting, the same seed picks different misspellings in two runs.
    """
    for candidates in augmenter.model.dict.values():
        candidates.sort()


# --- the contextual (masked-LM) method -----------------------------------------------------------


def contextual_augmenter(checkpoint: str, aug_p: float, top_k: int | None = 100,
                         aug_max: int | None = None) -> Any:
    """nlpaug's ContextualWordEmbsAug on a PyTorch masked-LM checkpoint (the article's method)."""
    folder, model_type = resolve_masked_lm(checkpoint)
    # force_reload: nlpaug caches models by folder *name*, so two checkpoints in folders with
    # the same name would otherwise share one model.
    return naw.ContextualWordEmbsAug(model_path=str(folder), model_type=model_type, action="substitute",
                                     aug_p=aug_p, aug_max=aug_max, top_k=top_k, device="cpu",
                                     force_reload=True)


def contextual_unavailable(reason: str) -> ContextualUnavailable:
    alternatives = ", ".join(OFFLINE_METHODS)
    return ContextualUnavailable(
        f"The 'contextual' method cannot run: {reason}. It needs PyTorch (pip install "
        f"'toxhelpers[contextual]') and a PyTorch masked-language-model checkpoint with its "
        f"masked-LM head: 'distilbert-base-uncased' or 'bert-base-uncased' from the Hugging Face "
        f"hub, or a local folder holding one. Without them, choose an offline method: "
        f"{alternatives} (default: {DEFAULT_METHOD})."
    )


def resolve_masked_lm(checkpoint: str) -> tuple[Path, str]:
    """The local folder of a PyTorch masked-LM checkpoint and nlpaug's model_type for it.

    Raises :class:`ContextualUnavailable` naming the alternatives when torch is missing, the
    hub is unreachable, or the weights have no masked-LM head (the bundled encoder has none:
    predicting words with a randomly initialised head would produce garbage).
    """
    from toxhelpers import pretrained

    if importlib.util.find_spec("torch") is None:
        raise contextual_unavailable("PyTorch is not installed")
    if not isinstance(checkpoint, str) or not checkpoint.strip():
        raise ValueError(f"contextual_checkpoint must be a hub model name or a folder, got {checkpoint!r}")
    folder = Path(checkpoint).expanduser()
    if not folder.is_dir():
        if checkpoint == pretrained.BUNDLED:
            folder = pretrained.bundled_encoder_dir()
        else:
            resolved = pretrained.resolve_checkpoint(checkpoint, announce=False)
            if resolved.source == "bundled fallback":
                raise contextual_unavailable(f"the Hugging Face hub is not reachable, so {checkpoint!r} "
                                             "cannot be downloaded")
            folder = resolved.path
    return folder, masked_lm_model_type(folder)


def masked_lm_model_type(folder: Path) -> str:
    """nlpaug's model_type for a checkpoint folder, after checking it can fill in masked words."""
    config = folder / "config.json"
    if not config.is_file():
        raise contextual_unavailable(f"{folder} has no config.json (not a Hugging Face model folder)")
    model_type = json.loads(config.read_text()).get("model_type")
    if model_type not in NLPAUG_MODEL_TYPE:
        raise contextual_unavailable(f"{folder} holds a {model_type!r} model; supported: "
                                     f"{sorted(NLPAUG_MODEL_TYPE)}")
    weights = next((folder / name for name in PYTORCH_WEIGHT_FILES if (folder / name).is_file()), None)
    if weights is None:
        raise contextual_unavailable(f"{folder} has no PyTorch weights ({' or '.join(PYTORCH_WEIGHT_FILES)}; "
                                     "a TensorFlow-only tf_model.h5 cannot be used by nlpaug)")
    if not any(name.startswith(MASKED_LM_HEAD_PREFIXES) for name in weight_names(weights)):
        raise contextual_unavailable(f"the weights in {folder} have no masked-LM head (an encoder "
                                     "without its word-prediction layer, like the bundled one)")
    return NLPAUG_MODEL_TYPE[model_type]


def weight_names(weights: Path) -> list[str]:
    """Tensor names in a weights file, without loading the tensors."""
    if weights.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(weights), framework="numpy") as handle:
            return list(handle.keys())
    import torch

    return list(torch.load(weights, map_location="cpu", weights_only=True, mmap=True).keys())


# --- augmenting one text, reproducibly -----------------------------------------------------------


def derived_seed(seed: int, *parts: object) -> int:
    """A seed for one text, from the run's seed and the text's identity (stable across runs
    and machines, unlike Python's ``hash``)."""
    digest = hashlib.blake2b(repr((int(seed), *parts)).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


@contextlib.contextmanager
def seeded(seed: int, torch_too: bool = False) -> Iterator[None]:
    """Seed the random generators nlpaug draws from (``random`` and numpy; torch's CPU generator
    too for the masked-LM method) and put the caller's generator states back afterwards.

    Only torch's CPU generator is touched: ``torch.manual_seed`` also queues a CUDA seeding call
    that records a stack trace each time, which costs more than many augmentations.
    """
    python_state, numpy_state = random.getstate(), np.random.get_state()
    torch = sys.modules.get("torch") if torch_too else None
    torch_state = torch.default_generator.get_state() if torch is not None else None
    random.seed(seed)
    np.random.seed(seed)
    if torch is not None:
        torch.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        if torch is not None:
            torch.default_generator.set_state(torch_state)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run numpy's linear algebra on one thread inside the block.

    word_embedding's neighbour search is one small matrix-vector product per word. Several BLAS
    threads gain little on it and, on a busy machine, spin waiting for each other: measured
    here on 2 shared cores, 50 texts/s with all threads against 338 with one.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def uses_torch(augmenter: Any) -> bool:
    return type(augmenter).__name__ == "ContextualWordEmbsAug"


def augment_text(augmenter: Any, text: str, seed: int) -> str:
    """One augmented version of ``text``; the same text and seed always give the same result.

    Empty or white-space-only text comes back as it is (there is nothing to change). nlpaug's
    ``augment()`` returns a list; this returns the string. A result without a single word
    character (empty, or only the "!" left after deleting the one word) falls back to the input
    text, so no row ever ends up as an empty or word-less comment.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not text.strip():
        return text
    with seeded(seed, torch_too=uses_torch(augmenter)), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers' deprecation notes, per call
        result = augmenter.augment(text)
    if isinstance(result, list):
        result = result[0] if result else ""
    if not isinstance(result, str) or (WORD_CHARACTER.search(text) and not WORD_CHARACTER.search(result)):
        return text  # nothing left but punctuation ("IDIOT!" -> "!"): not a comment of that class
    return result


def same_words(a: str, b: str) -> bool:
    """Whether two texts have the same word and punctuation tokens (ignoring spacing).

    nlpaug re-joins tokens with single spaces ("couldn't" -> "couldn ' t"), so a string
    comparison would call a merely re-spaced text "changed".
    """
    return a.split() == b.split() or tokens(a) == tokens(b)


def tokens(text: str) -> list[str]:
    return [token for token in re.split(r"(\W)", text) if token.strip()]


def respace(text: str) -> str:
    """What nlpaug's word and character augmenters do to the parts of a text they leave alone:
    split into word and punctuation tokens, re-join with single spaces ("couldn't" -> "couldn ' t",
    line breaks gone)."""
    return Tokenizer.reverse_tokenizer(Tokenizer.tokenizer(text))


def identical_token_share(tokenizer: Any, texts: Sequence[str], others: Sequence[str]) -> float:
    """Share of text pairs the encoder's tokenizer turns into the very same token ids.

    Used to check that nlpaug's re-spacing is invisible to the model (BERT's tokenizer splits
    off punctuation and ignores spacing), so augmented rows carry no formatting tell-tale.
    """
    if len(texts) != len(others):
        raise ValueError("texts and others must pair up")
    if not len(texts):
        return float("nan")
    from toxhelpers.tokenization import CHUNK_ROWS  # a chunk at a time: the tokenizer's lists are large

    texts, others, same = list(texts), list(others), 0
    for start in range(0, len(texts), CHUNK_ROWS):
        first = tokenizer(texts[start:start + CHUNK_ROWS], add_special_tokens=False)["input_ids"]
        second = tokenizer(others[start:start + CHUNK_ROWS], add_special_tokens=False)["input_ids"]
        same += sum(a == b for a, b in zip(first, second))
    return same / len(texts)


# --- comparing methods ---------------------------------------------------------------------------


def describe_changes(before: str, after: str, limit: int = 6) -> str:
    """The word-level edits from ``before`` to ``after``, e.g. ``big→huge; −monster; +the``."""
    import difflib

    old, new = tokens(before), tokens(after)
    edits = []
    for operation, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if operation == "replace":
            edits.append(f"{' '.join(old[i1:i2])}→{' '.join(new[j1:j2])}")
        elif operation == "delete":
            edits.append(f"−{' '.join(old[i1:i2])}")
        elif operation == "insert":
            edits.append(f"+{' '.join(new[j1:j2])}")
    shown = "; ".join(edits[:limit]) + (f"; … ({len(edits) - limit} more)" if len(edits) > limit else "")
    return shown or "(no change)"


def before_after(augmenters: dict[str, Any], texts: Sequence[str], seed: int = 42) -> pd.DataFrame:
    """One row per (comment, method): the original, the augmented text and the edits made."""
    rows = []
    with one_blas_thread():
        for number, text in enumerate(texts, start=1):
            for method, augmenter in augmenters.items():
                after = augment_text(augmenter, text, derived_seed(seed, "example", number))
                rows.append({"comment": number, "method": method, "before": text, "after": after,
                             "edits": describe_changes(text, after)})
    return pd.DataFrame(rows)


def measure_throughput(augmenter: Any, texts: Sequence[str], seed: int = 42) -> dict[str, float]:
    """Texts per second on ``texts`` (one augmentation each, after one untimed warm-up call)
    and the share of texts actually changed."""
    if not texts:
        return {"texts": 0, "seconds": 0.0, "texts_per_s": float("nan"), "changed_share": float("nan")}
    with one_blas_thread():
        augment_text(augmenter, texts[0], seed)  # first-call set-up (e.g. vector norms) is not throughput
        start = time.perf_counter()
        outputs = [augment_text(augmenter, text, derived_seed(seed, "speed", i)) for i, text in enumerate(texts)]
        seconds = time.perf_counter() - start
    changed = [not same_words(output, text) for output, text in zip(outputs, texts)]
    return {"texts": len(texts), "seconds": seconds, "texts_per_s": len(texts) / seconds,
            "changed_share": float(np.mean(changed))}
