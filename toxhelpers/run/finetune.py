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


def main(argv: list[str]) -> int:
    """Run lesson 11 once in this process's role (chief or not, from ``TF_CONFIG``)."""
    from toxhelpers import distribute

    args = parse_arguments(argv)
    try:
        notebook = args.notebooks_dir / LESSON
        if not notebook.is_file():
            raise UsageError(f"no {LESSON} in {args.notebooks_dir}; point --notebooks-dir at the lessons")
        if not args.artifacts_dir.is_dir():
            raise UsageError(f"--artifacts-dir {args.artifacts_dir}: no such folder; run lessons 1-6 into it first")
        check_engine(args)
        parameters = lesson_parameters(args, notebook)
        if args.engine == "process":
            distribute.cluster_config()  # a broken TF_CONFIG, said before a kernel starts
    except (UsageError, ValueError) as error:
        print(f"toxhelpers finetune: {error}", file=sys.stderr)
        return 2
    if args.engine == "ray":
        from toxhelpers.run import ray_engine

        ray_engine.run_workers(args.workers, notebook, args.out, parameters, args.ray_address)
        return 0
    execute_lesson(notebook, args.out, parameters)
    return 0


def execute_lesson(notebook: Path, out: Path, parameters: dict[str, Any]) -> None:
    """Lesson 11 through papermill in this process's role: the chief writes the executed notebook
    to ``out``, another worker to a scratch folder removed afterwards."""
    import papermill

    from toxhelpers import distribute

    out = out.resolve()
    with distribute.worker_artifacts_dir(out.parent) as folder:
        folder.mkdir(parents=True, exist_ok=True)
        papermill.execute_notebook(str(notebook), str(folder / out.name), parameters=parameters,
                                   cwd=str(notebook.parent), progress_bar=False, log_output=True)
