"""Keras 3 + KerasHub (lesson 12): the KerasHub encoder against the transformers one, the import
check that names the fix, the lean ONNX route for a Keras 3 model, and the comparison plumbing.

Parity, measured on this machine: KerasHub's BertBackbone and transformers' TF BERT, both loaded
from the bundled all-MiniLM-L6-v2 folder, give token vectors (real tokens, not padding) within
4.0e-3 of each other on this file's five sentences, 8.9e-3 on 64 comments of the shared sample at
128 tokens. The gap is the GELU: KerasHub computes the tanh approximation, Hugging Face the exact
erf form; with KerasHub's feed-forward activation set to the exact GELU the two agree within
3.3e-6 (float32 rounding). The tests hold them to 1e-2 as shipped and 1e-5 with the exact GELU.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from toxhelpers import keras3
from toxhelpers.artifacts import write_json

SENTENCES = ["Thank you for the careful edit, the sources look good.",
             "Shut up, you pathetic idiot. Nobody wants you here.",
             "I disagree with this change; let's discuss it on the talk page.",
             "ok",
             "Accents and emoji, café 🙂, are tokenized too."]
AS_SHIPPED_TOLERANCE = 1e-2  # measured 4.0e-3 here, 8.9e-3 on 64 real comments (module docstring)
EXACT_GELU_TOLERANCE = 1e-5  # measured 3.3e-6

needs_keras_hub = pytest.mark.skipif(sys.version_info < keras3.KERAS_HUB_PYTHON,
                                     reason="keras-hub 0.32.0 needs Python 3.11 (lesson 12 is skipped on 3.10)")


@pytest.fixture(scope="module")
def encoders():
    """(token ids and mask, transformers' TF encoder, KerasHub's backbone) of the bundled encoder."""
    keras3.check_keras_hub()
    import keras_hub

    from toxhelpers import pretrained, tokenization

    checkpoint = pretrained.resolve_checkpoint(pretrained.BUNDLED, announce=False)
    encoded = tokenization.encode(pretrained.load_tokenizer(checkpoint), SENTENCES, max_length=32)
    return encoded, pretrained.load_encoder(checkpoint), keras_hub.models.BertBackbone.from_preset(str(checkpoint.path))


def keras_hub_vectors(backbone, encoded) -> np.ndarray:
    import keras

    feed = {"token_ids": encoded["input_ids"], "padding_mask": encoded["attention_mask"],
            "segment_ids": np.zeros_like(encoded["input_ids"])}
    return keras.ops.convert_to_numpy(backbone(feed)["sequence_output"])


@needs_keras_hub
def test_keras_hub_encoder_matches_the_transformers_encoder_up_to_the_gelu(encoders, monkeypatch):
    import keras

    encoded, hf_encoder, backbone = encoders
    real = encoded["attention_mask"].astype(bool)
    reference = hf_encoder(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).last_hidden_state.numpy()
    as_shipped = np.abs(keras_hub_vectors(backbone, encoded) - reference)[real].max()
    assert 1e-4 < as_shipped < AS_SHIPPED_TOLERANCE  # not equal: the tanh GELU (if this fails low, KerasHub changed)
    for layer in backbone.transformer_layers:  # the exact GELU, as Hugging Face computes it
        monkeypatch.setattr(layer._feedforward_intermediate_dense, "activation", keras.activations.gelu)
    assert np.abs(keras_hub_vectors(backbone, encoded) - reference)[real].max() < EXACT_GELU_TOLERANCE


@needs_keras_hub
def test_keras_hub_tokenizer_gives_lesson_3s_ids_once_it_strips_accents(encoders):
    import keras
    import keras_hub

    from toxhelpers import pretrained

    encoded, _, _ = encoders
    folder = str(pretrained.resolve_checkpoint(pretrained.BUNDLED, announce=False).path)
    same = {}
    for strip_accents in (False, True):
        tokenizer = keras_hub.models.Tokenizer.from_preset(folder, strip_accents=strip_accents)
        packer = keras_hub.layers.StartEndPacker(sequence_length=32, start_value=tokenizer.start_token_id,
                                                 end_value=tokenizer.end_token_id, pad_value=tokenizer.pad_token_id)
        same[strip_accents] = (keras.ops.convert_to_numpy(packer(tokenizer(SENTENCES))) == encoded["input_ids"]).all(axis=1)
    assert same[True].all()
    assert same[False].tolist() == [True, True, True, True, False]  # "café" keeps its accent


def test_a_broken_tensorflow_text_is_named_with_its_fix(monkeypatch):
    monkeypatch.setattr(keras3, "KERAS_HUB_PYTHON", (3, 0))  # so the check reaches the import on any Python
    monkeypatch.setitem(sys.modules, "tensorflow_text", None)  # what a missing or broken install looks like
    with pytest.raises(ImportError, match=r"tensorflow_text does not import .*install tensorflow-text==2\.21\.1 "
                                          r"\(never 2\.21\.0.*\.\[kerashub\]"):
        keras3.check_keras_hub()


def test_an_older_python_is_told_what_keras_hub_needs(monkeypatch):
    monkeypatch.setattr(keras3, "KERAS_HUB_PYTHON", (99, 0))
    with pytest.raises(ImportError, match=r"keras-hub 0\.32\.0 needs Python 99\.0 or newer; this is Python 3\."):
        keras3.check_keras_hub()


def test_an_encoder_dir_must_have_lesson_3s_vocabulary(tmp_path):
    class Tokenized:
        path = tmp_path / "lesson3"

    Tokenized.path.mkdir()
    (Tokenized.path / "vocab.txt").write_text("[PAD]\nhello\n")
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(FileNotFoundError, match=r"has no config.json: expected a Hugging Face checkpoint folder"):
        keras3.same_vocabulary(other, Tokenized)
    (other / "config.json").write_text('{"model_type": "bert"}')
    (other / "vocab.txt").write_text("[PAD]\nbonjour\n")
    with pytest.raises(ValueError, match=r"does not have the vocabulary .* rerun 03_tokenization.ipynb with checkpoint="):
        keras3.same_vocabulary(other, Tokenized)
    (other / "vocab.txt").write_text("[PAD]\nhello\n")
    assert keras3.same_vocabulary(other, Tokenized) == other


def test_fit_throughput_leaves_the_validation_passes_out():
    assert keras3.fit_examples_per_second(1000, 2, 110.0, 10.0) == 20.0
    with pytest.raises(ValueError, match="fit_seconds > validation_seconds"):
        keras3.fit_examples_per_second(1000, 1, 10.0, 10.0)


def test_lesson_6s_numbers_come_from_its_records(tmp_path):
    write_json({"section": "finetuning", "parameters": {"epochs": 1}, "peak_memory_mb": 2750.0,
                "metrics": {"finetuning.epochs_run": 1, "finetuning.fit_seconds": 110.0,
                            "finetuning.validation_seconds": 10.0}}, tmp_path / "metrics" / "finetuning.json")
    write_json({"validation": {"validation @ 0.5": {"roc_auc": 0.97}}, "test": {"test @ 0.5": {"roc_auc": 0.96}}},
               tmp_path / "finetuned" / "metrics.json")
    numbers = keras3.finetuning_numbers(tmp_path, train_rows=1000)
    assert numbers == {"validation_roc_auc": 0.97, "test_roc_auc": 0.96, "training_examples_per_s": 10.0,
                       "fit_seconds": 110.0, "peak_memory_mb": 2750.0}
    table = keras3.comparison_table(numbers, {**numbers, "validation_roc_auc": 0.975})
    assert table.loc["validation ROC-AUC", "difference"] == pytest.approx(0.005)
    assert (table["difference"].drop("validation ROC-AUC") == 0).all()
    assert keras3.serving_numbers(tmp_path) is None  # lesson 8 has not run here


def test_lesson_6s_numbers_missing_name_the_lesson(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"metrics/finetuning.json does not exist: it is written by 06_finetuning"):
        keras3.finetuning_numbers(tmp_path, train_rows=10)


def test_a_missing_saved_model_names_lesson_12(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"classifier.keras does not exist: it is written by 12_keras_hub.ipynb"):
        keras3.load_classifier(keras3.model_path(tmp_path))


@needs_keras_hub
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_the_lean_onnx_route_exports_lesson_12s_classifier_and_keras_loads_it_back(tmp_path, pooling):
    """A small random KerasHub BERT wired as lesson 12 wires it (keras3.sentence_encoder and
    build_classifier, lesson 4's head read by Keras 3): ONNX fp32 gives its probabilities, and the
    saved .keras file reloads with no code of ours."""
    keras3.check_keras_hub()
    import keras
    import keras_hub

    from toxhelpers import batches, model, serving

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8,
                                             intermediate_dim=16, max_sequence_length=16)
    head = keras.Sequential.from_config(model.build_head(8, [4], 0.1, seed=0).get_config())
    classifier = keras3.build_classifier(keras3.sentence_encoder(backbone, pooling), head)
    rng = np.random.default_rng(0)
    mask = (np.arange(12)[None, :] < rng.integers(2, 13, size=20)[:, None]).astype(np.int32)
    encoded = {"input_ids": rng.integers(1, 50, size=(20, 12)).astype(np.int32) * mask, "attention_mask": mask}
    reference = batches.predict(classifier, encoded)[:, 0]
    padded = {name: np.pad(values, ((0, 0), (0, 4))) for name, values in encoded.items()}  # more padding, same answer
    assert np.abs(batches.predict(classifier, padded, padding="fixed")[:, 0] - reference).max() < 1e-5
    path = serving.export_onnx(classifier, tmp_path / "tiny.onnx")
    assert np.abs(batches.predict_with(serving.OnnxClassifier(path), encoded) - reference).max() < 1e-5
    saved = keras3.model_path(tmp_path)
    saved.parent.mkdir(parents=True)
    classifier.save(saved)
    assert np.abs(batches.predict(keras3.load_classifier(saved), encoded)[:, 0] - reference).max() == 0.0


def test_keras_3_reads_lesson_4s_head_and_its_weights():
    """Lesson 12 trains lesson 4's head itself: its Keras JSON and weights, read by Keras 3, give
    the Keras 2 head's outputs; a head edited as lesson 4 suggests (LayerNormalization) too."""
    import keras

    from toxhelpers import model
    from toxhelpers.tf_setup import tf_keras

    vectors = np.random.default_rng(0).normal(size=(64, 16)).astype("float32")
    edited = tf_keras.Sequential([tf_keras.Input(shape=(16,)), tf_keras.layers.Dense(8, activation="relu"),
                                  tf_keras.layers.LayerNormalization(), tf_keras.layers.Dropout(0.2),
                                  tf_keras.layers.Dense(1, activation="sigmoid", dtype="float32")])
    for keras2_head in (model.build_head(16, [8, 4], 0.2, seed=3), edited):
        head = keras.Sequential.from_config(keras2_head.get_config())
        head.set_weights(keras2_head.get_weights())
        assert [type(layer).__name__ for layer in head.layers] == [type(layer).__name__ for layer in keras2_head.layers]
        assert np.abs(head.predict(vectors, verbose=0) - keras2_head.predict(vectors, verbose=0)).max() < 1e-6


def test_the_keras_3_schedule_is_lesson_6s_at_every_step():
    """keras3.LinearWarmupDecay, in keras.ops, is training.LinearWarmupDecay, in tf, step for step
    (warm-up and decay, a warm-up of 0 steps, a one-step run)."""
    from toxhelpers import training

    for peak, total, warmup in ((5e-5, 97, 9), (1e-3, 10, 0), (2e-5, 1, 0)):
        steps = np.arange(total)
        ours = np.asarray(keras3.LinearWarmupDecay(peak, total, warmup)(steps))
        lesson6 = np.asarray(training.LinearWarmupDecay(peak, total, warmup)(steps))
        assert np.abs(ours - lesson6).max() < 1e-12 and ours.max() == pytest.approx(peak)


@needs_keras_hub
def test_step_log_records_the_rate_each_keras_3_step_used():
    """Keras 3's optimizer.learning_rate is the rate of the step to come; StepLog reports the one
    each step took, as it does for Keras 2."""
    keras3.check_keras_hub()
    import keras

    from toxhelpers import training

    class Halving(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return 0.1 * keras.ops.power(0.5, keras.ops.cast(step, "float32"))

    keras.utils.set_random_seed(0)
    tiny = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1, activation="sigmoid")])
    tiny.compile(optimizer=keras.optimizers.Adam(learning_rate=Halving()), loss="binary_crossentropy")
    log = training.StepLog()
    tiny.fit(np.ones((8, 2), np.float32), np.ones(8, np.float32), batch_size=2, epochs=1, verbose=0, callbacks=[log])
    frame = log.frame()
    assert frame.index.tolist() == [1, 2, 3, 4]
    assert np.allclose(frame["learning_rate"], [0.1, 0.05, 0.025, 0.0125])


def test_probability_agreement_is_one_for_the_same_ranking():
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    agreement = keras3.probability_agreement(scores, scores ** 2)
    assert agreement["spearman"] == pytest.approx(1.0) and 0.9 < agreement["pearson"] < 1.0
    assert isinstance(pd.Series(agreement).sum(), float)
