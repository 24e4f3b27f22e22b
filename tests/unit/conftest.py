"""Fixtures shared by several unit-test files: the real encoder with a few encoded comments, and a
small saved classifier.

They are session-scoped: the encoder and the saved classifier are real (bundled all-MiniLM-L6-v2
weights) and take seconds to build, so each is built once per run, whichever test file asks first.
Tests that train through ``encoder`` change its weights for the tests after them, so no test may
rely on it still holding the pretrained weights (use ``pretrained.load_encoder`` for that).

``tests/conftest.py`` (the shared Jigsaw sample, ``bundled_checkpoint``, ``tokenizer``) applies here
too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# pytest imports every conftest.py outside a package under the module name "conftest", so after
# this file is loaded, ``from conftest import PROJECT_ROOT`` (in tests/ files) may find this module
# instead of tests/conftest.py: it must define the same name, with the same value.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SYNTHETIC_DATA_DIR = PROJECT_ROOT / "tests" / "synthetic_data"

# Comments with their labels for the full-size encoder: obvious insults, polite edits, one long
# comment (truncated at 48 tokens) and one very short one.
ENCODER_COMMENTS = ["You are an idiot and everyone knows it.", "Thanks for fixing the citation format.",
                    "This edit is vandalism, stop it now!!!", "I moved the paragraph to the history section.",
                    "What a pathetic loser you are.", "Good point, I agree with the change.",
                    "word " * 200, "ok"]
ENCODER_LABELS = np.array([1, 0, 1, 0, 1, 0, 0, 0])
ENCODER_MAX_LENGTH = 48

# Comments for the small saved classifier: its head is trained on them so its outputs spread.
SAVED_COMMENTS = ["You are an idiot and everyone knows it.", "Thanks for fixing the citation format.",
                  "This edit is vandalism, stop it now!!!", "I moved the paragraph to the history section.",
                  "What a pathetic loser you are.", "Good point, I agree with the change.",
                  "Shut up, moron.", "The sources are listed below."]
SAVED_LABELS = np.array([1, 0, 1, 0, 1, 0, 1, 0])
SAVED_MAX_LENGTH = 24
SAVED_THRESHOLD = 0.45
# Longer than one 24-token window, with its only insult at the very end.
LONG_COMMENT = "The article history section was reorganised by date and the sources were checked. " * 6 + \
               "You are a pathetic idiot."


@pytest.fixture(scope="session")
def comments() -> list[str]:
    """The comments behind ``encoded`` (a fresh list: a test may change its copy)."""
    return list(ENCODER_COMMENTS)


@pytest.fixture(scope="session")
def comment_labels() -> np.ndarray:
    """The 0/1 labels of ``comments``."""
    return ENCODER_LABELS.copy()


@pytest.fixture(scope="session")
def encoder(bundled_checkpoint):
    """The full bundled encoder with 0.2 dropout, loaded once per run."""
    from toxhelpers import pretrained

    return pretrained.load_encoder(bundled_checkpoint, pretrained.encoder_config(bundled_checkpoint, 0.2, 0.2))


@pytest.fixture(scope="session")
def encoded(tokenizer) -> dict[str, np.ndarray]:
    """``comments`` encoded at 48 tokens."""
    from toxhelpers import tokenization

    return tokenization.encode(tokenizer, ENCODER_COMMENTS, max_length=ENCODER_MAX_LENGTH)


@pytest.fixture(scope="session")
def saved_classifier(bundled_checkpoint, tokenizer, tmp_path_factory) -> dict:
    """A small real classifier, saved with ``model.save_classifier``.

    The bundled encoder cut to its first two layers (real weights; an ONNX export takes seconds
    instead of a minute), with a head trained for a few steps on real comments so its outputs
    spread. Keys: ``folder`` (the saved classifier), ``classifier`` (the Keras model), ``encoded``,
    and the texts and settings it was made with: ``comments``, ``labels``, ``long_comment``,
    ``max_length``, ``threshold``.
    """
    from toxhelpers import model, pretrained, tokenization, training
    from toxhelpers.tf_setup import tf_keras

    training.seed_everything(7)
    config = pretrained.encoder_config(bundled_checkpoint, 0.0, 0.0)
    config.num_hidden_layers = 2
    encoder = pretrained.load_encoder(bundled_checkpoint, config)
    encoded = tokenization.encode(tokenizer, SAVED_COMMENTS, SAVED_MAX_LENGTH)
    features = training.extract_features(encoder, encoded, batch_size=4)["mean"]
    head = model.build_head(encoder.config.hidden_size, [16], 0.0, seed=3)
    head.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=1e-2), loss="binary_crossentropy")
    head.fit(features, SAVED_LABELS.astype(np.float32), epochs=8, batch_size=8, verbose=0)
    folder = tmp_path_factory.mktemp("saved") / "model"
    spec = model.ClassifierSpec(pooling="mean", head_sizes=[16], max_length=SAVED_MAX_LENGTH,
                                threshold=SAVED_THRESHOLD, checkpoint=bundled_checkpoint.describe())
    model.save_classifier(folder, encoder, head, tokenizer, spec)
    return {"folder": folder, "classifier": model.build_classifier(encoder, head, "mean"), "encoded": encoded,
            "comments": list(SAVED_COMMENTS), "labels": SAVED_LABELS.copy(), "long_comment": LONG_COMMENT,
            "max_length": SAVED_MAX_LENGTH, "threshold": SAVED_THRESHOLD}


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="session")
def augmenters(artifacts) -> dict:
    """Every offline augmenter, built once (the word vectors are exported into ``artifacts``)."""
    from toxhelpers import augment

    return {name: augment.make_augmenter(name, 0.1, artifacts_dir=artifacts) for name in augment.OFFLINE_METHODS}


@pytest.fixture(scope="session")
def one_process() -> dict:
    """Six fine-tuning steps of the real encoder in one process, no strategy, batch 8
    (``distributed_steps.py``): what the tf.distribute and Ray agreement tests compare with."""
    import tempfile

    from distributed_steps import finish, start

    with tempfile.TemporaryDirectory(prefix="one-process-") as folder:
        tmp = Path(folder)
        return finish(tmp, ("single", start(tmp, "single", "--batch-size", "8", "--artifacts", str(tmp / "artifacts"))))["single"]
