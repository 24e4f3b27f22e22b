"""Unit tests for toxhelpers.word_vectors: exported once, meaningful neighbours."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from augment_samples import AWKWARD, LONG, TEXT, frame, tiny_splits
from toxhelpers import augment, data, oversampling, word_vectors
from toxhelpers.artifacts import sha256_file, write_parquet


def test_word_vectors_are_exported_once_and_have_meaningful_neighbours(artifacts, augmenters):
    from toxhelpers import pretrained

    sha = pretrained.resolve_checkpoint(pretrained.BUNDLED, announce=False).weights_sha256
    path = word_vectors.word_vectors_path(artifacts, sha)
    assert path.is_file()
    stamp = path.stat().st_mtime_ns
    assert word_vectors.ensure_word_vectors(artifacts) == path and path.stat().st_mtime_ns == stamp
    vectors = word_vectors.load_word_vectors(path)
    words = vectors.get_vocab()
    assert 15_000 < len(words) < 30_522 and "paris" in words and "PARIS" in words
    assert not any(w.startswith("##") or w.startswith("[") for w in words)
    assert {"france", "london"} & set(word_vectors.substitution_candidates(vectors, "paris"))
    assert {"stupid", "fool", "fools"} & set(word_vectors.substitution_candidates(vectors, "idiot"))
    assert word_vectors.substitution_candidates(vectors, "IDIOT")[0].isupper()
    assert "editing" not in word_vectors.substitution_candidates(vectors, "edit")  # a form of the same word
