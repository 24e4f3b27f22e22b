"""Lesson 8: ONNX export and int8 quantization of a real classifier, the ONNX-backed scorer, and
the latency helpers.

One small classifier is built per test session from the real bundled encoder, cut to its first
two layers (real weights; export takes seconds instead of a minute), with a head trained for a
few steps on real comments so its outputs spread; it is saved, exported and quantized once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from toxhelpers.tf_setup import tf_keras
from toxhelpers import batches, model, pretrained, scoring, serving, tokenization, training

COMMENTS = ["You are an idiot and everyone knows it.", "Thanks for fixing the citation format.",
            "This edit is vandalism, stop it now!!!", "I moved the paragraph to the history section.",
            "What a pathetic loser you are.", "Good point, I agree with the change.",
            "Shut up, moron.", "The sources are listed below."]
LABELS = np.array([1, 0, 1, 0, 1, 0, 1, 0])
MAX_LENGTH = 24
LONG_COMMENT = "The article history section was reorganised by date and the sources were checked. " * 6 + \
               "You are a pathetic idiot."


@pytest.fixture(scope="module")
def served(bundled_checkpoint, tokenizer, tmp_path_factory) -> dict:
    """A saved two-layer classifier, its Keras model, and its fp32 and int8 ONNX exports."""
    training.seed_everything(7)
    config = pretrained.encoder_config(bundled_checkpoint, 0.0, 0.0)
    config.num_hidden_layers = 2
    encoder = pretrained.load_encoder(bundled_checkpoint, config)
    encoded = tokenization.encode(tokenizer, COMMENTS, MAX_LENGTH)
    features = training.extract_features(encoder, encoded, batch_size=4)["mean"]
    head = model.build_head(encoder.config.hidden_size, [16], 0.0, seed=3)
    head.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=1e-2), loss="binary_crossentropy")
    head.fit(features, LABELS.astype(np.float32), epochs=8, batch_size=8, verbose=0)
    folder = tmp_path_factory.mktemp("served")
    spec = model.ClassifierSpec(pooling="mean", head_sizes=[16], max_length=MAX_LENGTH, threshold=0.45,
                                checkpoint=bundled_checkpoint.describe())
    model.save_classifier(folder / "model", encoder, head, tokenizer, spec)
    classifier = model.build_classifier(encoder, head, "mean")
    fp32 = serving.export_onnx(classifier, folder / "classifier.fp32.onnx")
    int8 = serving.quantize_int8(fp32, folder / "classifier.int8.onnx")
    return {"folder": folder / "model", "classifier": classifier, "encoded": encoded, "fp32": fp32, "int8": int8}


def keras_probabilities(classifier, inputs: dict[str, np.ndarray]) -> np.ndarray:
    return classifier(inputs, training=False).numpy()[:, 0]


@pytest.mark.parametrize("rows, length", [(1, 5), (3, 17), (8, MAX_LENGTH)])
def test_onnx_fp32_reproduces_tensorflow_for_any_batch_and_length(served, rows, length):
    inputs = {name: served["encoded"][name][:rows, :length] for name in batches.INPUT_NAMES}
    expected = keras_probabilities(served["classifier"], inputs)
    assert expected.std() > 0.01 or rows == 1  # the head separates comments: the comparison means something
    np.testing.assert_allclose(serving.OnnxClassifier(served["fp32"])(inputs), expected, atol=1e-5)


def test_int8_model_is_smaller_and_close(served):
    expected = keras_probabilities(served["classifier"], served["encoded"])
    quantized = serving.OnnxClassifier(served["int8"])(served["encoded"])
    assert serving.file_size_mb(served["int8"]) < 0.4 * serving.file_size_mb(served["fp32"])
    assert np.abs(quantized - expected).max() < 0.05
    assert not np.allclose(quantized, expected, atol=1e-6)  # it really is a different, quantized model
    result = serving.agreement(expected, quantized, LABELS, threshold=0.45)
    assert result["max_abs_difference"] == pytest.approx(np.abs(quantized - expected).max(), rel=1e-5)
    assert result["roc_auc_reference"] == 1.0 and result["decisions_changed"] == 0.0  # the head separates these


def test_onnx_scorer_matches_the_tensorflow_scorer_window_for_window(served):
    texts = [*COMMENTS, LONG_COMMENT, ""]
    onnx_scorer = serving.load_onnx_scorer(served["fp32"], served["folder"])
    assert onnx_scorer.threshold == 0.45 and onnx_scorer.max_length == MAX_LENGTH
    np.testing.assert_allclose(onnx_scorer.score(texts), scoring.ToxicityScorer.load(served["folder"]).score(texts),
                               atol=1e-5)
    assert onnx_scorer.classify(texts) == [bool(p >= 0.45) for p in onnx_scorer.score(texts)]


def test_long_comments_are_scored_in_windows_not_truncated(served):
    scorer = serving.load_onnx_scorer(served["fp32"], served["folder"])
    windows = scorer.windows([LONG_COMMENT])
    assert len(windows.owner) >= 4
    per_window = serving.OnnxClassifier(served["fp32"])(windows.encoded)
    truncated = serving.OnnxClassifier(served["fp32"])(tokenization.encode(scorer.tokenizer, [LONG_COMMENT], MAX_LENGTH))
    score = scorer.score([LONG_COMMENT])[0]
    assert score == pytest.approx(per_window.max(), abs=1e-6)
    assert score >= truncated[0] - 1e-6
    last_window = windows.encoded["input_ids"][-1]
    assert "idiot" in scorer.tokenizer.convert_ids_to_tokens(last_window.tolist())  # the end is read


def test_scorer_batch_size_does_not_change_scores(served):
    classifier, tokenizer, spec = model.load_classifier(served["folder"])
    texts = [*COMMENTS, LONG_COMMENT]
    np.testing.assert_allclose(scoring.ToxicityScorer.from_keras(classifier, tokenizer, spec, batch_size=3).score(texts),
                               scoring.ToxicityScorer.from_keras(classifier, tokenizer, spec).score(texts), atol=1e-6)


def test_predict_with_any_backend_equals_keras_batched_prediction(served):
    classifier = served["classifier"]
    np.testing.assert_allclose(
        batches.predict_with(lambda inputs: keras_probabilities(classifier, inputs), served["encoded"], 3, step=8),
        batches.predict(classifier, served["encoded"], batch_size=3)[:, 0], atol=1e-5)


@pytest.mark.parametrize("texts, message", [("a single comment", "single string"), ([1, "two"], "comment 0 is int"),
                                            (None, "got NoneType"), (["ok", b"bytes"], "comment 1 is bytes")])
def test_non_text_input_is_one_clear_error(served, texts, message):
    with pytest.raises(TypeError, match=message):
        serving.load_onnx_scorer(served["int8"], served["folder"]).score(texts)


def test_no_comments_give_no_scores(served):
    assert serving.load_onnx_scorer(served["int8"], served["folder"]).score([]).shape == (0,)


def test_missing_files_are_clear_errors(served, tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no ONNX model"):
        serving.OnnxClassifier(tmp_path / "absent.onnx")
    with pytest.raises(FileNotFoundError, match="no ONNX model"):
        serving.quantize_int8(tmp_path / "absent.onnx", tmp_path / "out.onnx")
    with pytest.raises(FileNotFoundError, match="no saved classifier"):
        serving.load_onnx_scorer(served["fp32"], tmp_path)


def test_latency_table_measures_every_backend_at_every_batch(served):
    backends = {"fp32": serving.OnnxClassifier(served["fp32"]), "int8": serving.OnnxClassifier(served["int8"])}
    inputs = serving.benchmark_inputs(served["encoded"], [1, 4], length=16)
    table = serving.latency_table(backends, inputs, repeats=2, warmup=1, sizes_mb={"fp32": 1.0})
    assert list(table.index) == [(1, "fp32"), (1, "int8"), (4, "fp32"), (4, "int8")]
    assert (table["median_ms"] > 0).all() and (table["length"] == 16).all() and (table["repeats"] == 2).all()
    assert table.loc[(1, "fp32"), "speedup_vs_first"] == 1.0 and table.loc[(4, "fp32"), "size_mb"] == 1.0
    single = serving.latency(backends["int8"], inputs[4], repeats=2, warmup=0)
    assert single["batch"] == 4 and single["repeats"] == 2 and single["examples_per_s"] > 0
    with pytest.raises(ValueError, match="repeats"):
        serving.latency_table(backends, inputs, repeats=0)
    with pytest.raises(ValueError, match="cannot benchmark at 64"):
        serving.benchmark_inputs(served["encoded"], [1], length=64)


def test_agreement_rejects_mismatched_rows():
    with pytest.raises(ValueError, match="shapes differ"):
        serving.agreement(np.zeros(3), np.zeros(4), np.array([0, 1, 0]))
