"""Serving the fine-tuned classifier fast: ONNX export, int8 quantization, an ONNX-backed scorer,
and latency measurements.

TensorFlow is built for training; for scoring comments one at a time a lighter runtime helps.
The classifier is exported once to ONNX (a portable graph of standard operators) and run with
ONNX Runtime. Dynamic int8 quantization then stores the big weight matrices as 8-bit integers
(4x smaller) and multiplies them with integer kernels; activations are quantized on the fly, so
no calibration data is needed. Every step is checked against TensorFlow's own predictions.

One snag, and its fix: TensorFlow 2.16+ computes the exact GELU of BERT-style encoders as
``0.5 * x * erfc(-x / sqrt(2))``, and neither ONNX nor tf2onnx 1.17 has ``Erfc``. ONNX does have
``Erf``, and ``erfc(x) = 1 - erf(x)``, so :func:`export_onnx` converts ``Erfc`` that way.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toxhelpers import model, scoring
from toxhelpers.artifacts import artifact, artifact_path, atomic_path
from toxhelpers.batches import INPUT_NAMES

DEFAULT_OPSET = 17


def onnx_path(artifacts_dir: str | os.PathLike, variant: str = "fp32") -> Path:
    """Where lesson 8 writes the exported model (``fp32``) and its quantized copy (``int8``)."""
    return artifact_path(artifacts_dir, "onnx", variant=variant)


def _erfc_as_one_minus_erf(ctx: Any, node: Any, name: str, args: list) -> Any:
    """tf2onnx handler: ``erfc(x)`` becomes ``1 - erf(x)`` (ONNX has ``Erf`` but no ``Erfc``)."""
    from tf2onnx import utils

    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
    erf = ctx.make_node("Erf", [node.input[0]], op_name_scope=node.name)
    one = ctx.make_const(utils.make_name(f"{node.name}_one"), np.array(1, dtype=dtype))
    node.type = "Sub"
    ctx.replace_inputs(node, [one.output[0], erf.output[0]])
    return node


def serving_function(classifier: Any) -> Any:
    """The classifier in inference mode as a ``tf.function`` of int32 ``input_ids`` and
    ``attention_mask`` of any (batch, length): what gets exported."""
    from toxhelpers.tf_setup import tf

    signature = [tf.TensorSpec([None, None], tf.int32, name=name) for name in INPUT_NAMES]

    @tf.function(input_signature=signature)
    def probability(input_ids: Any, attention_mask: Any) -> dict[str, Any]:
        return {"probability": classifier({"input_ids": input_ids, "attention_mask": attention_mask},
                                          training=False)}

    return probability


def export_onnx(classifier: Any, path: str | os.PathLike, opset: int = DEFAULT_OPSET) -> Path:
    """Convert the Keras classifier to an ONNX file with dynamic batch and sequence length.

    Lean on purpose (measured in benchmarks/, lesson 8's export went from 6.9 GB to under 2 GB and
    from minutes to seconds). tf2onnx's default route runs TensorFlow's graph optimiser on the
    frozen graph and then about 36 passes of its own ONNX optimisers, and every pass rewrites
    every constant node, i.e. every weight: with protobuf's arena allocator each rewrite keeps
    another copy of the weights alive (about 90 MB a pass here). So the export keeps the weights
    out of the graph while converting (tf2onnx's ``large_model`` mode, which also skips
    TensorFlow's optimiser) and runs none of tf2onnx's passes: ONNX Runtime optimises the graph
    itself when it loads it (constant folding, fusions), which measured as fast. The weights are
    then put back into one self-contained ``.onnx`` file.
    """
    import onnx
    from onnx.external_data_helper import load_external_data_for_model
    from tf2onnx import tf_loader
    from tf2onnx.convert import _convert_common, tensor_names_from_structed

    from toxhelpers.tf_setup import _native_stderr_silenced, tf

    function = serving_function(classifier)
    concrete = function.get_concrete_function(*function.input_signature)
    input_names = [tensor.name for tensor in concrete.inputs if tensor.dtype != tf.dtypes.resource]
    output_names = [tensor.name for tensor in concrete.outputs if tensor.dtype != tf.dtypes.resource]
    path = Path(path)
    with _native_stderr_silenced(), _quiet_logger("tf2onnx"), _numpy_product_for_tf2onnx(), tf.device("/cpu:0"):
        frozen = tf_loader.from_function(concrete, input_names, output_names, large_model=True)
        model_proto, weights = _convert_common(
            frozen, name=concrete.name, continue_on_error=True, opset=opset, large_model=True,
            custom_op_handlers={"Erfc": (_erfc_as_one_minus_erf, [])}, input_names=input_names,
            output_names=output_names, optimizers={},
            tensors_to_rename=tensor_names_from_structed(concrete, input_names, output_names))
    with tempfile.TemporaryDirectory() as folder:
        for location, data in weights.name_to_tensor_data.items():
            (Path(folder) / location).write_bytes(data)
        load_external_data_for_model(model_proto, folder)
    with atomic_path(path) as tmp:
        onnx.save(model_proto, str(tmp))
    return path


@contextlib.contextmanager
def _numpy_product_for_tf2onnx() -> Iterator[None]:
    """tf2onnx 1.17's large-model path calls ``np.product``, which NumPy 2 removed (``np.prod`` is
    the same function): lend it the old name for the duration of the export."""
    missing = not hasattr(np, "product")
    if missing:
        np.product = np.prod
    try:
        yield
    finally:
        if missing:
            del np.product


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Keep a chatty library's log to errors for the duration of a call (tf2onnx logs every pass)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def quantize_int8(source: str | os.PathLike, target: str | os.PathLike, per_channel: bool = True) -> Path:
    """Dynamic int8 quantization of the weights of an ONNX model (no calibration data needed).

    ``per_channel``: one scale per output column of each weight matrix instead of one per matrix.
    A single column with large weights then no longer coarsens all the others; on the lessons'
    classifier this halves the largest probability change for the same size and speed.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, target = Path(source), Path(target)
    if not source.is_file():
        raise FileNotFoundError(f"no ONNX model at {source}; export one with export_onnx first")
    # The quantizer suggests (on the root logger) a pre-processing step whose symbolic shape
    # inference does not complete on this graph and which measured no gain here: silenced.
    with atomic_path(target) as tmp, _quiet_logger(""):
        quantize_dynamic(source, tmp, weight_type=QuantType.QInt8, per_channel=per_channel)
    return target


def onnx_digest(path: str | os.PathLike) -> str:
    """A digest of an ONNX model's weights, operators and operator sets, not of its bytes: tf2onnx
    numbers node names per process (and orders some nodes by them), so exporting the same
    classifier again, in a rerun of lesson 8, writes other bytes of the same model."""
    import onnx
    from onnx import numpy_helper

    graph_model = onnx.load(str(path))
    weights = sorted((hashlib.sha256(numpy_helper.to_array(tensor).tobytes()).hexdigest(), tensor.data_type,
                      list(tensor.dims)) for tensor in graph_model.graph.initializer)
    operators = sorted(collections.Counter(node.op_type for node in graph_model.graph.node).items())
    opsets = sorted((item.domain, item.version) for item in graph_model.opset_import)
    return hashlib.sha256(repr((weights, operators, opsets)).encode()).hexdigest()


class OnnxClassifier:
    """An ONNX Runtime session that maps ``{"input_ids", "attention_mask"}`` batches to
    probabilities of shape (batch,), like the Keras classifier's first output column."""

    def __init__(self, path: str | os.PathLike, threads: int = 0, spinning: bool = False):
        """``threads``: intra-op threads (0: ONNX Runtime's default, one per physical core).
        ``spinning``: let idle threads busy-wait for work. It shaves a little latency on an idle
        machine, but on a shared one the spinning threads steal the cores the work needs."""
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no ONNX model at {self.path}; {artifact('onnx').produced_by} exports one")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        # Batches here change shape (length buckets, windows). A memory pattern is planned and kept
        # per input shape: with it on, lesson 8's kernel ended ~150 MB higher in a cell-by-cell trace
        # on the shared sample (3,063 against 2,908 MB), and latency at batch 1 and 32 x 128 was the
        # same either way (fp32 and int8, back to back). The arena still reuses buffers; turning it
        # off too cut the resident memory between calls but sent the peaks to 3.4-3.9 GB.
        options.enable_mem_pattern = False
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.input_names = [item.name for item in self.session.get_inputs()]
        if sorted(self.input_names) != sorted(INPUT_NAMES):
            raise ValueError(f"{self.path} takes inputs {self.input_names}, expected {list(INPUT_NAMES)}")

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: np.ascontiguousarray(inputs[name], dtype=np.int32) for name in self.input_names}
        return self.session.run(None, feed)[0].reshape(-1)

    @property
    def size_mb(self) -> float:
        return file_size_mb(self.path)

    @functools.cached_property
    def key(self) -> dict[str, str]:
        """What this session's outputs depend on, for ``resumable_scoring.ResumableScoring.predict_with``
        (lesson 8's agreement checks): :func:`onnx_digest` of its file."""
        return {"onnx": onnx_digest(self.path)}


def load_onnx_scorer(onnx_file: str | os.PathLike | OnnxClassifier, model_folder: str | os.PathLike,
                     threads: int = 0, batch_size: int = 32) -> scoring.ToxicityScorer:
    """A :class:`scoring.ToxicityScorer` backed by ONNX Runtime: the tokenizer, ``max_length`` and
    threshold come from the saved classifier folder, the numbers from the ONNX file, or from a
    session already open (an :class:`OnnxClassifier`): each session holds its own copy of the
    weights and buffers, about 250 MB for the fp32 model, so a second one is worth avoiding."""
    from transformers import AutoTokenizer

    if isinstance(onnx_file, OnnxClassifier) and threads:
        raise ValueError(f"threads={threads} with a session already open: its threads were set when it was "
                         "opened (OnnxClassifier(path, threads)); pass the path instead, or no threads")
    model_folder = Path(model_folder)
    spec = model.ClassifierSpec.load(model.require_saved_classifier(model_folder))
    model.check_saved_files(model_folder, spec)
    tokenizer = AutoTokenizer.from_pretrained(model_folder / "tokenizer")
    session = onnx_file if isinstance(onnx_file, OnnxClassifier) else OnnxClassifier(onnx_file, threads)
    return scoring.ToxicityScorer(session, tokenizer, spec.max_length, spec.threshold, batch_size)


def file_size_mb(path: str | os.PathLike) -> float:
    """Size of a file, or of everything in a folder, in megabytes (10^6 bytes)."""
    path = Path(path)
    files = [path] if path.is_file() else [item for item in path.rglob("*") if item.is_file()]
    return sum(item.stat().st_size for item in files) / 1e6


def agreement(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray,
              threshold: float = 0.5) -> dict[str, float]:
    """How closely a converted model reproduces the reference: largest probability difference,
    ROC-AUC of both on the same rows, and the share of decisions at ``threshold`` that change."""
    from sklearn.metrics import roc_auc_score

    reference, candidate = np.asarray(reference, np.float64).ravel(), np.asarray(candidate, np.float64).ravel()
    if reference.shape != candidate.shape or reference.shape != np.asarray(labels).ravel().shape:
        raise ValueError(f"shapes differ: reference {reference.shape}, candidate {candidate.shape}, "
                         f"labels {np.asarray(labels).shape}")
    reference_auc, candidate_auc = roc_auc_score(labels, reference), roc_auc_score(labels, candidate)
    return {"max_abs_difference": float(np.abs(reference - candidate).max()),
            "mean_abs_difference": float(np.abs(reference - candidate).mean()),
            "roc_auc_reference": float(reference_auc), "roc_auc": float(candidate_auc),
            "roc_auc_difference": float(candidate_auc - reference_auc),
            "decisions_changed": float(np.mean((reference >= threshold) != (candidate >= threshold)))}


def latency(run: Callable[[dict[str, np.ndarray]], Any], inputs: dict[str, np.ndarray], repeats: int = 20,
            warmup: int = 2) -> dict[str, float]:
    """Wall time of ``run(inputs)``: median and 90th percentile in ms, and examples per second at
    the median. A measurement of this machine at this moment, never a test condition."""
    batch = len(inputs[INPUT_NAMES[0]])
    row = latency_table({"run": run}, {batch: inputs}, repeats, warmup).iloc[0]
    return {"batch": batch, **{key: row[key] for key in ("length", "median_ms", "p90_ms", "examples_per_s", "repeats")}}


def _summary(times: list[float], inputs: dict[str, np.ndarray]) -> dict[str, float]:
    median, batch = float(np.median(times)), len(inputs[INPUT_NAMES[0]])
    return {"length": int(inputs[INPUT_NAMES[0]].shape[1]), "median_ms": median * 1e3,
            "p90_ms": float(np.percentile(times, 90)) * 1e3, "examples_per_s": batch / median,
            "repeats": len(times)}


def tf_backends(classifier: Any) -> dict[str, Callable[[dict[str, np.ndarray]], Any]]:
    """The Keras classifier called eagerly (op by op) and as one traced graph."""
    from toxhelpers.batches import inference_function

    graph = inference_function(classifier)
    return {"TF eager": lambda inputs: classifier(inputs, training=False).numpy(),
            "TF graph": lambda inputs: graph(inputs).numpy()}


def benchmark_inputs(encoded: dict[str, np.ndarray], batch_sizes: Sequence[int], length: int) -> dict[int, dict]:
    """The first rows of ``encoded`` as fixed (batch, length) int32 inputs, one per batch size."""
    available, width = encoded[INPUT_NAMES[0]].shape
    if length > width:
        raise ValueError(f"rows are encoded to {width} tokens; cannot benchmark at {length}")
    if max(batch_sizes) > available:
        raise ValueError(f"{available} encoded rows; cannot make a batch of {max(batch_sizes)}")
    return {size: {name: np.ascontiguousarray(encoded[name][:size, :length], dtype=np.int32)
                   for name in INPUT_NAMES} for size in batch_sizes}


def latency_table(backends: dict[str, Callable[[dict[str, np.ndarray]], Any]], inputs: dict[int, dict],
                  repeats: int = 20, warmup: int = 2, sizes_mb: dict[str, float] | None = None) -> Any:
    """One row per (batch size, backend): median and p90 latency, examples/s, model size, and
    speed relative to the first backend at the same batch size.

    The backends take turns call by call (A, B, C, A, B, C, ...), so a burst of load from other
    processes slows all of them alike instead of spoiling one backend's numbers.
    """
    import pandas as pd

    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    rows = []
    for batch, batch_inputs in inputs.items():
        times: dict[str, list[float]] = {name: [] for name in backends}
        for round_ in range(warmup + repeats):
            for name, run in backends.items():
                started = time.perf_counter()
                np.asarray(run(batch_inputs))
                if round_ >= warmup:
                    times[name].append(time.perf_counter() - started)
        rows += [{"batch": batch, "backend": name, **_summary(times[name], batch_inputs),
                  "size_mb": (sizes_mb or {}).get(name, float("nan"))} for name in backends]
    table = pd.DataFrame(rows)
    first = table.groupby("batch")["median_ms"].transform("first")
    table["speedup_vs_first"] = first / table["median_ms"]
    return table.set_index(["batch", "backend"])
