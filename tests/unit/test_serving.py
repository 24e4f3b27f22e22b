"""Lesson 8: ONNX export and int8 quantization of a real classifier, the ONNX-backed scorer, and
the latency helpers.

The classifier is the small saved one from ``saved_classifier`` (tests/unit/conftest.py); it is
exported and quantized once per module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from interrupts import Interrupted, interrupting
from toxhelpers import batches, resumable_scoring, scoring, serving, tokenization

FULL_LENGTH = 24  # the saved classifier's max_length (checked by ``served``)


@pytest.fixture(scope="module")
def served(saved_classifier, tmp_path_factory) -> dict:
    """``saved_classifier`` plus its fp32 and int8 ONNX exports (keys ``fp32`` and ``int8``)."""
    assert saved_classifier["max_length"] == FULL_LENGTH
    folder = tmp_path_factory.mktemp("served")
    fp32 = serving.export_onnx(saved_classifier["classifier"], folder / "classifier.fp32.onnx")
    int8 = serving.quantize_int8(fp32, folder / "classifier.int8.onnx")
    return {**saved_classifier, "fp32": fp32, "int8": int8}


def keras_probabilities(classifier, inputs: dict[str, np.ndarray]) -> np.ndarray:
    return classifier(inputs, training=False).numpy()[:, 0]


@pytest.mark.parametrize("rows, length", [(1, 5), (3, 17), (8, FULL_LENGTH)])
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
    result = serving.agreement(expected, quantized, served["labels"], threshold=0.45)
    assert result["max_abs_difference"] == pytest.approx(np.abs(quantized - expected).max(), rel=1e-5)
    assert result["roc_auc_reference"] == 1.0 and result["decisions_changed"] == 0.0  # the head separates these


def test_onnx_scorer_matches_the_tensorflow_scorer_window_for_window(served):
    texts = [*served["comments"], served["long_comment"], ""]
    onnx_scorer = serving.load_onnx_scorer(served["fp32"], served["folder"])
    assert onnx_scorer.threshold == 0.45 and onnx_scorer.max_length == FULL_LENGTH
    np.testing.assert_allclose(onnx_scorer.score(texts), scoring.ToxicityScorer.load(served["folder"]).score(texts),
                               atol=1e-5)
    assert onnx_scorer.classify(texts) == [bool(p >= 0.45) for p in onnx_scorer.score(texts)]
    # an open session serves as well as its file (lesson 8 reuses its fp32 session: no second copy)
    session = serving.OnnxClassifier(served["fp32"])
    reusing = serving.load_onnx_scorer(session, served["folder"])
    assert reusing.predict is session
    np.testing.assert_array_equal(reusing.score(texts), onnx_scorer.score(texts))
    with pytest.raises(ValueError, match="threads=2 with a session already open"):
        serving.load_onnx_scorer(session, served["folder"], threads=2)


def test_long_comments_are_scored_in_windows_not_truncated(served):
    scorer = serving.load_onnx_scorer(served["fp32"], served["folder"])
    long_comment = served["long_comment"]
    windows = scorer.windows([long_comment])
    assert len(windows.owner) >= 4
    per_window = serving.OnnxClassifier(served["fp32"])(windows.encoded)
    truncated = serving.OnnxClassifier(served["fp32"])(tokenization.encode(scorer.tokenizer, [long_comment], FULL_LENGTH))
    score = scorer.score([long_comment])[0]
    assert score == pytest.approx(per_window.max(), abs=1e-6)
    assert score >= truncated[0] - 1e-6
    last_window = windows.encoded["input_ids"][-1]
    assert "idiot" in scorer.tokenizer.convert_ids_to_tokens(last_window.tolist())  # the end is read


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


def test_a_reexport_of_the_same_classifier_has_the_same_key_and_another_model_another(served, tmp_path):
    # tf2onnx numbers node names per process, so the bytes of a second export may differ
    again = serving.export_onnx(served["classifier"], tmp_path / "again.onnx")
    assert serving.OnnxClassifier(again).key == serving.OnnxClassifier(served["fp32"]).key
    requantized = serving.quantize_int8(again, tmp_path / "again.int8.onnx")
    assert serving.OnnxClassifier(requantized).key == serving.OnnxClassifier(served["int8"]).key
    assert serving.OnnxClassifier(served["int8"]).key != serving.OnnxClassifier(served["fp32"]).key


def test_an_agreement_scoring_stopped_and_rerun_after_a_reexport_scores_only_the_rest(served, tmp_path):
    """Lesson 8 interrupted in its agreement check: the rerun exports the classifier again, then
    scores only the batches its saves do not hold, and gets what an unstopped scoring gets."""
    encoded = {name: served["encoded"][name] for name in batches.INPUT_NAMES}
    want = batches.predict_with(serving.OnnxClassifier(served["fp32"]), encoded, batch_size=1)
    ran: list[int] = []

    first = serving.OnnxClassifier(served["fp32"])
    with pytest.raises(Interrupted):
        resumable_scoring.ResumableScoring(tmp_path, "serving", save_every=2).predict_with(
            interrupting(first, ran, stop_after=5), encoded, "fp32", first.key, batch_size=1)
    ran.clear()
    rerun = serving.OnnxClassifier(serving.export_onnx(served["classifier"], tmp_path / "rerun.onnx"))
    got = resumable_scoring.ResumableScoring(tmp_path, "serving", save_every=2).predict_with(
        interrupting(rerun, ran), encoded, "fp32", rerun.key, batch_size=1)
    assert len(ran) == len(want) - 4  # two saved parts of two batches were read
    np.testing.assert_allclose(got, want, atol=1e-6)
    # the int8 model's scoring is not served from the fp32 saves
    ran.clear()
    int8 = serving.OnnxClassifier(served["int8"])
    resumable_scoring.ResumableScoring(tmp_path, "serving", save_every=2).predict_with(
        interrupting(int8, ran), encoded, "fp32", int8.key, batch_size=1)
    assert len(ran) == len(want)
