"""``toxhelpers finetune``: lesson 11 itself, headless, as one process of a (possibly distributed) run.

Not a second training path: the command executes lesson 11 (``artifacts.LESSONS["scaling"]``, lesson
6's fine-tuning under a ``tf.distribute`` strategy) through papermill with ``artifacts_dir``,
``strategy``, ``precision``, ``scaling_rows=0`` (every training row; ``-p scaling_rows=N`` for a
quick check) and any ``-p key=value`` injected, checked like ``toxhelpers run`` checks them. Lessons
1-6 must have run into the artifacts folder first (e.g. ``toxhelpers run --until 06``); every worker
needs that folder (a shared file system, or a copy of it on each machine).

Two processes on one machine (two terminals; the ports are any two free ones):

    TF_CONFIG='{"cluster": {"worker": ["localhost:23456", "localhost:23457"]}, "task": {"type": "worker", "index": 0}}' \\
        toxhelpers finetune --artifacts-dir reports/demo/artifacts --strategy multi_worker
    TF_CONFIG='{"cluster": {"worker": ["localhost:23456", "localhost:23457"]}, "task": {"type": "worker", "index": 1}}' \\
        toxhelpers finetune --artifacts-dir reports/demo/artifacts --strategy multi_worker

Two machines: the same, with ``"worker": ["host1:23456", "host2:23456"]`` on both and index 0 on
host1, 1 on host2. Worker 0 is the chief: it writes lesson 11's artifacts (``scaled/``) and its
executed notebook (``--out``); the others write theirs to a scratch folder that is removed when
they finish.

With Ray (``--engine ray``, the optional extra ``.[ray]``), one command starts them all: Ray Train
starts ``--workers`` processes, gives each its ``TF_CONFIG`` and runs lesson 11 in each
(:mod:`toxhelpers.run.ray_engine`), on this machine or on a Ray cluster (``--ray-address auto``):

    toxhelpers finetune --artifacts-dir reports/demo/artifacts --engine ray --workers 2
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from toxhelpers.artifacts import LESSONS
from toxhelpers.run.errors import UsageError

LESSON = LESSONS["scaling"]  # the notebook, named in the one table of lessons
DEFAULT_OUT = Path("reports") / "finetune" / LESSON


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    from toxhelpers import distribute
    from toxhelpers.run.notebooks import DEFAULT_NOTEBOOKS_DIR

    parser = argparse.ArgumentParser(prog="toxhelpers finetune", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--artifacts-dir", required=True, type=Path,
                        help="the artifacts folder lessons 1-6 wrote (the chief writes lesson 11's there)")
    parser.add_argument("--strategy", default="default", choices=distribute.STRATEGIES)
    parser.add_argument("--precision", default="float32", choices=distribute.PRECISIONS)
    parser.add_argument("-p", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="any other parameter of lesson 11, e.g. -p batch_size=16")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"the chief's executed notebook ({DEFAULT_OUT})")
    parser.add_argument("--notebooks-dir", type=Path, default=DEFAULT_NOTEBOOKS_DIR)
    parser.add_argument("--engine", default="process", choices=ENGINES,
                        help="process: this process is one worker (TF_CONFIG from the environment); "
                             "ray: Ray Train starts --workers workers and gives each its TF_CONFIG")
    parser.add_argument("--workers", type=int, default=None, help="with --engine ray: how many worker processes")
    parser.add_argument("--ray-address", default="local",
                        help="with --engine ray: 'local' (default) starts Ray on this machine; 'auto' joins "
                             "the cluster this machine is part of (ray start, a KubeRay job); or a cluster's address")
    return parser.parse_args(argv)


ENGINES = ("process", "ray")


def check_engine(args: argparse.Namespace) -> None:
    """--workers and --ray-address go with --engine ray, whose workers run ``multi_worker``."""
    if args.engine == "process":
        if args.workers is not None:
            raise UsageError("--workers goes with --engine ray (with --engine process, TF_CONFIG names the workers)")
        return
    if args.workers is None or args.workers < 1:
        raise UsageError(f"--engine ray needs --workers N (an integer >= 1), got {args.workers}")
    if args.strategy == "default":
        args.strategy = "multi_worker"
    if args.strategy != "multi_worker":
        raise UsageError(f"--engine ray runs one process per worker: --strategy multi_worker, got {args.strategy}")
    from toxhelpers.run import ray_engine

    ray_engine.require_ray()


def lesson_parameters(args: argparse.Namespace, notebook: Path) -> dict[str, Any]:
    """The parameters to inject, checked against lesson 11's parameters cell and the run rules."""
    from toxhelpers.recording import declared_parameters, parameters_cell
    from toxhelpers.run import checks
    from toxhelpers.run.parameters import parse_value, split_override

    declared = declared_parameters(parameters_cell(notebook))
    typed = dict(split_override(text) for text in args.overrides)
    for key in ("artifacts_dir", "strategy", "precision"):
        if key in typed:
            raise UsageError(f"-p {key}=...: use --{key.replace('_', '-')} instead")
    unknown = sorted(set(typed) - set(declared))
    if unknown:
        raise UsageError(f"-p {', '.join(unknown)}: not a parameter of {notebook.name}; it has {', '.join(declared)}")
    values = {"scaling_rows": 0, **{key: parse_value(text) for key, text in typed.items()}}
    values.update(strategy=args.strategy, precision=args.precision)
    try:
        values = checks.checked_values(values, {notebook.name: declared}, typed)
    except checks.ParameterError as error:
        raise UsageError(str(error)) from None
    return {"artifacts_dir": str(args.artifacts_dir.resolve()), **values}


# What lesson 11 reads from lessons 3-6: checked before a kernel starts.
NEEDED = (("tokenized_for", {}), ("tokens", {"split": "validation"}), ("phase1_spec", {}), ("phase1_head", {}),
          ("phase1_head_weights", {}), ("finetuned_metrics", {}))


def check_earlier_lessons(artifacts_dir: Path) -> None:
    """The artifacts lesson 11 reads must be there (one line naming the first missing one and the
    lesson that writes it), rather than a kernel failing on them minutes in."""
    from toxhelpers.artifacts import artifact, artifact_path

    if not artifacts_dir.is_dir():
        raise UsageError(f"--artifacts-dir {artifacts_dir}: no such folder; run lessons 1-6 into it first")
    for name, fields in NEEDED:
        path = artifact_path(artifacts_dir, name, **fields)
        if not path.exists():
            raise UsageError(f"--artifacts-dir {artifacts_dir}: no {path.relative_to(artifacts_dir)} (written by "
                             f"{artifact(name).produced_by}); run lessons 1-6 into it first, e.g. "
                             "toxhelpers run --until 06")


def lesson_outputs(artifacts_dir: Path) -> list[Path]:
    """What an earlier run of the lesson left in ``artifacts_dir``: the table's artifacts of lesson
    11 and its record. Removed before the chief runs it again, as ``toxhelpers run`` does, so a failed
    run never leaves new weights beside an old spec, or old predictions beside a new model."""
    from toxhelpers.artifacts import ARTIFACTS

    section = next(name for name, notebook in LESSONS.items() if notebook == LESSON)
    patterns = [item.path.format(split="*") for item in ARTIFACTS.values() if item.produced_by == LESSON]
    patterns.append(f"metrics/{section}.json")
    return sorted({path for pattern in patterns for path in artifacts_dir.glob(pattern)})


def remove_outputs(paths: list[Path]) -> None:
    import shutil

    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def report_lock_folder(artifacts_dir: Path) -> Path:
    """The folder whose lock ``toxhelpers run`` holds while it writes these artifacts: the
    report's (``<out>/artifacts``), else the artifacts folder itself."""
    from toxhelpers.run.run_folder import is_report

    parent = artifacts_dir.parent
    return parent if artifacts_dir.name == "artifacts" and is_report(parent) else artifacts_dir


def main(argv: list[str]) -> int:
    """Run lesson 11 once in this process's role (chief or not, from ``TF_CONFIG``), or with
    ``--engine ray`` start its workers, with the checks, lock, messages and replacement of old
    outputs of ``toxhelpers run``."""
    from toxhelpers import distribute
    from toxhelpers.run.run_folder import check_not_below_a_file, locked

    args = parse_arguments(argv)
    artifacts_dir = args.artifacts_dir.expanduser().resolve()
    out = args.out.expanduser().resolve()
    try:
        notebook = args.notebooks_dir / LESSON
        if not notebook.is_file():
            raise UsageError(f"no {LESSON} in {args.notebooks_dir}; point --notebooks-dir at the lessons")
        check_engine(args)
        parameters = lesson_parameters(args, notebook)
        check_not_below_a_file(out.parent, "--out", out)
        if args.engine == "ray":  # this process only starts the workers; Ray gives each its TF_CONFIG
            check_earlier_lessons(artifacts_dir)
            with locked(report_lock_folder(artifacts_dir)):
                remove_outputs(lesson_outputs(artifacts_dir))
                return run_ray_workers(args.workers, notebook, out, parameters, args.ray_address)
        notice = distribute.ignored_tf_config(args.strategy)
        if notice:  # one process: this command and its kernel both run alone, as the chief
            print(f"note: {notice}", file=sys.stderr)
            os.environ.pop("TF_CONFIG")
        distribute.cluster_config()  # a broken TF_CONFIG, said before a kernel starts
        check_earlier_lessons(artifacts_dir)
        chief = distribute.is_chief()
        with locked(report_lock_folder(artifacts_dir)) if chief else contextlib.nullcontext():
            if chief:
                remove_outputs(lesson_outputs(artifacts_dir))
            return run_lesson(notebook, out, parameters)
    except (UsageError, ValueError) as error:
        print(f"toxhelpers finetune: error: {error}", file=sys.stderr)
        return 2


def run_lesson(notebook: Path, out: Path, parameters: dict[str, Any]) -> int:
    """Lesson 11 through papermill on this interpreter's kernel; a failure is one message (the
    cell, the line, the error), exit status 1, the partial notebook kept."""
    import papermill

    from toxhelpers import distribute
    from toxhelpers.run.execute import describe_failure, kernel_arguments

    with distribute.worker_artifacts_dir(out.parent) as folder:
        folder.mkdir(parents=True, exist_ok=True)
        executed = folder / out.name
        try:
            papermill.execute_notebook(str(notebook), str(executed), parameters=parameters, cwd=str(notebook.parent),
                                       progress_bar=False, log_output=True, **kernel_arguments())
        except Exception as error:  # papermill's cell error, a dead kernel
            failure = describe_failure(notebook, error)
            where = f" in {failure.cell}" if failure.cell else ""
            line = f"\n    {failure.source_line}" if failure.source_line else ""
            kept = f"partial notebook kept: {executed}" if distribute.is_chief() else "(a worker's scratch folder)"
            print(f"toxhelpers finetune: FAILED: {notebook.name}{where}:{line}\n  {failure.error}\n  {kept}",
                  file=sys.stderr)
            return 1
    return 0


def run_ray_workers(workers: int, notebook: Path, out: Path, parameters: dict[str, Any], address: str) -> int:
    """Lesson 11 on ``workers`` Ray workers (:mod:`toxhelpers.run.ray_engine`); a worker's failure
    (already printed by that worker, see :func:`run_lesson`) is one line here and exit status 1."""
    from toxhelpers.run import ray_engine

    try:
        ray_engine.run_workers(workers, notebook, out, parameters, address)
    except ray_engine.WorkerFailed as error:
        print(f"toxhelpers finetune: FAILED: {error}", file=sys.stderr)
        return 1
    return 0
