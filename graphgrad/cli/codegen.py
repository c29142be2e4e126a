"""graphgrad codegen: write a model's compiled gradient function as a standalone NumPy module."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..compiler import compile, compile_forward, compile_vjp
from ..errors import InputError
from ..naming import check_function_name
from .common import add_model, check_output_path, load_model, parse_sizes

HELP = "compile a model to a standalone NumPy module (value and gradients, forward only, or a VJP)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``graphgrad codegen``."""
    add_model(p)
    p.add_argument("--of", metavar="NAME", help="output to differentiate (a scalar; any shape with --vjp)")
    p.add_argument("--wrt", metavar="NAME", nargs="+",
                   help="variables to differentiate with respect to (default: every input, param, const)")
    p.add_argument("--forward", metavar="NAME", nargs="*", default=None,
                   help="forward pass only, returning these names (none given: every named value)")
    p.add_argument("--vjp", action="store_true", help="vector-Jacobian product: the cotangent <of>_bar "
                   "is one more argument")
    p.add_argument("--batch", metavar="NAME", nargs="*", default=None,
                   help="inputs that carry a leading batch axis (no name given: every input)")
    p.add_argument("--reduce", choices=["sum"], default=None,
                   help="with --batch: return the batch-summed value of --of instead of per sample")
    p.add_argument("--size", metavar="NAME=INT", nargs="+", action="extend", default=[],
                   help="sizes the matrix-chain order may use, e.g. --size N=256 K=512 (the code "
                   "still runs for any sizes)")
    p.add_argument("--name", metavar="IDENT", help="name of the generated function (an ASCII identifier, "
                   "not a keyword, not starting with _)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the module here (default: stdout)")


def _check_flags(args: argparse.Namespace) -> None:
    """Flags that contradict each other, or that would be silently ignored."""
    if args.forward is not None:
        given = [f for f, on in (("--of", args.of), ("--wrt", args.wrt), ("--vjp", args.vjp),
                                 ("--reduce", args.reduce)) if on]
        if given:
            raise InputError(f"--forward compiles the forward pass only: it takes no {given[0]}",
                             hint=f"drop {given[0]}, or drop --forward")
    elif not args.of:
        raise InputError("say what to compile", hint="pass --of NAME (with --wrt ...) or --forward")
    if args.reduce and args.vjp:
        raise InputError("--reduce does not apply to --vjp (the cotangent sets the weighting)",
                         hint="drop --reduce, or drop --vjp")
    if args.reduce and args.batch is None:
        raise InputError("--reduce sums over the batch axis: it needs --batch", hint="add --batch, or drop --reduce")
    if args.name is not None:
        check_function_name(args.name)
    check_output_path(args.output, args.model, InputError, "grad_fn.py")


def run(args: argparse.Namespace) -> int:
    """Run ``graphgrad codegen``."""
    _check_flags(args)
    graph = load_model(args.model)
    batched = None
    if args.batch is not None:
        batched = args.batch or graph.leaves("input")
    sizes = parse_sizes(args.size, graph)
    if args.forward is not None:
        f = compile_forward(graph, args.forward or None, batched=batched, sizes=sizes, name=args.name)
    elif args.vjp:
        f = compile_vjp(graph, args.of, args.wrt, batched=batched, sizes=sizes, name=args.name)
    else:
        f = compile(graph, args.of, args.wrt, reduce=args.reduce, batched=batched, sizes=sizes,
                    name=args.name)
    text = f.module_source(Path(args.model).name)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as e:
            raise InputError(f"cannot write {args.output!r}: {e.strerror or e}",
                             hint="check the path, the permissions and the free space") from None
        print(f"wrote {args.output}: def {f.name}(...)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
