"""The classifier on the real bundled encoder: head transplant, padding invariance, save/reload,
scoring of new comments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toxhelpers import batches, model, pretrained, scoring, tokenization, training

COMMENTS = ["You are an idiot and everyone knows it.", "Thanks for fixing the citation format.",
            "This edit is vandalism, stop it now!!!", "I moved the paragraph to the history section.",
            "What a pathetic loser you are.", "Good point, I agree with the change.",
            "word " * 200, "ok"]
LABELS = np.array([1, 0, 1, 0, 1, 0, 0, 0])


@pytest.fixture(scope="module")
def encoder(bundled_checkpoint):
    return pretrained.load_encoder(bundled_checkpoint, pretrained.encoder_config(bundled_checkpoint, 0.2, 0.2))


@pytest.fixture(scope="module")
def encoded(tokenizer):
    return tokenization.encode(tokenizer, COMMENTS, max_length=48)


@pytest.mark.parametrize("pooling", model.POOLINGS)
def test_head_trained_on_cached_features_drops_into_full_model(encoder, encoded, pooling):
    """Training on cached pooled vectors, then placing the same head on the encoder, must give
    the same probabilities as the head on the cached vectors."""
    features = training.extract_features(encoder, encoded, batch_size=3)
    head = model.build_head(encoder.config.hidden_size, [16], 0.2, seed=1)
    history = training.fit_head(head, features[pooling], LABELS, features[pooling], LABELS,
                                learning_rate=1e-2, epochs=3, batch_size=4)
    assert len(history) >= 1
    on_features = head.predict(features[pooling], verbose=0)[:, 0]
    full = model.build_classifier(encoder, head, pooling)
    on_text = batches.predict(full, encoded, batch_size=3)[:, 0]
    np.testing.assert_allclose(on_text, on_features, atol=1e-5)
    assert on_features.std() > 0  # the head produces distinct outputs: the comparison means something


def test_bucketed_and_fixed_padding_predict_the_same(encoder, encoded):
    full = model.build_classifier(encoder, model.build_head(encoder.config.hidden_size), "cls")
    fixed = batches.predict(full, encoded, batch_size=3, padding="fixed")
    bucketed = batches.predict(full, encoded, batch_size=3, padding="bucketed", step=8)
    np.testing.assert_allclose(bucketed, fixed, atol=1e-5)


def test_encoder_frozen_vs_trainable_parameter_counts(encoder):
    full = model.build_classifier(encoder, model.build_head(encoder.config.hidden_size, [256, 32]), "cls")
    model.set_encoder_trainable(encoder, False)
    frozen = model.parameter_counts(full)
    model.set_encoder_trainable(encoder, True)
    unfrozen = model.parameter_counts(full)
    pooler = 384 * 384 + 384  # BERT's next-sentence pooler: unused, so kept frozen
    assert frozen["trainable"] == 384 * 256 + 256 + 256 * 32 + 32 + 32 + 1
    assert unfrozen["trainable"] == frozen["total"] - pooler == unfrozen["total"] - pooler


def test_saved_model_reloads_and_predicts_identically(tmp_path, encoder, encoded, tokenizer, bundled_checkpoint):
    head = model.build_head(encoder.config.hidden_size, [32], 0.2, seed=5)
    full = model.compile_model(model.build_classifier(encoder, head, "mean"), learning_rate=1e-3)
    full.fit(batches.training_dataset(encoded, LABELS, batch_size=4, padding="bucketed"), epochs=1, verbose=0)
    spec = model.ClassifierSpec(pooling="mean", head_sizes=[32], max_length=48, threshold=0.4,
                                checkpoint=bundled_checkpoint.describe())
    folder = model.save_classifier(tmp_path / "saved", encoder, head, tokenizer, spec)
    reloaded, reloaded_tokenizer, reloaded_spec = model.load_classifier(folder)
    assert reloaded_spec == spec
    np.testing.assert_array_equal(batches.predict(reloaded, encoded), batches.predict(full, encoded))
    scorer = scoring.ToxicityScorer.load(folder)
    assert scorer.threshold == 0.4
    assert scorer.score(COMMENTS[:2]).shape == (2,)


def test_padding_throughput_puts_the_weights_back(encoder, encoded):
    full = model.compile_model(model.build_classifier(encoder, model.build_head(encoder.config.hidden_size, [8]), "cls"),
                               learning_rate=1e-3)
    before = full.get_weights()
    speed = training.padding_throughput(full, encoded, LABELS, batch_size=4, timed_batches=1)
    assert speed["fixed"] > 0 and speed["bucketed"] > 0
    assert all(np.array_equal(a, b) for a, b in zip(before, full.get_weights()))


def test_missing_saved_model_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved classifier"):
        model.load_classifier(tmp_path)


def test_bad_head_sizes_and_pooling():
    with pytest.raises(ValueError, match=r"list of positive integers like \[256, 32\], got '\[\[32\]\]'"):
        model.build_head(8, "[[32]]")
    with pytest.raises(ValueError, match="pooling must be one of"):
        model.pooling_layer("max")


def test_choose_head_takes_the_article_head_or_the_grid_winner():
    grid = pd.DataFrame([{"pooling": "mean", "learning_rate": 1e-3, "head_sizes": [128], "val_roc_auc": 0.96},
                         {"pooling": "cls", "learning_rate": 5e-5, "head_sizes": [256, 32], "val_roc_auc": 0.92}])
    assert training.choose_head(grid, "grid") == {"pooling": "mean", "learning_rate": 1e-3, "head_sizes": [128]}
    article = training.choose_head(grid, "article")
    assert article == {"pooling": "cls", "learning_rate": 5e-5, "head_sizes": [256, 32]}
    article["head_sizes"].append(1)  # the caller's copy: the module's recipe stays as it is
    assert training.ARTICLE_HEAD["head_sizes"] == [256, 32]
    with pytest.raises(ValueError, match=r"head_choice must be one of \('article', 'grid'\), got 'best'"):
        training.choose_head(grid, "best")
    with pytest.raises(ValueError, match="needs at least one trained grid configuration"):
        training.choose_head(grid.iloc[:0], "grid")


def test_long_comments_are_scored_in_windows_covering_every_token(tokenizer):
    text = " ".join(f"w{i}" for i in range(300))
    pieces = tokenizer(text, add_special_tokens=False)["input_ids"]
    windows = scoring.token_windows(tokenizer, [text, "short one"], max_length=64, stride=16)
    assert (windows.owner == 0).sum() > 1 and (windows.owner == 1).sum() == 1
    covered = set()
    for row in np.flatnonzero(windows.owner == 0):
        ids = windows.encoded["input_ids"][row][windows.encoded["attention_mask"][row] == 1]
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id and len(ids) <= 64
        covered.update(ids[1:-1].tolist())
    assert set(pieces) <= covered


def test_scorer_takes_the_most_toxic_window(encoder, tokenizer):
    """A long comment whose only toxic words come after the first window is still caught."""
    head = model.build_head(encoder.config.hidden_size, [], 0.0)
    full = model.build_classifier(encoder, head, "mean")
    scorer = scoring.ToxicityScorer.from_keras(full, tokenizer, model.ClassifierSpec(pooling="mean", head_sizes=[], max_length=32))
    filler = "the article cites a source about the history of the town. " * 10
    text = filler + "you are an idiot"
    windows = scoring.token_windows(tokenizer, [text], 32)
    per_window = batches.predict(full, windows.encoded)[:, 0]
    assert scorer.score([text])[0] == pytest.approx(per_window.max(), abs=1e-6)
    with pytest.raises(TypeError, match="expected a string"):
        scorer.score(["fine", 3])


def window_ids(windows: scoring.Windows, row: int) -> list[int]:
    """The word pieces of one window, without [CLS], [SEP] and padding."""
    ids = windows.encoded["input_ids"][row][windows.encoded["attention_mask"][row] == 1]
    return ids[1:-1].tolist()


def test_windows_per_comment_are_capped_to_head_and_tail(tokenizer):
    """Beyond max_windows a comment keeps its first and last windows: the start and the very end
    of the text are still scored, the middle is not, and the comment is listed as capped."""
    text = " ".join(f"w{i}" for i in range(3000))
    pieces = tokenizer(text, add_special_tokens=False)["input_ids"]
    everything = scoring.token_windows(tokenizer, [text], max_length=16, max_windows=10**6)
    assert len(everything.owner) > 100 and everything.capped == []
    capped = scoring.token_windows(tokenizer, ["short one", text], max_length=16, max_windows=6)
    assert (capped.owner == 0).sum() == 1 and (capped.owner == 1).sum() == 6 and capped.capped == [1]
    rows = np.flatnonzero(capped.owner == 1)
    assert [window_ids(capped, row) for row in rows[:3]] == [window_ids(everything, row) for row in range(3)]
    body, step = 14, 11  # max_length - 2, and body minus the default stride of body // 4
    tail = [window_ids(capped, row) for row in rows[3:]]
    assert tail[0][:step] + tail[1][:step] + tail[2] == pieces[-(2 * step + len(tail[2])):]
    assert len(tail[0]) == len(tail[1]) == body


def test_a_five_million_character_comment_is_scored_in_64_windows(tokenizer):
    text = "You are a pathetic idiot and everyone knows it. " * 104_167
    assert len(text) > 5_000_000
    windows = scoring.token_windows(tokenizer, [text], max_length=128)
    assert len(windows.owner) == scoring.MAX_WINDOWS == 64 and windows.capped == [0]
    assert window_ids(windows, 63)[-3:] == tokenizer("knows it.", add_special_tokens=False)["input_ids"]
    blank = "a" + " " * 1_000_000 + "b"  # few pieces in many characters: tokenized whole, not capped
    assert scoring.token_windows(tokenizer, [blank], max_length=128).capped == []
    with pytest.raises(ValueError, match="max_windows must be an integer >= 2"):
        scoring.token_windows(tokenizer, [text], max_length=128, max_windows=1)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_batch_size_must_be_at_least_one(batch_size):
    """0 used to fail obscurely and -1 to return zeros for every comment without scoring any."""
    encoded = {"input_ids": np.ones((3, 4), np.int32), "attention_mask": np.ones((3, 4), np.int32)}
    always_toxic = lambda batch: np.ones(len(batch["input_ids"]))  # noqa: E731
    message = "batch_size must be an integer >= 1"
    with pytest.raises(ValueError, match=message):
        batches.predict_with(always_toxic, encoded, batch_size)
    with pytest.raises(ValueError, match=message):
        batches.predict(object(), encoded, batch_size)
    with pytest.raises(ValueError, match=message):
        scoring.ToxicityScorer(always_toxic, tokenizer=None, max_length=8, batch_size=batch_size)


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
