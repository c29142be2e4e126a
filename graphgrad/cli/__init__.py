"""The ``graphgrad`` command line: one module per subcommand, found by name.

Each ``graphgrad/cli/<command>.py`` defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Bad input prints one line ``graphgrad: error: ...`` and exits with 2;
no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ..errors import GraphgradError

COMMANDS = ("demo", "eval", "derive", "check", "render", "codegen", "ops")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="graphgrad",
        description="Computation graphs for learning backpropagation: derive, render, evaluate, compile.",
    )
    parser.add_argument("--version", action="version", version=f"graphgrad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:  # a subcommand whose module is not there yet
            if e.name != f"{__name__}.{name}":
                raise
            continue
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``graphgrad`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except GraphgradError as e:
        print(f"graphgrad: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("graphgrad: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
