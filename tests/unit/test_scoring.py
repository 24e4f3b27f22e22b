"""Scoring new comments: long comments split into overlapping token windows, the most toxic
window deciding, and a cap on windows per comment."""

from __future__ import annotations

import numpy as np
import pytest

from toxhelpers import batches, model, scoring


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


def test_scorer_batch_size_does_not_change_scores(saved_classifier):
    classifier, tokenizer, spec = model.load_classifier(saved_classifier["folder"])
    texts = [*saved_classifier["comments"], saved_classifier["long_comment"]]
    np.testing.assert_allclose(scoring.ToxicityScorer.from_keras(classifier, tokenizer, spec, batch_size=3).score(texts),
                               scoring.ToxicityScorer.from_keras(classifier, tokenizer, spec).score(texts), atol=1e-6)



def test_memory_stays_flat_in_the_number_of_comments(tokenizer):
    """Issue 22 row 12: all windows of all comments were built at once (a million short comments:
    3.9 GB with a model that costs nothing). Measured with tracemalloc (numpy arrays and Python
    lists included): scoring 4x the comments must not take much more memory at its peak. The
    backend is a real one of the Predict kind: it scores each window by its number of tokens."""
    import tracemalloc

    def window_length(batch):
        return batch["attention_mask"].sum(axis=1) / 100.0

    def peak_bytes(texts, chunk_size):
        scorer = scoring.ToxicityScorer(window_length, tokenizer, max_length=32, batch_size=256, chunk_size=chunk_size)
        tracemalloc.start()
        try:
            scores = scorer.score(texts)
            return tracemalloc.get_traced_memory()[1], scores
        finally:
            tracemalloc.stop()

    texts = [f"comment number {index} is short" for index in range(8000)]
    small, small_scores = peak_bytes(texts[:2000], 500)
    large, large_scores = peak_bytes(texts, 500)
    assert large < 1.5 * small, (small, large)
    single = scoring.ToxicityScorer(window_length, tokenizer, max_length=32, chunk_size=len(texts)).score(texts)
    np.testing.assert_array_equal(large_scores, single)  # chunks change nothing in the scores
    np.testing.assert_array_equal(small_scores, single[:2000])
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        scoring.ToxicityScorer(window_length, tokenizer, max_length=32, chunk_size=0)


def no_toxicity(batch):
    """A backend of the Predict kind that finds nothing toxic (only the input checks matter here)."""
    return np.zeros(len(batch["input_ids"]))


@pytest.mark.parametrize("texts, error, message", [
    (["fine", "bad \ud800 surrogate"], ValueError,
     r"comment 1 is not valid Unicode text \(a lone surrogate '\\ud800' at character 4\)"),
    (b"you idiot", TypeError, r"expected a list of comments, got bytes \(decode it to text first\); wrap it in a list"),
    ({"you idiot": 1}, TypeError, r"got a dict \(its keys are not comments\); pass a list"),
    ({"you idiot", "thanks"}, TypeError, r"got a set \(its order is arbitrary\); pass a list"),
    (["fine", b"bytes"], TypeError, r"comment 1 is bytes"),
])
def test_bad_comments_are_one_message_naming_the_comment(tokenizer, texts, error, message):
    """Issue 22 row 14: a lone surrogate gave the tokenizer's raw TypeError, bytes 'comment 0 is
    int', a dict scored its keys and a set scored in arbitrary order."""
    scorer = scoring.ToxicityScorer(no_toxicity, tokenizer, max_length=16)
    with pytest.raises(error, match=message):
        scorer.score(texts)


@pytest.mark.parametrize("settings, message", [
    ({"threshold": 1.5}, r"threshold must be a number in \[0, 1\], got 1.5"),
    ({"threshold": float("nan")}, r"threshold must be a number in \[0, 1\], got nan"),
    ({"threshold": "0.5"}, r"threshold must be a number in \[0, 1\], got '0.5'"),
    ({"max_length": 1}, r"max_length must be an integer >= 3 \(\[CLS\], \[SEP\] and a word piece\), got 1"),
])
def test_bad_scorer_settings_are_refused_when_made(tokenizer, settings, message):
    with pytest.raises(ValueError, match=message):
        scoring.ToxicityScorer(no_toxicity, tokenizer, **({"max_length": 16} | settings))
