"""The bundled encoder's input word embeddings as word2vec vectors: lesson 2's synonyms.

The ``word_embedding`` augmenter swaps words for near neighbours in a real embedding space. Rather
than download a separate word2vec model, we export the encoder's own input embedding matrix (one
vector per whole word of its vocabulary) once, cache it under ``artifacts_dir`` (the artifact
table's ``word_vectors``, named by the weights' sha256), and load it with nlpaug's word2vec reader,
case-insensitively and without proposing a word's own forms.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toxhelpers.artifacts import artifact_path, atomic_path

WORD_PATTERN = re.compile(r"[a-z]{2,}")  # whole lowercase words: no ##pieces, [unused], digits


def word_vectors_path(artifacts_dir: str | os.PathLike, weights_sha256: str) -> Path:
    """Where the exported vectors of the encoder with these weights are cached."""
    return artifact_path(artifacts_dir, "word_vectors", weights=weights_sha256[:12])


def ensure_word_vectors(artifacts_dir: str | os.PathLike, encoder: str = "bundled") -> Path:
    """The encoder's word vectors in word2vec format, exported once and reused afterwards."""
    from toxhelpers import pretrained

    checkpoint = pretrained.resolve_checkpoint(encoder, announce=False)
    path = word_vectors_path(artifacts_dir, checkpoint.weights_sha256)
    if not path.is_file():
        export_word_vectors(checkpoint.path, path)
    return path


def encoder_word_embeddings(folder: Path) -> tuple[list[str], np.ndarray]:
    """The vocabulary and input word-embedding matrix of a BERT-family checkpoint folder.

    Read straight from ``model.safetensors`` with numpy: no TensorFlow or PyTorch needed.
    """
    from safetensors import safe_open

    weights = folder / "model.safetensors"
    if not weights.is_file() or not (folder / "vocab.txt").is_file():
        raise FileNotFoundError(f"{folder} needs model.safetensors and vocab.txt to export word vectors")
    with safe_open(str(weights), framework="numpy") as handle:
        names = [name for name in handle.keys() if name.endswith("word_embeddings.weight")]
        if len(names) != 1:
            raise ValueError(f"{weights}: expected one '*word_embeddings.weight' tensor, found {names}")
        matrix = handle.get_tensor(names[0])
    vocabulary = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    if len(vocabulary) != matrix.shape[0]:
        raise ValueError(f"{folder}: vocab.txt has {len(vocabulary)} tokens, the embeddings {matrix.shape[0]} rows")
    return vocabulary, matrix


def export_word_vectors(folder: Path, path: str | os.PathLike) -> Path:
    """Write the whole-word rows of an encoder's input embeddings as a word2vec binary file.

    Word pieces (``##ing``), ``[unused]`` and special tokens, digits, punctuation and one-letter
    tokens are left out: WordEmbsAug substitutes whole words. Written atomically.
    """
    from gensim.models import KeyedVectors

    vocabulary, matrix = encoder_word_embeddings(Path(folder))
    keep = [index for index, token in enumerate(vocabulary) if WORD_PATTERN.fullmatch(token)]
    vectors = KeyedVectors(vector_size=matrix.shape[1], count=0)
    vectors.add_vectors([vocabulary[index] for index in keep], matrix[keep].astype(np.float32))
    with atomic_path(path) as tmp:
        vectors.save_word2vec_format(str(tmp), binary=True)
    return Path(path)


class CaseInsensitiveVocabulary(list):
    """The word list nlpaug samples from, with fast, case-insensitive membership tests.

    WordEmbsAug checks ``token in model.get_vocab()`` for every token; on a plain 21,000-word
    list that is a linear scan each time (and misses "IDIOT" in an uncased vocabulary).
    """

    def __init__(self, words: Sequence[str]):
        super().__init__(words)
        self._words = frozenset(words)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and word.lower() in self._words


def match_case(model_word: str, like: str) -> str:
    """``model_word`` written in the case of ``like``: IDIOT -> FOOL, Idiot -> Fool."""
    if len(like) > 1 and like.isupper():
        return model_word.upper()
    if like[:1].isupper():
        return model_word.capitalize()
    return model_word


def same_stem(a: str, b: str) -> bool:
    """Whether two words look like forms of one word (edit/editing, hate/hating, fixing/fixed):
    they share a prefix of 3+ letters that leaves at most 2 letters of the shorter word.

    The nearest neighbours of a word are often its own inflections; swapping those in adds no
    new word and mostly breaks grammar, so word_embedding skips them. The rule also skips a
    few unrelated look-alikes (support/supply), which costs nothing: others remain.
    """
    shared = len(os.path.commonprefix([a, b]))
    return shared >= 3 and shared >= min(len(a), len(b)) - 2


def load_word_vectors(path: str | os.PathLike, top_k: int = 5) -> Any:
    """Word vectors read by nlpaug's own word2vec reader, made case-aware (see
    :class:`CaseInsensitiveVocabulary` and :func:`match_case`)."""
    import toxhelpers.tf_setup  # noqa: F401  (TensorFlow quietly, before nlpaug imports transformers)
    import nlpaug.model.word_embs as nmw

    class EncoderWordVectors(nmw.Word2vec):
        def read(self, file_path: str, max_num_vector: int | None = None) -> None:
            super().read(file_path, max_num_vector)
            self.words = CaseInsensitiveVocabulary(self.words)
            self.neighbours: dict[str, list[str]] = {}

        def predict(self, word: str, n: int = 1) -> list[str]:
            return [match_case(candidate, word) for candidate in self.candidates(word.lower())]

        def candidates(self, word: str) -> list[str]:
            # Comments reuse few words; remembering each word's neighbours saves a search
            # through all vectors for most substitutions.
            if word not in self.neighbours:
                similar = [candidate for candidate, _ in self.model.most_similar(word, topn=4 * self.top_k)]
                other_words = [candidate for candidate in similar if not same_stem(candidate, word)]
                self.neighbours[word] = (other_words or similar)[: self.top_k]
            return self.neighbours[word]

    vectors = EncoderWordVectors(top_k=top_k)
    vectors.read(str(path))
    return vectors


def substitution_candidates(vectors: Any, word: str) -> list[str]:
    """The words word_embedding may put in place of ``word`` (its nearest neighbours that are
    not forms of the word itself)."""
    return vectors.predict(word)
