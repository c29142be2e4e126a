"""graphgrad demo: the residual MLP end to end."""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np

from ..api import value_and_grad
from ..errors import InputError
from ..models import model, text
from .common import MAX_SEED, fmt_array, int_arg, random_inputs

HELP = "run the residual MLP end to end: render it to SVG, print its backprop equations and ∂L/∂x, evaluate it"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``graphgrad demo``."""
    p.add_argument("-o", "--out-dir", default=".", help="where to write the pictures (default: .)")
    p.add_argument("--seed", type=int_arg(0, MAX_SEED, "--seed 0"), default=0,
                   help="seed of the random values, 0 to 2**64 - 1 (default 0)")


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package (graphgrad.printing) is missing
        return False


def run(args: argparse.Namespace) -> int:
    """Run ``graphgrad demo``."""
    t0 = time.perf_counter()
    out = Path(args.out_dir)
    if not args.out_dir or (out.exists() and not out.is_dir()):
        raise InputError(f"--out-dir {args.out_dir!r} is " + ("not a directory" if args.out_dir else "empty"),
                         hint="give a directory for the pictures, e.g. -o out")
    graph = model("residual_mlp")
    print("The model (examples/residual_mlp.gg):\n")
    print("    " + text("residual_mlp").strip().replace("\n", "\n    ") + "\n")
    if _has("graphgrad.drawing.dot"):
        from ..drawing.dot import render

        out.mkdir(parents=True, exist_ok=True)
        render(graph, out / "residual_mlp.svg")
        render(graph, out / "residual_mlp_backward.svg", backward=True, of="L")
        print(f"Wrote {out / 'residual_mlp.svg'} (forward) and {out / 'residual_mlp_backward.svg'} (backward).\n")
    if _has("graphgrad.symbolic"):
        from ..symbolic import backprop, derivative

        print("Backprop equations (adjoints, last node first):\n")
        for eq in backprop(graph, "L"):
            print(f"    {eq}")
        print(f"\n    {derivative(graph, 'L', 'x')}\n")
    sizes = {"N": 3, "K": 2}
    vals = random_inputs(graph, args.seed, sizes)
    value, grads = value_and_grad(graph, "L", ["x", "W1", "b1", "W2", "b2"], vals)
    print(f"Evaluated at N=3, K=2 with seeded random values (seed {args.seed}):\n")
    print(f"    L     = {float(value):.6f}")
    for n, g in grads.items():
        print(f"    ∂L/∂{n:<3} = " + fmt_array(g).replace("\n", "\n" + " " * 15))
    x, W1, b1, W2, b2, r, s = (vals[k] for k in ("x", "W1", "b1", "W2", "b2", "r", "s"))
    z = W1 @ x + b1
    sg = 1 / (1 + np.exp(-z))
    y = x + W2 @ sg + b2
    by_hand = (y - s) + W1.T @ ((W2.T @ (y - s) + r) * sg * (1 - sg))
    err = float(np.max(np.abs(by_hand - grads["x"])))
    print(f"\n    hand-written (y − s) + W₁ᵀ((W₂ᵀ(y − s) + r) ⊙ σ(z) ⊙ (1 − σ(z))) differs by {err:.1e}")
    print(f"\nDone in {time.perf_counter() - t0:.2f} s.")
    return 0
