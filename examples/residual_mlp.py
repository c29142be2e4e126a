"""The residual MLP of ``examples/residual_mlp.gg``, built with the Python builder.

    z = W1 @ x + b1
    h = σ(z)
    y = x + W2 @ h + b2          (x reaches y twice: through h, and directly, the residual path)
    S = ½ ‖y − s‖²,  R = rᵀh,  L = S + R

The script

* builds the model with ``gg.Graph()``, its ``input``/``param``/``const`` declarations, the
  operators of ``gg.Var`` (``@ + - * **``) and the op functions ``gg.sigmoid``, ``gg.norm``,
  ``gg.dot``, naming values with ``.named(...)`` or ``name=``;
* checks that it is the graph ``gg.load`` reads from ``residual_mlp.gg``: equal as graphs (``==``
  compares them structurally) and equal in numbers, the value of every named node (``gg.evaluate``)
  and the gradient of L with respect to every input, param and const (``gg.grad``), at random
  points over several sizes, with K ≠ N so that a missing transpose could not hide;
* prints the backprop equations of L (``gg.backprop``) and the gradients at one point.

Run from the repository root: ``python examples/residual_mlp.py [--seed 0] [--size 3 2]``
(N and K of the printed point). It needs nothing but graphgrad.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import graphgrad as gg

MODEL_FILE = Path(__file__).resolve().with_name("residual_mlp.gg")
MAX_SIZE = 1000  # largest N or K of the printed point


def build() -> gg.Graph:
    """The residual MLP, with the builder: the same names and the same expressions as the .gg file."""
    g = gg.Graph()
    x = g.input("x", "N")
    W1, b1 = g.param("W1", ("K", "N")), g.param("b1", "K")
    W2, b2 = g.param("W2", ("N", "K")), g.param("b2", "N")
    r, s = g.const("r", "K"), g.const("s", "N")

    z = (W1 @ x + b1).named("z")
    h = gg.sigmoid(z, name="h")
    y = (x + W2 @ h + b2).named("y")
    S = (0.5 * gg.norm(y - s) ** 2).named("S")
    R = gg.dot(r, h, name="R")
    (S + R).named("L")
    return g


def random_inputs(g: gg.Graph, sizes: dict[str, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Standard-normal values for every input, param and const of ``g`` at ``sizes``."""
    return {n: rng.standard_normal([sizes[d] for d in g.shape(n)]) for n in g.leaves()}


def compare(built: gg.Graph, loaded: gg.Graph, trials: int = 5, seed: int = 0) -> float:
    """The largest relative difference between the two graphs' values (every named node) and
    gradients of L (every leaf) at ``trials`` random points, N and K random and different;
    raises AssertionError when the graphs differ in structure, names or numbers."""
    assert built == loaded, "the builder graph is not the graph of residual_mlp.gg"
    assert built.named_nodes() == loaded.named_nodes()
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(trials):
        N, K = (int(v) for v in rng.choice(np.arange(2, 8), size=2, replace=False))
        inputs = random_inputs(loaded, {"N": N, "K": K}, rng)
        a, b = gg.evaluate(built, inputs), gg.evaluate(loaded, inputs)
        ga, gb = gg.grad(built, "L", None, inputs), gg.grad(loaded, "L", None, inputs)
        assert a.keys() == b.keys() and ga.keys() == gb.keys() == set(loaded.leaves())
        for name in a:
            worst = max(worst, _rel(a[name], b[name]))
        for name in ga:
            worst = max(worst, _rel(ga[name], gb[name]))
    assert worst <= 1e-12, f"the two graphs give different numbers (relative difference {worst:.1e})"
    return worst


def _rel(u: np.ndarray, v: np.ndarray) -> float:
    u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    assert u.shape == v.shape, f"shapes {u.shape} and {v.shape} differ"
    return float(np.max(np.abs(u - v), initial=0.0) / max(1.0, float(np.max(np.abs(v), initial=0.0))))


def gradients(g: gg.Graph, N: int = 3, K: int = 2, seed: int = 0) -> tuple[float, dict[str, np.ndarray]]:
    """L and ∂L/∂(every input, param and const) at one seeded random point."""
    inputs = random_inputs(g, {"N": N, "K": K}, np.random.default_rng(seed))
    L, grads = gg.value_and_grad(g, "L", None, inputs)
    return float(L), grads


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--seed", type=int, default=0, help="seed of the printed point (default 0)")
    p.add_argument("--size", type=int, nargs=2, default=[3, 2], metavar=("N", "K"),
                   help="N and K of the printed point (default 3 2)")
    args = p.parse_args(argv)
    N, K = args.size
    if not (1 <= N <= MAX_SIZE and 1 <= K <= MAX_SIZE):
        p.error(f"N and K must be from 1 to {MAX_SIZE}")

    built, loaded = build(), gg.load(MODEL_FILE)
    worst = compare(built, loaded)
    print(f"builder graph == {MODEL_FILE.name}: {built == loaded} ({len(built.named_nodes())} named nodes: "
          f"{', '.join(built.named_nodes())})")
    print(f"same values and gradients at 5 random points (N ≠ K, 2 to 7): largest relative difference {worst:.1e}")

    print("\nbackprop equations of L:")
    print(gg.backprop(built, "L"))

    L, grads = gradients(built, N, K, args.seed)
    print(f"\nat N={N}, K={K} (seed {args.seed}): L = {L:.6g}")
    width = max(len(n) for n in grads)
    for name, v in grads.items():
        prefix = f"  ∂L/∂{name:<{width}}  "
        print(prefix + np.array2string(np.asarray(v), precision=4, suppress_small=True, max_line_width=100,
                                       prefix=prefix))
    return 0


if __name__ == "__main__":
    sys.exit(main())
