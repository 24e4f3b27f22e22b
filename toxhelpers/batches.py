"""Feeding encoded comments to the model: fixed padding (the article's way) or length buckets.

Most comments are short: on the shared sample the median comment is 46 tokens and only 17% reach
128, so padding every row to 128 spends over half of the encoder's work on ``[PAD]``. Grouping
comments of similar length and padding each batch only up to a bucket width (a multiple of
``step`` tokens) removes most of that waste. The widths form a small fixed set, so TensorFlow
traces few graph shapes instead of one per batch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np


PADDINGS = ("bucketed", "fixed")
INPUT_NAMES = ("input_ids", "attention_mask")
PROGRESS_ROWS = 10_000  # scoring at least this many rows shows a progress bar with the time left


def check_batch_size(batch_size: int) -> int:
    """A batch size of at least one row: with 0 the batching loops fail obscurely, and with a
    negative one they silently yield no batches (nothing scored, zeros returned)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    return int(batch_size)


def bucket_widths(max_length: int, step: int = 16) -> list[int]:
    """The padded lengths batches may take: multiples of ``step`` up to ``max_length``."""
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    widths = list(range(step, max_length, step))
    return widths + [max_length]


def row_lengths(encoded: dict[str, np.ndarray]) -> np.ndarray:
    """Real (unpadded) tokens per row, from the attention mask."""
    return encoded["attention_mask"].sum(axis=1).astype(np.int64)


def padded_share(encoded: dict[str, np.ndarray], padding: str, batch_size: int = 32, step: int = 16) -> float:
    """Share of the token positions the encoder processes that are padding, for a padding scheme
    (bucketed estimated with rows sorted by length, as :func:`predict` batches them)."""
    lengths = row_lengths(encoded)
    max_length = encoded["input_ids"].shape[1]
    if padding == "fixed":
        processed = len(lengths) * max_length
    else:
        processed = sum(len(batch) * width for batch, width in _sorted_batches(lengths, batch_size, max_length, step))
    return 1.0 - lengths.sum() / processed if processed else 0.0


def _width_for(length: int, widths: list[int]) -> int:
    return next(width for width in widths if width >= length)


def _sorted_batches(lengths: np.ndarray, batch_size: int, max_length: int, step: int):
    """Batches of row indices in length order, each with the bucket width it is padded to."""
    widths = bucket_widths(max_length, step)
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        yield batch, _width_for(int(lengths[batch].max()), widths)


def bucket_batch_sizes(widths: list[int], batch_size: int, tokens_per_batch: int | None = None) -> list[int]:
    """Rows per batch for each bucket width: ``batch_size``, but never more than
    ``tokens_per_batch`` token positions, so batches of long comments hold fewer rows.

    Why a cap: a training step keeps every layer's activations for the backward pass, and their
    size grows with rows x width (attention with width squared). On the lessons' encoder a step on
    32 rows of 128 tokens needs about a gigabyte more than one on 16 such rows; short comments,
    most of the data, still travel 32 to a batch.
    """
    batch_size = check_batch_size(batch_size)
    if tokens_per_batch is None:
        return [batch_size] * len(widths)
    if tokens_per_batch < max(widths):
        raise ValueError(f"tokens_per_batch must hold at least one row of {max(widths)} tokens, got {tokens_per_batch}")
    return [min(batch_size, tokens_per_batch // width) for width in widths]


def padded_widths(max_length: int, padding: str, step: int = 16) -> list[int]:
    """The widths batches are padded to: ``max_length`` alone (fixed) or the bucket widths."""
    check_padding(padding)
    return [max_length] if padding == "fixed" else bucket_widths(max_length, step)


def bucket_of(encoded: dict[str, np.ndarray], widths: list[int]) -> np.ndarray:
    """Each row's bucket: the index of the first width that holds its real tokens."""
    return np.searchsorted(widths, row_lengths(encoded))


def batches_per_epoch(encoded: dict[str, np.ndarray], batch_size: int = 32, padding: str = "bucketed",
                      step: int = 16, tokens_per_batch: int | None = None) -> int:
    """Exactly how many batches :func:`training_dataset` yields per epoch (a learning-rate
    schedule needs the step count in advance): each length bucket ends with one partial batch."""
    widths = padded_widths(encoded["input_ids"].shape[1], padding, step)
    sizes = bucket_batch_sizes(widths, batch_size, tokens_per_batch)
    rows_per_bucket = np.bincount(bucket_of(encoded, widths), minlength=len(widths))
    return int(sum(-(-rows // size) for rows, size in zip(rows_per_bucket, sizes)))


def training_dataset(encoded: dict[str, np.ndarray], labels: np.ndarray, batch_size: int = 32,
                     padding: str = "bucketed", seed: int = 42, step: int = 16, shuffle: bool = True,
                     tokens_per_batch: int | None = None) -> Any:
    """A ``tf.data.Dataset`` of ``({input_ids, attention_mask}, label)`` batches for ``fit``.

    ``fixed``: every batch is ``(batch_size, max_length)``. ``bucketed``: rows are shuffled, then
    grouped by length with ``tf.data``'s ``bucket_by_sequence_length`` and padded to the bucket
    width, so a batch of short comments costs little. ``tokens_per_batch`` caps the token
    positions of any batch (:func:`bucket_batch_sizes`).

    The batches are the same in every process for the same arguments (seeded shuffle, fixed
    buckets); :func:`fingerprint` names them, so a training checkpoint can tell whether a rerun
    would see the batches it saved its place in.
    """
    from toxhelpers.tf_setup import tf

    check_padding(padding)
    check_batch_size(batch_size)
    labels = np.asarray(labels, dtype=np.float32)
    if len(labels) != len(encoded["input_ids"]):
        raise ValueError(f"{len(labels)} labels for {len(encoded['input_ids'])} encoded rows")
    features = {name: encoded[name] for name in INPUT_NAMES}
    dataset = tf.data.Dataset.from_tensor_slices((features, labels))
    if shuffle:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    widths = padded_widths(encoded["input_ids"].shape[1], padding, step)
    sizes = bucket_batch_sizes(widths, batch_size, tokens_per_batch)
    key = {"rows": arrays_digest([features[name] for name in INPUT_NAMES] + [labels]), "batch_size": batch_size,
           "padding": padding, "seed": seed, "step": step, "shuffle": shuffle, "tokens_per_batch": tokens_per_batch}
    if padding == "fixed":
        return _with_fingerprint(dataset.batch(sizes[0]).prefetch(tf.data.AUTOTUNE), key)

    def trim(inputs, label):
        length = tf.reduce_sum(inputs["attention_mask"])
        return {name: inputs[name][:length] for name in INPUT_NAMES}, label

    boundaries = [width + 1 for width in widths]  # a row of length L goes to the first width >= L
    # Told its exact length, Keras runs no phantom step at the end of the first epoch (with an
    # unknown length it counts one optimiser step more than there were batches) and sizes bars.
    count = tf.data.experimental.assert_cardinality(
        batches_per_epoch(encoded, batch_size, padding, step, tokens_per_batch))
    return _with_fingerprint(dataset.map(trim, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).bucket_by_sequence_length(
        element_length_func=lambda inputs, label: tf.shape(inputs["input_ids"])[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=sizes + [batch_size],
        padded_shapes=({name: [None] for name in INPUT_NAMES}, []),
        pad_to_bucket_boundary=True,  # pad to the bucket's width: a small, fixed set of shapes
    ).apply(count).prefetch(tf.data.AUTOTUNE), key)


def arrays_digest(arrays: list[np.ndarray]) -> str:
    """One hash of the arrays' dtypes, shapes and values."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _with_fingerprint(dataset: Any, key: dict[str, Any]) -> Any:
    dataset._toxhelpers_fingerprint = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return dataset


def fingerprint(dataset: Any) -> str:
    """What the batches of a :func:`training_dataset` depend on (its rows, labels, batch sizes,
    padding, seed), as one hash; an error for a dataset built some other way, whose batches this
    package cannot promise to reproduce."""
    found = getattr(dataset, "_toxhelpers_fingerprint", None)
    if found is None:
        raise ValueError("expected a dataset made by batches.training_dataset (its seeded batches come out the same "
                         f"in every process), got {type(dataset).__name__}")
    return found


def warmup_dataset(encoded: dict[str, np.ndarray], labels: np.ndarray, batch_size: int = 32,
                   padding: str = "bucketed", step: int = 16, tokens_per_batch: int | None = None) -> Any:
    """One training batch of every input width ``padding`` produces from these rows, in order.

    The first step at a new width costs far more than the next ones (graph tracing, kernel
    set-up), so a throughput measurement that meets a new width mid-way bills that one-off cost
    to the scheme being timed. Training on this dataset first leaves nothing new to meet.
    """
    widths = padded_widths(encoded["input_ids"].shape[1], padding, step)
    sizes = bucket_batch_sizes(widths, batch_size, tokens_per_batch)
    bucket = bucket_of(encoded, widths)
    chosen = np.concatenate([np.flatnonzero(bucket == index)[:sizes[index]] for index in np.unique(bucket)])
    rows = {name: encoded[name][chosen] for name in INPUT_NAMES}
    return training_dataset(rows, np.asarray(labels)[chosen], batch_size, padding, step=step, shuffle=False,
                            tokens_per_batch=tokens_per_batch)


def check_padding(padding: str) -> None:
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")


def inference_function(model: Any) -> Callable[[dict[str, np.ndarray]], Any]:
    """``model`` in inference mode as ONE graph for any (batch, length) shape.

    Keras' ``predict_on_batch`` traces a new graph for each new input shape (and warns about
    it); a ``tf.function`` with an open input signature is traced once.
    """
    from toxhelpers.tf_setup import tf

    cached = getattr(model, "_toxhelpers_inference", None)
    if cached is None:
        signature = [{name: tf.TensorSpec([None, None], tf.int32, name=name) for name in INPUT_NAMES}]
        cached = tf.function(lambda inputs: model(inputs, training=False), input_signature=signature)
        model._toxhelpers_inference = cached
    return cached


def scoring_progress(rows: int, positions: int, mininterval: float = 5.0) -> Any:
    """A plain-text progress bar for scoring ``rows`` comments (silent under :data:`PROGRESS_ROWS`:
    a short scoring stays quiet). It counts token positions, not batches: bucketed batches come
    shortest first, so a count of batches would promise the end far too early."""
    from tqdm import tqdm

    return tqdm(total=positions, desc=f"scoring {rows:,} rows", unit="token", unit_scale=True,
                mininterval=mininterval, ascii=True, leave=True, disable=rows < PROGRESS_ROWS)


def predict(model: Any, encoded: dict[str, np.ndarray], batch_size: int = 64, padding: str = "bucketed",
            step: int = 16, saved: Any = None) -> Any:
    """Run a Keras model over all rows and return its outputs in the rows' original order.

    With ``bucketed`` padding rows are processed in length order, each batch cut to its bucket
    width; the outputs are put back in input order. Works for models with one or several outputs.
    ``saved``: see :func:`predict_with`.
    """
    check_batch_size(batch_size)  # before tracing anything for the model
    return predict_with(inference_function(model), encoded, batch_size, padding, step, saved)


def predict_with(run: Callable[[dict[str, np.ndarray]], Any], encoded: dict[str, np.ndarray], batch_size: int = 64,
                 padding: str = "bucketed", step: int = 16, saved: Any = None) -> Any:
    """:func:`predict` for any backend: ``run`` maps a batch ``{"input_ids", "attention_mask"}``
    (int32, rows x width) to its outputs (a TensorFlow graph, an ONNX Runtime session...).

    ``saved`` (:class:`toxhelpers.resumable_scoring.SavedBatches`, for a scoring that takes long
    enough to be interrupted): the outputs of the batches an earlier run finished, in batch order
    (``saved.done()``), are used instead of running them again, and each new batch's outputs are
    handed to ``saved.add`` (``saved.close()`` at the end)."""
    check_padding(padding)
    check_batch_size(batch_size)
    count, max_length = encoded["input_ids"].shape
    if count == 0:
        raise ValueError("nothing to predict: the encoded input has no rows")
    if padding == "fixed":
        batches = [(np.arange(start, min(start + batch_size, count)), max_length)
                   for start in range(0, count, batch_size)]
    else:
        batches = list(_sorted_batches(row_lengths(encoded), batch_size, max_length, step))
    outputs: list[list[np.ndarray]] = saved.done() if saved is not None else []
    bar = scoring_progress(count, sum(len(rows) * width for rows, width in batches[len(outputs):]))
    for rows, width in batches[len(outputs):]:
        result = run({name: np.ascontiguousarray(encoded[name][rows, :width], dtype=np.int32) for name in INPUT_NAMES})
        outputs.append([np.asarray(part) for part in (result if isinstance(result, (list, tuple)) else [result])])
        if saved is not None:
            saved.add(outputs[-1])
        bar.update(len(rows) * width)
    bar.close()
    if saved is not None:
        saved.close()
    order = np.concatenate([rows for rows, _ in batches])
    restored = []
    for part in zip(*outputs):
        stacked = np.concatenate(part)
        unsorted = np.empty_like(stacked)
        unsorted[order] = stacked
        restored.append(unsorted)
    return restored if len(restored) > 1 else restored[0]
