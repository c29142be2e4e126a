"""graphgrad derive: the backprop equations of a model, or one derivative."""

from __future__ import annotations

import argparse

from ..errors import InputError
from ..symbolic import backprop, derivative
from .common import add_model, check_names, load_model

HELP = "print the backprop equations of --of (or, with --wrt, one derivative), in Unicode or LaTeX"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``graphgrad derive``."""
    add_model(p)
    p.add_argument("--of", metavar="NAME", required=True, help="the output to differentiate (e.g. L)")
    p.add_argument("--wrt", metavar="NAME", help="print ∂of/∂wrt as one expression instead of the equations")
    p.add_argument("--latex", action="store_true", help="print LaTeX instead of Unicode")
    p.add_argument("--expand", action="store_true",
                   help="with --wrt: write the derivative in inputs, params and consts alone")
    p.add_argument("--consts", action="store_true", help="also print the adjoints of consts")
    p.add_argument("--show-trivial", action="store_true",
                   help="show the trivial factors SymPy folds (½ · 2, ‖u‖ / ‖u‖)")
    p.add_argument("--prime", choices=("symbol", "sigmoid", "output"), default="symbol",
                   help="write σ′(z) as σ′(z) (symbol), σ(z) ⊙ (1 − σ(z)) (sigmoid) or h ⊙ (1 − h) (output)")


def run(args: argparse.Namespace) -> int:
    """Run ``graphgrad derive``."""
    if args.expand and not args.wrt:
        raise InputError("--expand applies only with --wrt", hint="add --wrt NAME, or drop --expand")
    graph = load_model(args.model)
    check_names(graph, [args.of], "--of")
    if args.wrt:
        check_names(graph, [args.wrt], "--wrt")
        d = derivative(graph, args.of, args.wrt, expand=args.expand, prime=args.prime)
        print(d.latex() if args.latex else d)
        return 0
    eqs = backprop(graph, args.of, consts=args.consts, fold=not args.show_trivial, prime=args.prime)
    print(eqs.latex() if args.latex else eqs)
    return 0
