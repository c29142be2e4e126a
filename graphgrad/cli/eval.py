"""graphgrad eval: values and gradients of a model."""

from __future__ import annotations

import argparse

from ..errors import InputError
from ..evaluate import evaluate, value_and_grad
from .common import add_inputs, add_model, fmt_array, model_and_inputs, shape_text

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
    vals = evaluate(graph, inputs)
    width = max(len(n) for n in vals)
    print("values:")
    for n, v in vals.items():
        print(f"  {n:<{width}} {shape_text(v):>8}  {_indent(fmt_array(v), width + 13)}")
    if args.of:
        value, grads = value_and_grad(graph, args.of, args.wrt, inputs)
        print(f"gradients of {args.of}:")
        for n, v in grads.items():
            print(f"  d{args.of}/d{n:<{width}} {shape_text(v):>8}  {_indent(fmt_array(v), width + 15)}")
    return 0


def _indent(text: str, n: int) -> str:
    return text.replace("\n", "\n" + " " * n)
