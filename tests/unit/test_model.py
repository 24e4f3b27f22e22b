"""The classifier on the real bundled encoder: its head, trainable parameters and spec; saving and
reloading it (on a small random BERT)."""

from __future__ import annotations

import numpy as np
import pytest

from tiny_bert import tiny_encoder
from toxhelpers import batches, model, scoring


def test_encoder_frozen_vs_trainable_parameter_counts(encoder):
    full = model.build_classifier(encoder, model.build_head(encoder.config.hidden_size, [256, 32]), "cls")
    model.set_encoder_trainable(encoder, False)
    frozen = model.parameter_counts(full)
    model.set_encoder_trainable(encoder, True)
    unfrozen = model.parameter_counts(full)
    pooler = 384 * 384 + 384  # BERT's next-sentence pooler: unused, so kept frozen
    assert frozen["trainable"] == 384 * 256 + 256 + 256 * 32 + 32 + 32 + 1
    assert unfrozen["trainable"] == frozen["total"] - pooler == unfrozen["total"] - pooler


def test_saved_model_reloads_and_predicts_identically(tmp_path, encoded, comments, comment_labels, tokenizer,
                                                       bundled_checkpoint):
    """On a small random BERT with the bundled vocabulary (tiny_bert.py): saving and reading back
    the encoder, head, tokenizer and spec is the claim, not pretrained weights (the walkthrough
    checks lesson 6's real model reloaded in lesson 8). On the real encoder it took 39 s in the suite."""
    encoder = tiny_encoder()
    head = model.build_head(encoder.config.hidden_size, [32], 0.2, seed=5)
    full = model.compile_model(model.build_classifier(encoder, head, "mean"), learning_rate=1e-3)
    full.fit(batches.training_dataset(encoded, comment_labels, batch_size=4, padding="bucketed"), epochs=1, verbose=0)
    spec = model.ClassifierSpec(pooling="mean", head_sizes=[32], max_length=48, threshold=0.4,
                                checkpoint=bundled_checkpoint.describe())
    folder = model.save_classifier(tmp_path / "saved", encoder, head, tokenizer, spec)
    reloaded, reloaded_tokenizer, reloaded_spec = model.load_classifier(folder)
    assert reloaded_spec == spec
    np.testing.assert_array_equal(batches.predict(reloaded, encoded), batches.predict(full, encoded))
    scorer = scoring.ToxicityScorer.load(folder)
    assert scorer.threshold == 0.4
    assert scorer.score(comments[:2]).shape == (2,)


def test_missing_saved_model_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved classifier"):
        model.load_classifier(tmp_path)


def test_bad_head_sizes_and_pooling():
    with pytest.raises(ValueError, match=r"list of positive integers like \[256, 32\], got '\[\[32\]\]'"):
        model.build_head(8, "[[32]]")
    with pytest.raises(ValueError, match="pooling must be one of"):
        model.pooling_layer("max")


@pytest.mark.parametrize("content, problem", [
    ('{"pooling": "cls",', r"not valid JSON"),
    ('["cls"]', r"holds list"),
    ('{"pooling": "cls", "maxlength": 64}', r"unknown key\(s\) \['maxlength'\]"),
    ('{"pooling": "max"}', r"pooling must be one of"),
])
def test_malformed_spec_names_the_file(tmp_path, content, problem):
    path = tmp_path / "spec.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=rf"{path}: .*{problem}"):
        model.ClassifierSpec.load(path)


def test_encoder_of_finds_the_encoder_a_classifier_was_built_on(encoder):
    classifier = model.build_classifier(encoder, model.build_head(encoder.config.hidden_size, [8]), "cls")
    assert model.encoder_of(classifier) is encoder


def test_a_head_of_built_in_layers_is_saved_and_read_back_layers_and_all(tmp_path):
    """Lesson 4's head, however a learner builds it from Keras layers, is the head later lessons reload."""
    from toxhelpers.tf_setup import tf_keras

    head = tf_keras.Sequential([tf_keras.Input(shape=(8,)), tf_keras.layers.Dense(4, activation="relu"),
                                tf_keras.layers.LayerNormalization(), tf_keras.layers.Dropout(0.1),
                                tf_keras.layers.Dense(1, activation="sigmoid")], name="head")
    model.write_head(head, tmp_path)
    again = model.read_head(tmp_path)
    assert [type(layer).__name__ for layer in again.layers] == ["Dense", "LayerNormalization", "Dropout", "Dense"]
    vectors = np.random.default_rng(0).normal(size=(3, 8)).astype("float32")
    assert np.array_equal(head(vectors).numpy(), again(vectors).numpy())
    assert model.head_sizes_of(again) == [4]


def test_a_head_whose_json_names_code_is_refused_unread(tmp_path):
    """A Lambda layer's JSON carries Python bytecode: refused, never rebuilt, on write and on read."""
    from toxhelpers.tf_setup import tf_keras

    head = tf_keras.Sequential([tf_keras.Input(shape=(2,)), tf_keras.layers.Lambda(lambda x: x * 2),
                                tf_keras.layers.Dense(1)], name="head")
    with pytest.raises(ValueError, match=r"uses layer class\(es\) \['Lambda'\]"):
        model.write_head(head, tmp_path)
    (tmp_path / model.HEAD_FILE).write_text(head.to_json())
    with pytest.raises(ValueError, match=rf"{tmp_path / model.HEAD_FILE} uses layer class\(es\) \['Lambda'\]"):
        model.read_head(tmp_path)


def test_a_planted_or_changed_file_in_a_saved_classifier_is_refused(saved_classifier, bundled_checkpoint, tmp_path):
    """Issue 22 row 11: the bundled model.safetensors copied beside lesson 6's tf_model.h5 was
    loaded instead (scores moved by up to 0.119); now loading names the file and refuses."""
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(saved_classifier["folder"], folder)
    planted = folder / "encoder" / "model.safetensors"
    shutil.copyfile(bundled_checkpoint.path / "model.safetensors", planted)
    with pytest.raises(ValueError, match=r"encoder/model\.safetensors: a file save_classifier did not write"):
        model.load_classifier(folder)
    with pytest.raises(ValueError, match="a file save_classifier did not write"):
        scoring.ToxicityScorer.load(folder)
    planted.unlink()
    spec = model.ClassifierSpec.load(folder / model.SPEC_FILE)
    assert "encoder/tf_model.h5" in spec.files and "head.weights.h5" in spec.files
    head = folder / "head.weights.h5"
    head.write_bytes(head.read_bytes() + b"\0")
    with pytest.raises(ValueError, match=r"head\.weights\.h5 changed since the classifier was saved"):
        model.load_classifier(folder)


def test_saving_replaces_the_whole_folder(saved_classifier, tmp_path):
    """A save leaves exactly its own files: nothing of an earlier folder survives beside them."""
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(saved_classifier["folder"], folder)
    (folder / "encoder" / "stale.bin").write_bytes(b"old")
    classifier, tokenizer, spec = model.load_classifier(saved_classifier["folder"])
    model.save_classifier(folder, model.encoder_of(classifier), classifier.layers[-1], tokenizer, spec)
    assert not (folder / "encoder" / "stale.bin").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary or old folder left
    model.check_saved_files(folder, model.ClassifierSpec.load(folder / model.SPEC_FILE))
