"""The `diffhw` command line: one module per command, each with
``COMMANDS = {name: (add_parser, run)}``, where ``add_parser(subparsers, common)``
registers the command (``common`` adds the shared design flags) and ``run(args)`` runs
it. Names, options and JSON keys are a public contract."""

import argparse
import logging
import os
import sys

from .._errors import InputError
from . import _calibrate, _evaluate, _presets, _sensitivity, _serve, _size, _sweep
from ._cache import enable_compilation_cache
from ._common import add_design_flags, check_numbers, check_output_paths

#: Every command, in the order `diffhw --help` lists them.
COMMANDS = {**_evaluate.COMMANDS, **_serve.COMMANDS, **_presets.COMMANDS, **_size.COMMANDS, **_sensitivity.COMMANDS,
            **_sweep.COMMANDS, **_calibrate.COMMANDS}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage is a ``--help`` away), exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _parser():
    ap = _Parser(prog="diffhw", description="Differentiable cost model of LLM inference hardware.")
    sub = ap.add_subparsers(dest="command")
    for add, _ in COMMANDS.values():
        add(sub, add_design_flags)
    return ap


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 0
    try:
        check_numbers(args)
        check_output_paths(args)
        COMMANDS[args.command][1](args)
    except InputError as e:
        print(f"diffhw: error: {e}", file=sys.stderr)
        return 2
    return 0


def console():
    """The ``diffhw`` console script: `main` with the persistent compilation cache on
    (`diffhw._cli._cache`)."""
    enable_compilation_cache()
    _leave(main())


def _leave(code):
    """Exit with `code` once the output is flushed, skipping the interpreter's teardown:
    freeing JAX's compiled programs and XLA's CPU client took 0.3-0.5 s after every
    command had printed its answer (2-core CPU; `diffhw size` warm 2.8-3.4 s -> 2.5-2.6).
    Only after a normal return: an error's traceback still exits the usual way. Nothing
    is left unwritten: files are closed where written, and JAX's and diffhw's caches are
    written when each program is compiled."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # a closed pipe (`diffhw ... | head`)
            code = code or 1
    os._exit(code)
