"""Command line: ``spinecore info | convert | localise | grade | extract | bench | phantom | … | train | evaluate | …``.

One module per command group (:mod:`~.user`, :mod:`~.data`, :mod:`~.training`), each declaring
its subcommands on their handlers (:class:`~.common.Commands`); handlers parse, call the library
and report. Here: the parser and error-to-exit-code only. Input problems print one line
``spinecore: error: <file>: <reason>`` on stderr and exit with code 2.
"""
from __future__ import annotations

import argparse
import logging
import shlex
import sys

from spinecore import __version__
from spinecore.cli import batch, data, selfsupervision, serve, training, user
from spinecore.errors import SpineCoreError, brief

EXIT_INPUT_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spinecore", description="Lumbar spine MRI analysis (SpineNet).")
    parser.add_argument("--version", action="version", version=f"spinecore {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and skipped files")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (user, batch, serve, data, training, selfsupervision):
        group.COMMANDS.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(["spinecore", *argv])  # recorded in model files
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="spinecore: %(message)s")
    try:
        return args.run(args)
    except SpineCoreError as exc:
        print(f"spinecore: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print("spinecore: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # unreadable/unwritable paths, disk full...
        print(f"spinecore: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except Exception as exc:  # a bug, not the user's input: still one line unless -v asks for details
        if args.verbose:
            raise
        print(f"spinecore: internal error: {type(exc).__name__}: {brief(exc)} (rerun with -v for details and "
              "please report it)", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
