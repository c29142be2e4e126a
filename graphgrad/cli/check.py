"""graphgrad check: is a hand-derived derivative right? Exit 0 when it is, 1 when it is not."""

from __future__ import annotations

import argparse

from ..checker import MAX_CANDIDATE_CHARS, MAX_CANDIDATE_DEPTH, MAX_TRIALS, check
from .common import MAX_SEED, add_model, int_arg, load_model

HELP = "check a hand-derived derivative (model syntax) against the reverse pass, and diagnose slips"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``graphgrad check``."""
    add_model(p)
    p.add_argument("--of", metavar="NAME", required=True, help="the scalar output (e.g. L)")
    p.add_argument("--wrt", metavar="NAME", required=True, help="the variable (e.g. x)")
    p.add_argument("--candidate", metavar="EXPR", required=True,
                   help='the derivative, e.g. "(y - s) + W1.T @ ((W2.T @ (y - s) + r) * dsigmoid(z))" '
                   f"(at most {MAX_CANDIDATE_CHARS:,} characters, {MAX_CANDIDATE_DEPTH} operators deep; "
                   "one starting with - is written --candidate=-EXPR)")
    p.add_argument("--trials", type=int_arg(1, MAX_TRIALS, "--trials 3"), default=3,
                   help=f"random size bindings to try, 1 to {MAX_TRIALS} (default 3)")
    p.add_argument("--seed", type=int_arg(0, MAX_SEED, "--seed 0"), default=0,
                   help="seed of the random points, 0 to 2**64 - 1 (default 0)")


def run(args: argparse.Namespace) -> int:
    """Run ``graphgrad check``."""
    graph = load_model(args.model)
    result = check(graph, args.of, args.wrt, args.candidate, trials=args.trials, seed=args.seed)
    print(result)
    return 0 if result.correct else 1
