"""``toxhelpers run``: execute the lessons headless, in order, into one report folder.

    python -m toxhelpers run                       # the README walkthrough: profile "demo"
    python -m toxhelpers run --profile smoke       # minutes, tiny, proves the pipeline runs
    python -m toxhelpers run --profile full --data-dir data/jigsaw-toxic-comment-classification-challenge
    python -m toxhelpers run --config my.yaml -p seed=7 -p max_length=64 --out reports/seed7
    python -m toxhelpers run --profile smoke --verbose   # every cell's output, as it streams

Parameters
    One parameter set drives the whole run: a named profile (``toxhelpers/profiles/*.yaml``, or a
    path to such a file), then ``--config FILE.yaml`` (same format: ``description`` and a
    ``parameters`` mapping), then ``-p key=value`` (values parsed as YAML), later ones winning.
    Each notebook receives only the keys its ``parameters`` cell declares, plus ``artifacts_dir``
    (always ``<out>/artifacts``, set by the runner). ``-p 06.epochs=2`` (or ``06_finetuning.epochs``,
    also as a key in a profile or config file) sets a key for that notebook only; within one source
    it wins over the plain key, and a plain key from a later source replaces it. A plain key that
    selected notebooks declare with different defaults is refused as ambiguous (the lessons keep
    one default per name), and so is a ``-p`` value that reaches none of the selected notebooks
    (``-p strategy=mirrored --until 06``: lesson 11 alone takes it). A key that no notebook declares is an error,
    so a typo never silently runs the defaults. Every value is checked before the first notebook
    starts, against the type of the notebooks' default and the range or choices known for it
    (:mod:`toxhelpers.run.checks`; ``2e-5`` is a number, ``-p label_rule=no`` the text
    "no"); a bad one stops the run with exit status 2. String values of keys ending in ``_dir``,
    ``_path`` or ``_file`` are made absolute against the directory the command is run from
    (notebooks execute with ``notebooks/`` as their working directory); so is a ``checkpoint`` or
    ``contextual_checkpoint`` that names a folder existing there (anything else is a hub name).

Output folder (``--out``, default ``reports/<profile>``)
    summary.md            one page: headline metrics vs. the majority baseline and the article's
                          published numbers, data files and weights used, wall time per notebook
    metrics.json          every value the notebooks recorded, ``{"<section>.<key>": value}``
    parameters.yaml       the resolved parameter set (reusable as ``--config``)
    run.json              status, per-notebook parameters / status / wall time / peak memory (and
                          ``memory_rises``: each cell that raised it, with the level it reached) /
                          rerun reason, package versions, code hash and git commit, data files and
                          pretrained weights with sha256, peak kernel memory, total wall time. A
                          reused notebook keeps the wall time and peak memory of the run that
                          executed it, with ``measured_in: "earlier run"`` ("this run" for one that
                          executed now; summary.md shows earlier ones in italics)
    notebooks/NN_*.ipynb  the executed notebooks (a failed one is kept, partially executed)
    html/NN_*.html        nbconvert HTML rendering of each executed notebook
    figures/*.png         the figures the notebooks recorded
    logs/NN_*.log         each notebook's full cell output (stdout/stderr) as it streamed
    artifacts/            what the lessons hand each other (splits, models, per-notebook records)
    .state/, .lock        resume manifests, file ownership, the one-run-at-a-time lock (internal)
    .toxhelpers-report    marks the folder as a report: --out refuses a non-empty folder without it

Terminal output (stderr)
    One line per notebook as it starts (``[k/N] NN_name.ipynb ... (running because ...)``) and
    finishes (``done in X s, peak memory Y MB``), then a table of every notebook. By default,
    while a notebook runs, its cells are shown executing: on a terminal one line redrawn in place
    (a bar, cells done, the running cell's first source line and its time so far); when stderr is
    not a terminal (CI, a log file) one plain line per code cell as it starts, with the time since
    the notebook started. ``--verbose`` streams every cell's full output instead, as a notebook
    shows it; ``--quiet`` shows neither. The full output is always in ``logs/``.

Values come from :class:`toxhelpers.recording.Recorder` files (``artifacts/metrics/<section>.json``)
that the notebooks write, never from scraping cell output.

Resume
    Rerunning into the same folder skips a notebook when its manifest (``.state/NN_*.json``, which
    also keeps the execution's wall seconds and peak memory for the report) says it completed with
    (1) the same key: the notebook's cell sources, the parameters it received (``artifacts_dir``
        relative to the report, so a moved or copied report resumes), the toxhelpers modules it
        imports, directly or through other modules (an edit to lesson 12's ``keras3.py`` leaves
        lessons 1-11 reused), with the package's ``__init__`` files and the data shipped with it
        (never this ``run`` package, ``profiles/`` or ``__main__.py``), the key package versions, the kernel, the data folder ``data_dir``
        resolves to (so a newly downloaded data set is not ignored), and the files in each other
        ``*_dir`` folder it receives (``templates_dir``);
    (2) the same inputs: every artifact file that existed when it ran, except files written by
        itself or by later notebooks, still has the same sha256 (a lesson's record,
        ``metrics/<section>.json``, compared without its peak memory and timings, which differ on
        every execution); and the data files and weights
        its record lists as inputs (``recorder.input``) re-hash the same;
    (3) its outputs intact: every artifact file it created or rewrote, its executed notebook and
        its HTML are present with the recorded sha256, and no file that no lesson wrote sits in a
        folder of its own outputs.
    Before anything runs, an earlier notebook the selection leaves out (``--only``, ``--from``)
    must have its recorded outputs intact, or the run stops naming the file and the notebook.
    Anything else reruns it, and the reason is printed. Inputs are compared by content, so after a
    rerun a later notebook reruns only if what it reads actually changed (a notebook's record holds
    its parameters, so a parameter change always reaches the notebooks after it). ``--force``
    reruns everything.
    Which notebook wrote which file is kept in ``.state/owners.json``, also for a notebook that
    failed or was interrupted, so files a broken run left behind never count as an earlier
    notebook's inputs. A notebook's manifest is deleted before it runs and written only after it
    and its HTML completed; every artifact is written atomically (temp file + rename; leftover
    temp and hidden files are ignored), so an interrupted or failed run never leaves anything a
    resume would trust. Before a rerun, the files the notebook wrote last time are deleted, so no
    stale output survives.
    Training checkpoints (``artifacts/.checkpoints/``, parameter ``checkpoint_every`` of lessons 5,
    6 and 12) are not outputs: a lesson interrupted mid-fit (Ctrl-C, SIGTERM, SIGKILL) and rerun with
    the same key and inputs goes on from its last saved step. With another key or other inputs, or
    ``--force``, they are removed before the lesson starts (``.state/NN_*.attempt.json`` holds the
    last execution's key and inputs).
    Not detected: a file appearing that an unchanged notebook would read but did not exist when it
    ran, and a hub checkpoint name resolving to other weights than last time (e.g. the hub became
    reachable after an offline run used the bundled fallback). Use ``--force`` for those.

Reproducibility
    Same parameters and seed give identical splits (``data.split_hash.*``; tests check it) and
    metrics within ``--tolerance``: absolute, default 1e-3 on floats; counts, hashes and texts
    must match exactly; timings (keys with ``seconds``, ``_per_s``, ``speedup``, ``timing.``,
    ``throughput.``) are not compared. Two smoke runs of lessons 1-6 on one machine agreed
    exactly on every other metric; the tolerance leaves room for other CPUs and thread counts.
    ``--compare-to OTHER_RUN`` checks a run against another (exit status 3 when they differ); its
    metrics.json is read, and ``--tolerance`` checked (>= 0), before anything runs.

Exit status: 0 done, 1 a notebook failed, 2 bad command line or parameters, 3 metrics differ from
``--compare-to``, 130 interrupted by Ctrl-C, 143 by SIGTERM (handled alike: the kernel is stopped,
the report says "interrupted"). run.json says "running" while a run goes on; a run killed outright
is reported by the next run or ``--dry-run``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from toxhelpers.run.compare import DEFAULT_TOLERANCE
from toxhelpers.run.errors import UsageError
from toxhelpers.run.notebooks import DEFAULT_NOTEBOOKS_DIR
from toxhelpers.run.orchestrate import RunOptions, run
from toxhelpers.run.parameters import DEFAULT_PROFILE, available_profiles
from toxhelpers.run.progress import say


def build_parser() -> argparse.ArgumentParser:
    """``toxhelpers run``'s options (their documentation is ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="toxhelpers run",
        description="Run the lesson notebooks in order through papermill with one parameter set, "
                    "into a report folder (executed notebooks, HTML, figures, metrics.json, summary.md). "
                    "Rerunning into the same folder skips notebooks whose parameters and inputs are unchanged.",
        epilog=f"Profiles: {', '.join(available_profiles())}. Precedence: profile < --config < -p. "
               "Exit status: 0 done, 1 a notebook failed, 2 bad arguments, 3 metrics differ from --compare-to, "
               "130/143 interrupted (Ctrl-C/SIGTERM).")
    parser.add_argument("--profile", default=DEFAULT_PROFILE, metavar="NAME",
                        help=f"named profile ({', '.join(available_profiles())}) or a profile .yaml file "
                             f"(default: {DEFAULT_PROFILE})")
    parser.add_argument("--config", metavar="FILE.yaml", help="parameters overriding the profile (same format)")
    parser.add_argument("-p", "--param", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="one parameter, value parsed as YAML; repeat for more (wins over profile and config); "
                             "NN.KEY=VALUE for notebook NN only")
    parser.add_argument("--data-dir", metavar="DIR", help="shortcut for -p data_dir=DIR")
    parser.add_argument("--out", metavar="DIR", help="report folder (default: reports/<profile>)")
    parser.add_argument("--force", action="store_true",
                        help="rerun every selected notebook, ignoring earlier results")
    parser.add_argument("--only", action="append", default=[], metavar="NB",
                        help="run only these notebooks (number or name, comma-separated or repeated)")
    parser.add_argument("--from", dest="start", metavar="NB", help="start at this notebook")
    parser.add_argument("--until", dest="stop", metavar="NB", help="stop after this notebook")
    parser.add_argument("--notebooks-dir", default=str(DEFAULT_NOTEBOOKS_DIR), metavar="DIR",
                        help="where the NN_name.ipynb lessons are (default: the repository's notebooks/)")
    parser.add_argument("--dry-run", action="store_true",
                        help="show each notebook's parameters and whether it would run")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--verbose", action="store_true",
                       help="stream every cell's full output to the terminal (default: one progress line "
                            "per notebook showing its cells; the full output is always in logs/)")
    shown.add_argument("--quiet", action="store_true",
                       help="show only a line per notebook and the final table (output still in logs/)")
    parser.add_argument("--compare-to", metavar="RUN_DIR",
                        help="after the run, compare metrics.json with another run's")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help=f"absolute tolerance on float metrics for --compare-to (default {DEFAULT_TOLERANCE})")
    return parser


def options_from_args(args: argparse.Namespace) -> RunOptions:
    """The parsed command line as :class:`RunOptions` (``--data-dir`` is one more ``-p``)."""
    overrides = list(args.overrides)
    if args.data_dir:
        overrides.append(f"data_dir={Path(args.data_dir).expanduser().resolve()}")
    return RunOptions(profile=args.profile, config=args.config, overrides=overrides, out=args.out,
                      notebooks_dir=args.notebooks_dir, only=args.only, start=args.start, stop=args.stop,
                      force=args.force, quiet=args.quiet, verbose=args.verbose, dry_run=args.dry_run,
                      compare_to=args.compare_to, tolerance=args.tolerance)


def main(argv: Sequence[str] | None = None) -> int:
    """``toxhelpers run``: returns the exit status (see the module docstring)."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        result = run(options_from_args(args))
    except UsageError as error:
        print(f"toxhelpers run: error: {error}", file=sys.stderr)
        return 2
    for line in result.differences:
        say(f"differs from {args.compare_to}: {line}")
    if result.differences:
        say(f"{len(result.differences)} metric(s) differ beyond tolerance {args.tolerance} (timings not compared)")
    elif result.compared:
        say(f"metrics match {args.compare_to} within tolerance {args.tolerance} (timings not compared)")
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
