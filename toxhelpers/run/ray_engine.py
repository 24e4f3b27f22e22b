"""``toxhelpers finetune --engine ray --workers N``: lesson 11 as N workers that Ray Train starts.

Ray Train's ``TensorflowTrainer`` starts N worker processes (on this machine, on a cluster of VMs
joined with ``ray start``, or on Kubernetes through KubeRay), writes each one's ``TF_CONFIG``
(the cluster's addresses and the worker's index) and runs one function in each. Here that
function is what ``toxhelpers finetune --strategy multi_worker`` does in one process: it executes
lesson 11 through papermill, whose kernel inherits the worker's ``TF_CONFIG`` and builds its
``MultiWorkerMirroredStrategy`` from it. So the training code is lesson 11's, unchanged; Ray only
starts the processes and tells them where the others are. Worker 0 is the chief: it writes lesson
11's artifacts and the executed notebook; every other worker writes to a scratch folder that is
removed (:func:`toxhelpers.distribute.worker_artifacts_dir`).

Every worker needs the same environment (this package, its pinned dependencies, Ray) and the
artifacts folder of lessons 1-6 at the same path: on one machine that is given; on a cluster,
a shared file system (or a copy on each node at the same path).

Ray is an optional extra: ``pip install -c constraints.txt -e ".[ray]"`` (or
``TOXHELPERS_EXTRAS=dev,contextual,ray ./dev setup``); the default install leaves it out.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from toxhelpers.run.errors import UsageError

LOCAL = "local"  # --ray-address: start Ray on this machine for this run
STARTS = 3  # attempts at starting a local Ray (see start_local_ray)
RUN_NAME = "toxhelpers-finetune"


class WorkerFailed(Exception):
    """A Ray worker's lesson 11 failed (the worker printed which cell and why)."""


def require_ray() -> None:
    """Ray importable, or one error saying how to install it."""
    try:
        import ray  # noqa: F401
        import ray.train  # noqa: F401
    except ImportError as error:
        raise UsageError(f"--engine ray needs Ray Train ({error}): pip install -c constraints.txt -e \".[ray]\" "
                         "(or TOXHELPERS_EXTRAS=dev,contextual,ray ./dev setup)") from None


def run_workers(workers: int, notebook: Path, out: Path, parameters: dict[str, Any], address: str = LOCAL,
                cpus_per_worker: float = 1.0) -> None:
    """Execute lesson 11 on ``workers`` Ray workers, one ``MultiWorkerMirroredStrategy`` replica
    each; returns when all have finished, raises :class:`WorkerFailed` if one failed.
    ``address``: ``"local"`` starts a Ray instance on this machine (with enough logical CPUs for
    the workers, even on a small laptop: they then share its cores); ``"auto"`` joins the cluster this machine belongs to
    (``ray start``, or a KubeRay job's ``RAY_ADDRESS``); or a cluster's address."""
    import ray
    from ray.train import RunConfig, ScalingConfig, TrainingFailedError
    from ray.train.tensorflow import TensorflowTrainer

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise UsageError(f"--workers must be an integer >= 1, got {workers!r}")
    local = address == LOCAL
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING"}
    if local:  # logical CPUs: enough for every worker; the object store is unused here, keep it small
        options.update(num_cpus=max(os.cpu_count() or 1, int(workers * cpus_per_worker + 0.999)),
                       object_store_memory=100 * 1024 ** 2)
        start_local_ray(options)
    else:
        ray.init(address=address, **options)
    try:
        trainer = TensorflowTrainer(
            run_lesson_on_worker,
            train_loop_config={"notebook": str(notebook.resolve()), "out": str(out.resolve()), "parameters": parameters},
            # SPREAD: one worker per node while there are nodes (a soft preference; on one machine, all there)
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=False, resources_per_worker={"CPU": cpus_per_worker},
                                         placement_strategy="SPREAD"),
            run_config=RunConfig(name=RUN_NAME, storage_path=str(out.resolve().parent / "ray")))
        try:
            trainer.fit()
        except TrainingFailedError as error:
            raise WorkerFailed(f"a Ray worker failed: {error}") from None
    finally:
        if local:
            ray.shutdown()


def start_local_ray(options: dict[str, Any], attempts: int = STARTS) -> None:
    """``ray.init`` of a new Ray on this machine, tried again when its node fails to start in time.

    Ray's node process waits a fixed 15 s for its dashboard agent, which on a busy machine can
    take longer to start (ray-project/ray#65983); the node then exits and ``ray.init`` fails with
    "The current node timed out during startup". A fresh attempt usually starts."""
    import ray

    for attempt in range(1, attempts + 1):
        try:
            ray.init(address=LOCAL, **options)
            return
        except Exception as error:  # noqa: BLE001 - Ray raises a bare Exception for this
            if "timed out during startup" not in str(error) or attempt == attempts:
                raise
            print(f"Ray's node did not start in time (attempt {attempt} of {attempts}, a known Ray issue on a busy "
                  "machine: ray-project/ray#65983); starting it again", file=sys.stderr)
            ray.shutdown()


def run_lesson_on_worker(config: dict[str, Any]) -> None:
    """One Ray worker: lesson 11 in this worker's role (Ray has set ``TF_CONFIG``)."""
    from toxhelpers.run.finetune import run_lesson

    if run_lesson(Path(config["notebook"]), Path(config["out"]), config["parameters"]) != 0:
        raise RuntimeError(f"lesson 11 failed on this worker ({os.environ.get('TF_CONFIG', 'no TF_CONFIG')})")
