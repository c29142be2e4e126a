"""graphgrad ops: the op table."""

from __future__ import annotations

import argparse

from ..ops import OPS

HELP = "list the ops graphgrad knows, with their arity and meaning"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``graphgrad ops``."""
    p.add_argument("--all", action="store_true", help="include the internal ops of the reverse pass")


def run(args: argparse.Namespace) -> int:
    """Run ``graphgrad ops``."""
    for name, s in OPS.items():
        if s.public or args.all:
            print(f"  {name:<9} {s.arity}  {s.render.symbol:<6} {s.doc}")
    return 0
