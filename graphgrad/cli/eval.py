"""graphgrad eval: values and gradients of a model."""

from __future__ import annotations

import argparse

from ..api import value_and_grad
from ..errors import InputError
from ..interpret import evaluate
from .common import add_inputs, add_model, check_names, fmt_array, model_and_inputs, shape_text

HELP = "evaluate a model: print every named value, and gradients of --of with respect to --wrt"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``graphgrad eval``."""
    add_model(p)
    p.add_argument("--of", metavar="NAME", help="scalar output to differentiate (e.g. L)")
    p.add_argument("--wrt", metavar="NAME", nargs="+", help="variables to differentiate with respect to "
                   "(default: every input, param and const)")
    add_inputs(p)


def run(args: argparse.Namespace) -> int:
    """Run ``graphgrad eval``."""
    if args.wrt and not args.of:
        raise InputError("--wrt needs --of: the scalar whose gradients to print", hint="add --of NAME, e.g. --of L")
    graph, inputs = model_and_inputs(args)
    if args.of:
        check_names(graph, [args.of], "--of")
        check_names(graph, args.wrt or [], "--wrt")
    vals = evaluate(graph, inputs)
    grads = value_and_grad(graph, args.of, args.wrt, inputs)[1] if args.of else {}
    labels = {n: n for n in vals} | {f"d{args.of}/d{n}": n for n in grads}
    width = max(map(len, labels), default=0)
    shape_width = max((len(shape_text(v)) for v in [*vals.values(), *grads.values()]), default=0)
    print("values:")
    for n, v in vals.items():
        _row(n, v, width, shape_width)
    if args.of:
        print(f"gradients of {args.of}:")
        for n, v in grads.items():
            _row(f"d{args.of}/d{n}", v, width, shape_width)
    return 0


def _row(label: str, v: object, width: int, shape_width: int) -> None:
    """``  label  [2, 3]  [[...`` with the array's later rows under its first (as NumPy aligns them)."""
    prefix = f"  {label:<{width}} {shape_text(v):>{shape_width}}  "
    print(prefix + fmt_array(v, prefix=prefix))


