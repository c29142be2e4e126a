"""The ``graphgrad`` command line: one module per subcommand, found by name.

Each ``graphgrad/cli/<command>.py`` defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Bad input prints one line ``graphgrad: error: ...`` (``graphgrad <command>:
error: ...`` for a bad flag) to stderr and exits with 2; no traceback reaches the user. That
happens in one place, :func:`main`: a :class:`~graphgrad.errors.GraphgradError` (bad input or a
bad request), an ``OSError`` (a file that cannot be written, a full disk), a ``MemoryError`` or a
``RecursionError`` (input too large or too deeply nested). Any other exception is a bug in
graphgrad and keeps its traceback. ``GRAPHGRAD_TRACEBACK=1`` shows the traceback of every error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from ..errors import GraphgradError

COMMANDS = ("demo", "eval", "derive", "check", "render", "codegen", "ops")


def _epilog() -> str:
    from .common import MAX_JSON_BYTES, MAX_MODEL_BYTES, MAX_NPZ_BYTES, MAX_SIZE, MiB

    return ("Bad input ends with exit status 2 and one line on stderr: graphgrad: error: what is wrong "
            "(fix: what to do). Files read must be regular files (not FIFOs or devices): models of at most "
            f"{MAX_MODEL_BYTES // MiB} MiB, .json inputs of at most {MAX_JSON_BYTES // MiB} MiB, .npz inputs of "
            f"at most {MAX_NPZ_BYTES // MiB} MiB. --size values are 1 to {MAX_SIZE:,}. "
            "GRAPHGRAD_TRACEBACK=1 shows the traceback of an error.")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line usage errors: ``graphgrad eval: error: ... (fix: see graphgrad eval --help)``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        message = " ".join(str(message).split())
        if "(fix:" not in message:
            message += f" (fix: see {self.prog} --help)"
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    from .. import __version__

    parser = ArgumentParser(
        prog="graphgrad",
        description="Computation graphs for learning backpropagation: derive, render, evaluate, compile.",
        epilog=_epilog(),
    )
    parser.add_argument("--version", action="version", version=f"graphgrad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
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


def _error(message: str) -> int:
    """Print one error line (whatever the message holds) and give the exit status of bad input."""
    print("graphgrad: error: " + " ".join(str(message).split()), file=sys.stderr)
    return 2


def _os_error(e: OSError) -> str:
    what = e.strerror or str(e) or type(e).__name__
    name = e.filename if e.filename is not None else None
    return f"{what}: {os.fsdecode(name)!r}" if isinstance(name, (str, bytes)) else f"cannot write the output: {what}"


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's final flush of what could not be written (a
    closed pipe, a full disk) does not print 'Exception ignored ...' after the error line."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):  # not a real file (pytest's capture): nothing to do
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``graphgrad`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return _error("say which command to run (fix: e.g. graphgrad demo; graphgrad COMMAND --help for one)")
    if os.environ.get("GRAPHGRAD_TRACEBACK", "") not in ("", "0"):
        return int(args._run(args) or 0)
    try:
        rc = int(args._run(args) or 0)
        sys.stdout.flush()  # a full disk or a closed pipe shows here, not after main returns
        return rc
    except GraphgradError as e:
        return _error(str(e))
    except KeyboardInterrupt:
        print("graphgrad: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # graphgrad ... | head: the reader has all it wants
        _silence_stdout()
        return 0
    except OSError as e:
        try:
            sys.stdout.flush()  # what was printed before the failure still goes out
        except OSError:  # the failure was stdout's own
            _silence_stdout()
        return _error(_os_error(e) + " (fix: check the path, the permissions and the free space)")
    except MemoryError:
        return _error("out of memory (fix: use smaller sizes, inputs or models)")
    except RecursionError:
        return _error("the input is too deeply nested to process (fix: split expressions into named steps)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
