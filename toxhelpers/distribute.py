"""Scaling out: the lessons' own training code on several devices or machines, and in lower precision.

``tf.distribute`` runs one copy of the model (a *replica*) per device. Every replica computes the
gradient of its own slice of a batch; the gradients are summed across replicas (an all-reduce) and
every replica applies the same update, so the copies never drift apart. Three strategies:

- ``"default"``: no distribution, today's behaviour (``tf.distribute.get_strategy()``, the
  do-nothing strategy: its scope changes no op, seed or batch);
- ``"mirrored"``: every local GPU (or the devices listed) in one process;
- ``"multi_worker"``: one process per machine, ``MultiWorkerMirroredStrategy``, each told the
  cluster and its own place in it by the ``TF_CONFIG`` environment variable.

**Global batch and learning rate.** ``batch_size`` stays the *per-replica* batch, so a replica's
memory need is unchanged; one optimiser step then sees ``batch_size x replicas`` rows (the global
batch, :func:`global_batch_size`) and an epoch has ``replicas`` times fewer steps. The rule stated
here (and in lesson 6 and the README): ``learning_rate`` is the peak for the *global* batch; going
from 1 to N replicas, multiply it by N (the linear scaling rule, Goyal et al., 2017) and keep the
warm-up, which is what makes the larger rate safe; then check on validation. Nothing here scales it
silently: the tests compare N replicas with one process at the *same global batch and rate*, and
that is the comparison that must agree.

**Sharding policy.** The token arrays are in memory, so no files need splitting between workers.
Every input pipeline builds the *same* seeded global batches (same shuffle, same length buckets)
and keeps only its replicas' slice of each batch (:func:`distribute_dataset`, through
``distribute_datasets_from_function``). Why not ``AutoShardPolicy.DATA``: it would have each
worker keep every N-th *batch*, so each worker's batches (and the step count, and a bucketed
batch's width) would differ from the single-process run; slicing each global batch keeps the
exact batch composition of the one-process run, which is what makes the two comparable.

**Precision.** ``"float32"`` (default), ``"mixed_float16"`` (GPUs; the optimiser is wrapped in a
``LossScaleOptimizer`` so small gradients do not underflow), ``"mixed_bfloat16"`` (recent CPUs,
TPUs; bfloat16 has float32's range, so no loss scaling). Layers compute in 16 bits and keep their
weights in float32; the head's output layer and the focal loss stay in float32
(:func:`model.build_head`, :class:`losses.BinaryFocalLoss`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
SCRATCH_PREFIX = "toxhelpers-worker-"
CLUSTER_STRATEGY = "multi_worker"  # the only strategy that reads TF_CONFIG
PEER_TIMEOUT_SECONDS = 600.0  # how long a worker waits for the others to start (see peer_timeout)
PEER_TIMEOUT_VARIABLE = "TOXHELPERS_PEER_TIMEOUT"

# Set by make_strategy: whether this process takes part in the TF_CONFIG cluster (None: no strategy
# made yet, so TF_CONFIG alone decides). A TF_CONFIG inherited by a one-process run used to make a
# "worker 1" write its artifacts to a scratch folder that was then deleted.
_in_cluster: bool | None = None
_told: set[str] = set()


def check_strategy_name(name: str) -> str:
    """The strategy name, or one clear error listing the known ones."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    return name


def check_precision(name: str) -> str:
    """The precision name, or one clear error listing the known ones."""
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {name!r}")
    return name


def make_strategy(name: str = "default", devices: Sequence[str] | None = None) -> Any:
    """The ``tf.distribute`` strategy called ``name`` (see the module docstring).

    Create it first thing in a program, before any other TensorFlow op: ``multi_worker`` sets up
    the collective ops of the whole runtime and fails once TensorFlow has started. ``devices``
    (``mirrored`` only) lists the devices, e.g. ``["/cpu:0", "/cpu:1"]``; default: every GPU.
    """
    from toxhelpers.tf_setup import tf

    global _in_cluster

    check_strategy_name(name)
    if devices is not None and name != "mirrored":
        raise ValueError(f"devices can only be listed for strategy 'mirrored', got strategy {name!r}")
    _in_cluster = name == CLUSTER_STRATEGY
    notice = ignored_tf_config(name)
    if notice and notice not in _told:
        _told.add(notice)
        print(f"NOTICE: {notice}", file=sys.stderr)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=list(devices) if devices is not None else None)
    config = cluster_config()  # a readable error for a missing or broken TF_CONFIG, before TensorFlow's
    seconds = peer_timeout()
    _wait_for_peers_at_most(seconds)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as error:
        if "Timeout waiting for the cluster" not in str(error):
            raise
        members = [address for addresses in config.get("cluster", {}).values() for address in addresses]
        raise TimeoutError(f"TF_CONFIG: not every worker of the cluster ({', '.join(members)}) connected within "
                           f"{seconds:.0f} s; start each of them (the same cluster list, its own task index), "
                           f"check that their hosts and ports are reachable from here, or wait longer with "
                           f"{PEER_TIMEOUT_VARIABLE}=<seconds>") from None


def peer_timeout(environ: Mapping[str, str] | None = None) -> float:
    """How long a ``multi_worker`` process waits for the others (``$TOXHELPERS_PEER_TIMEOUT``
    seconds, default :data:`PEER_TIMEOUT_SECONDS`)."""
    environ = os.environ if environ is None else environ
    text = environ.get(PEER_TIMEOUT_VARIABLE, "").strip()
    if not text:
        return PEER_TIMEOUT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise ValueError(f"{PEER_TIMEOUT_VARIABLE}={text!r}: expected a number of seconds > 0")
    return seconds


def _wait_for_peers_at_most(seconds: float) -> None:
    """Make TensorFlow's wait for the other workers end after ``seconds`` with an error, and
    leave SIGTERM to end a waiting worker. TensorFlow's coordination service, which
    ``MultiWorkerMirroredStrategy`` otherwise starts, waited for absent peers forever and
    installed a SIGTERM handler of its own (its preemption notifier) that kept the process
    alive. Without it, the strategy checks its peers itself: a first all-reduce with this
    timeout, then a health check every 30 s (private TensorFlow attributes, checked by a test)."""
    from tensorflow.python.distribute import collective_all_reduce_strategy as collective
    from tensorflow.python.eager import context

    context.context().configure_coordination_service(service_type="")
    collective.CollectiveAllReduceExtended._check_health_initial_timeout = max(1, round(seconds))


def ignored_tf_config(strategy: str, environ: Mapping[str, str] | None = None) -> str | None:
    """What to tell the user when ``TF_CONFIG`` is set but ``strategy`` runs one process (every
    strategy but ``multi_worker``): it is ignored, and this process writes the artifacts. None
    when there is nothing to say."""
    environ = os.environ if environ is None else environ
    if strategy == CLUSTER_STRATEGY or not environ.get("TF_CONFIG", "").strip():
        return None
    return (f"TF_CONFIG is set in the environment but strategy is {strategy!r}: it is ignored, this process "
            f"runs alone and writes the artifacts (strategy={CLUSTER_STRATEGY!r} joins the cluster)")


def is_default(strategy: Any) -> bool:
    """Whether ``strategy`` is TensorFlow's do-nothing default strategy (the one-process path)."""
    from tensorflow.python.distribute import distribute_lib

    return isinstance(strategy, distribute_lib._DefaultDistributionStrategy)


def replicas(strategy: Any) -> int:
    """How many copies of the model train in lockstep (1 for the default strategy)."""
    return int(strategy.num_replicas_in_sync)


def global_batch_size(per_replica: int, strategy_or_replicas: Any) -> int:
    """Rows one optimiser step sees: the per-replica batch times the replicas (see the docstring
    for the learning-rate rule that goes with it)."""
    count = strategy_or_replicas if isinstance(strategy_or_replicas, int) else replicas(strategy_or_replicas)
    if isinstance(per_replica, bool) or not isinstance(per_replica, int) or per_replica < 1:
        raise ValueError(f"the per-replica batch size must be an integer >= 1, got {per_replica!r}")
    if count < 1:
        raise ValueError(f"the number of replicas must be >= 1, got {count}")
    return per_replica * count


def cluster_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``TF_CONFIG`` parsed and checked, or one error saying what is wrong and what is expected.

    Expected: ``{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}``
    (a ``"chief"`` list is allowed too). Empty or unset: ``{}`` (a single process).
    """
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG", "").strip()
    if not text:
        return {}
    example = ('expected JSON like {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
               '"task": {"type": "worker", "index": 0}}')
    try:
        config = json.loads(text)
    except ValueError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}); {example}") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict) or \
            not isinstance(config.get("task"), dict):
        raise ValueError(f"TF_CONFIG needs a 'cluster' and a 'task' object, got {text!r}; {example}")
    chiefs = config["cluster"].get("chief")
    if chiefs is not None and (not isinstance(chiefs, list) or len(chiefs) != 1):
        raise ValueError(f"TF_CONFIG's cluster lists {chiefs!r} as 'chief': expected exactly one address "
                         f"(one chief writes the artifacts); {example}")
    task_type, index = config["task"].get("type"), config["task"].get("index")
    members = config["cluster"].get(task_type)
    if not isinstance(members, list) or isinstance(index, bool) or not isinstance(index, int) \
            or not 0 <= index < len(members):
        raise ValueError(f"TF_CONFIG's task {config['task']!r} is not in its cluster "
                         f"{config['cluster']!r}; {example}")
    return config


def local_tf_configs(workers: int) -> list[str]:
    """``TF_CONFIG`` values for ``workers`` processes on this machine, one each, on free localhost
    ports (what the tests and ``benchmarks/distribute.py`` start; a port could in principle be
    taken between this call and the workers binding it)."""
    import socket

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    sockets = [socket.socket() for _ in range(workers)]
    try:
        for sock in sockets:
            sock.bind(("localhost", 0))
        addresses = [f"localhost:{sock.getsockname()[1]}" for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    return [json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})
            for index in range(workers)]


def local_worker_environment(tf_config: str | None = None, hide_gpus: bool = True) -> dict[str, str]:
    """This process's environment for a worker process started on this machine: ``TF_CONFIG``
    replaced by ``tf_config`` (one of :func:`local_tf_configs`), or removed for a single process
    (an inherited one would make it join a cluster), and the GPUs hidden unless told otherwise."""
    environ = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    if tf_config is not None:
        environ["TF_CONFIG"] = tf_config
    if hide_gpus:
        environ["CUDA_VISIBLE_DEVICES"] = ""
    return environ


def is_chief(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process writes the artifacts: the only process without ``TF_CONFIG`` (or whose
    :func:`make_strategy` runs it alone, TF_CONFIG ignored), the task of type ``"chief"``, or, in a
    cluster without one, worker 0 (TensorFlow's convention)."""
    if environ is None and _in_cluster is False:
        return True
    config = cluster_config(environ)
    if not config:
        return True
    task = config["task"]
    if task["type"] == "chief":
        return True
    return task["type"] == "worker" and task["index"] == 0 and "chief" not in config["cluster"]


def scratch_dir() -> Path:
    """A fresh temporary folder for a non-chief worker's outputs (removed at interpreter exit
    at the latest; :func:`worker_artifacts_dir` removes it as soon as its block ends)."""
    import atexit

    path = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def output_dir(artifacts_dir: str | os.PathLike, environ: Mapping[str, str] | None = None) -> Path:
    """Where this process writes what it produces: ``artifacts_dir`` on the chief, a scratch
    folder on every other worker (all of them run the same code and save the same model, but
    only one copy may land in the artifacts: two writers of one file race)."""
    return Path(artifacts_dir) if is_chief(environ) else scratch_dir()


@contextlib.contextmanager
def worker_artifacts_dir(artifacts_dir: str | os.PathLike,
                         environ: Mapping[str, str] | None = None) -> Iterator[Path]:
    """:func:`output_dir` for a block: on a non-chief worker the scratch folder is removed when
    the block ends, also after an error."""
    path = output_dir(artifacts_dir, environ)
    try:
        yield path
    finally:
        remove_scratch(path, artifacts_dir)


def remove_scratch(path: str | os.PathLike, artifacts_dir: str | os.PathLike) -> None:
    """Remove a worker's scratch folder from :func:`output_dir` (never the artifacts folder)."""
    if Path(path) != Path(artifacts_dir):
        shutil.rmtree(path, ignore_errors=True)


def replica_slice(features: dict[str, Any], labels: Any, replica: Any, count: int) -> tuple[dict[str, Any], Any]:
    """Rows ``[replica * n / count, (replica + 1) * n / count)`` of a global batch of n rows:
    contiguous, in order, sizes differing by at most one row."""
    from toxhelpers.tf_setup import tf

    rows = tf.shape(labels, out_type=tf.int64)[0]
    replica = tf.cast(replica, tf.int64)
    start, stop = replica * rows // count, (replica + 1) * rows // count
    return {name: values[start:stop] for name, values in features.items()}, labels[start:stop]


def distribute_dataset(strategy: Any, make_batches: Callable[[], Any]) -> Any:
    """The global batches ``make_batches()`` builds, split between the strategy's replicas.

    With the default strategy the dataset is returned unchanged (the lesson's one-process path).
    Otherwise every input pipeline (one per worker) calls ``make_batches()`` and, seeded alike,
    gets the same global batches; it keeps its replicas' slices (:func:`replica_slice`), one
    element per local replica, in replica order, as ``distribute_datasets_from_function`` hands
    them out. The batches repeat without end (each pass reshuffled, as Keras' fresh iterator per
    epoch does in one process), so ``fit`` needs ``steps_per_epoch``: a distributed dataset has no
    length Keras can read.

    Caveat: Keras averages the replicas' mean losses, so when a global batch does not divide
    evenly (a bucket's last, partial batch) the rows of a smaller slice weigh a little more than
    in the one-process mean; a one-row batch leaves a replica an empty slice (loss 0), halving
    that step. Full batches, the vast majority, are exactly equivalent.
    """
    from toxhelpers.tf_setup import tf

    if is_default(strategy):
        return make_batches()
    total = replicas(strategy)
    # Keras' one-process fit makes an iterator over the dataset and, before the first epoch,
    # replaces it with a new one, so epoch k trains on the (k+1)-th shuffle of a reshuffling
    # dataset. A distributed dataset is iterated once, so the first pass is skipped to match.
    per_pass = int(make_batches().cardinality())
    if per_pass < 0:
        raise ValueError("make_batches() must give a dataset of known length (batches.training_dataset "
                         f"does), got cardinality {per_pass}")

    def per_pipeline(context: Any) -> Any:
        local = context.num_replicas_in_sync // context.num_input_pipelines
        first = context.input_pipeline_id * local

        def own_slices(features, labels):
            return tf.data.Dataset.range(first, first + local).map(
                lambda replica: replica_slice(features, labels, replica, total))

        return make_batches().repeat().skip(per_pass).flat_map(own_slices)

    return strategy.distribute_datasets_from_function(per_pipeline)


LOW_PRECISION_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16", "amx_fp16")  # /proc/cpuinfo names
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # the instructions that compute in bfloat16 natively


def cpu_description(cpuinfo: str | None = None) -> dict[str, Any]:
    """This CPU's model and its low-precision instruction sets, for run.json and benchmark records.
    ``bf16``: whether ``mixed_bfloat16`` has native instructions here (``None``: unknown, e.g. not
    Linux). Without them TensorFlow emulates bfloat16: on a 2-core Xeon without AVX512_BF16 a
    training step ran 2.5-4x slower than in float32 (benchmarks/results/precision_shapes_*).
    ``family``: vendor, family and model numbers ("AuthenticAMD 26/2"). A virtual machine often
    names its CPU only "AMD EPYC", and two such CPUs with the same AVX512_BF16 flag fine-tuned 3x
    slower and 1.2x faster in bfloat16 (benchmarks/results/precision_lessons_2026-12-07.md): the
    numbers are what tells them apart in a record."""
    import platform

    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return {"model": platform.processor() or None, "family": None, "bf16": None, "low_precision_flags": None}
    fields = dict(line.split(":", 1) for line in cpuinfo.splitlines()[:40] if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set(fields.get("flags", "").split())
    numbers = [fields.get(key) for key in ("vendor_id", "cpu family", "model")]
    return {"model": fields.get("model name") or platform.processor() or None,
            "family": f"{numbers[0]} {numbers[1]}/{numbers[2]}" if all(numbers) else None,
            "bf16": bool(flags & set(BF16_FLAGS)) if flags else None,
            "low_precision_flags": sorted(flags & set(LOW_PRECISION_FLAGS)) if flags else None}


def set_precision(name: str = "float32") -> Any:
    """Set Keras' global dtype policy; every layer built afterwards computes in it. Call before
    building the model. Returns the policy."""
    from toxhelpers.tf_setup import tf_keras

    check_precision(name)
    tf_keras.mixed_precision.set_global_policy(name)
    return tf_keras.mixed_precision.global_policy()
