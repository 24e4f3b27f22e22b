"""A long scoring that resumes (toxhelpers.resumable_scoring): stopped part-way and rerun, it
scores only the batches it did not save and gets what an unstopped scoring gets, on a small
two-output model on tf-keras (lesson 5's features) and on Keras 3 (lesson 12's); the lessons'
record removes the saves. Lesson 8's ONNX scorings resume the same way (test_serving.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from interrupts import Interrupted, interrupting
from toxhelpers import resumable_scoring

KINDS = ["tiny", "keras3"]  # a model on tf-keras (lessons 5, 6), on Keras 3 (lesson 12)


def scoring_rows(count: int = 300, width: int = 48, seed: int = 0) -> dict[str, np.ndarray]:
    """Token ids of random lengths, right-padded, as lesson 3 writes them."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, width + 1, count)
    mask = (np.arange(width) < lengths[:, None]).astype(np.int32)
    return {"input_ids": (rng.integers(1, 100, (count, width)) * mask).astype(np.int32), "attention_mask": mask}


def two_output_model(kind: str, seed: int = 0):
    """input_ids, attention_mask -> (the masked mean of the token vectors, the first one), as
    lesson 5's feature extractor; on tf-keras or Keras 3."""
    from resumable_fit import fit_kit

    keras, _, _ = fit_kit(kind)
    keras.utils.set_random_seed(seed)
    inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in ("input_ids", "attention_mask")}
    vectors = keras.layers.Dense(6)(keras.layers.Embedding(100, 8)(inputs["input_ids"]))
    mean = keras.layers.GlobalAveragePooling1D()(vectors, mask=inputs["attention_mask"])
    return keras.Model(inputs, [mean, vectors[:, 0, :]])


def scored(monkeypatch, net, rows, artifacts, stop_after: int | None = None, pause: float = 0.0):
    """resumable_scoring.ResumableScoring (batches of 8, saved every 4), raising after ``stop_after``
    batches as an interrupt would; returns (outputs, how many batches ran, its seconds)."""
    from toxhelpers import batches

    ran: list[int] = []
    real = batches.inference_function
    monkeypatch.setattr(batches, "inference_function", lambda model: interrupting(real(model), ran, stop_after, pause))
    scoring = resumable_scoring.ResumableScoring(artifacts, "keras_hub", save_every=4)
    try:
        outputs = scoring.predict(net, rows, "features-train", batch_size=8)
    except Interrupted:
        outputs = None
    monkeypatch.setattr(batches, "inference_function", real)
    return outputs, len(ran), scoring.seconds


@pytest.mark.parametrize("kind", KINDS)
def test_a_scoring_stopped_and_rerun_scores_only_the_rest_and_gets_the_same_outputs(tmp_path, monkeypatch, kind):
    from toxhelpers import batches

    rows, net = scoring_rows(), two_output_model(kind)
    want = batches.predict(net, rows, batch_size=8)
    total = -(-len(rows["input_ids"]) // 8)  # 38 batches
    started = time.perf_counter()
    assert scored(monkeypatch, net, rows, tmp_path, stop_after=10, pause=0.25)[:2] == (None, 10)
    first_wall = time.perf_counter() - started
    folder = tmp_path / ".checkpoints" / "keras_hub" / "scoring" / "features-train"
    assert sorted(path.name for path in folder.glob("part-*.npz")) == ["part-00000.npz", "part-00001.npz"]
    started = time.perf_counter()
    got, ran, seconds = scored(monkeypatch, net, rows, tmp_path)
    wall = time.perf_counter() - started
    assert ran == total - 8  # the two saved parts (4 batches each) were read, not scored again
    for mine, theirs in zip(got, want):
        np.testing.assert_array_equal(mine, theirs)
    # its time counts the 8 saved batches' (0.25 s pause each) as spent by the interrupted run
    assert 8 * 0.25 < seconds <= first_wall + wall
    # all saved now: a third run scores nothing; another model's weights score everything again
    assert scored(monkeypatch, net, rows, tmp_path)[1] == 0
    other = two_output_model(kind, seed=1)
    got, ran, _ = scored(monkeypatch, other, rows, tmp_path)
    assert ran == total
    np.testing.assert_array_equal(got[0], batches.predict(other, rows, batch_size=8)[0])


def test_the_lessons_record_removes_its_fits_end_and_saved_scorings(tmp_path, monkeypatch):
    from resumable_fit import fit_kit, tiny_model
    from toxhelpers import recording

    scored(monkeypatch, two_output_model("tiny"), scoring_rows(), tmp_path)
    _, checkpoint_class, _ = fit_kit("tiny")
    net, data, steps, _, _ = tiny_model()
    net.fit(data, epochs=1, steps_per_epoch=steps, verbose=0,
            callbacks=[checkpoint_class(tmp_path, "keras_hub", data, every=2)])
    folder = tmp_path / ".checkpoints" / "keras_hub"
    assert (folder / "latest.json").is_file() and (folder / "scoring" / "features-train" / "key.json").is_file()
    recording.Recorder(tmp_path, "keras_hub")  # lesson 12's last cell
    assert not folder.exists()
