"""graphgrad render: a picture of a model (SVG, PNG, DOT or PDF)."""

from __future__ import annotations

import argparse
import math
import sys

from ..errors import RenderError
from .common import add_inputs, add_model, check_output_path, model_and_inputs

HELP = "draw a model as SVG/PNG/DOT/PDF: variables or ops view, optionally with the backward pass and values"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``graphgrad render``."""
    add_model(p)
    p.add_argument("-o", "--output", metavar="FILE",
                   help="where to write; the suffix picks the format: .svg .png .dot .pdf (default: SVG on stdout)")
    p.add_argument("--view", choices=("variables", "ops"), default="variables",
                   help="one node per named variable (default) or one node per op")
    b = p.add_mutually_exclusive_group()
    b.add_argument("--backward", action="store_true", help="add the adjoint graph (x̄, z̄, ...) with local rules")
    b.add_argument("--backward-only", action="store_true", help="draw the adjoint graph alone")
    p.add_argument("--of", metavar="NAME", help="the scalar of the backward pass (default: the last named scalar)")
    p.add_argument("--no-params", action="store_true", help="hide parameters and constants")
    p.add_argument("--between", nargs=2, metavar=("FROM", "TO"), help="keep only the nodes on paths FROM -> TO")
    p.add_argument("--clusters", choices=("auto",), help="group names ending _1, _2, ... into one box per block")
    p.add_argument("--legend", action="store_true", help="add a legend of the node roles")
    p.add_argument("--title", help="a caption above the picture")
    p.add_argument("--engine", choices=("auto", "system", "embedded"), default="auto",
                   help="Graphviz to lay out with: the system 'dot' or the embedded (pip) one (default: auto)")
    p.add_argument("--scale", type=_scale, default=2.0, help="PNG zoom, a positive number (default 2)")
    add_inputs(p)


def _scale(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r} (fix: e.g. --scale 2)") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"the PNG zoom must be a positive finite number, got {text!r} "
                                         "(fix: e.g. --scale 2)")
    return v


def run(args: argparse.Namespace) -> int:
    """Run ``graphgrad render``."""
    from ..api import grad
    from ..autodiff import check_of
    from ..drawing.dot import render
    from ..drawing.views import default_of
    from ..interpret import evaluate

    check_output_path(args.output, args.model, RenderError, "model.svg (the suffix picks the format)")
    graph, inputs = model_and_inputs(args, need_inputs=False)
    if args.of is not None:
        check_of(graph, args.of)
    backward = "only" if args.backward_only else bool(args.backward)
    values = grads = None
    if inputs is not None:
        values = evaluate(graph, inputs)
        of = args.of or default_of(graph)
        named = [n for n in graph.named_nodes() if graph.op(n) not in ("size",)]
        wrt = [n for n in named if n == of or n in graph.ancestors(of)]
        grads = grad(graph, of, wrt, inputs)
    svg = render(graph, args.output, view=args.view, backward=backward, of=args.of, values=values, grads=grads,
                 params=not args.no_params, between=tuple(args.between) if args.between else None,
                 clusters=args.clusters, legend=args.legend, title=args.title, engine=args.engine, scale=args.scale)
    if args.output is None:
        sys.stdout.write(svg)
    else:
        print(f"wrote {args.output}", file=sys.stderr)
    return 0
